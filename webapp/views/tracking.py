"""Placeholder for the tracking blueprint."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("tracking", __name__, url_prefix="/t")
