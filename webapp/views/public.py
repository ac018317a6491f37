"""Public pages reached from e-mails and the body's website: no sign-in, signed tokens."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__)
