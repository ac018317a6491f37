"""Placeholder for the sending blueprint."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sending", __name__, url_prefix="/sending")
