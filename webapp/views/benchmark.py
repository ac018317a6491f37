"""Baromètre pages."""

from __future__ import annotations

from flask import Blueprint, render_template

from webapp.auth import roles_required

bp = Blueprint("benchmark", __name__, url_prefix="/benchmark")


@bp.route("/")
@roles_required("officer", "director", "admin", "analyst")
def index():
    return render_template("placeholder.html", title="Baromètre")
