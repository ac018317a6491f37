"""Statistiques pages."""

from __future__ import annotations

from flask import Blueprint, render_template

from webapp.auth import roles_required

bp = Blueprint("analytics", __name__, url_prefix="/analytics")


@bp.route("/")
@roles_required("officer", "director", "admin")
def index():
    return render_template("placeholder.html", title="Statistiques")
