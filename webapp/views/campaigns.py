"""Campagnes pages."""

from __future__ import annotations

from flask import Blueprint, render_template

from webapp.auth import roles_required

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")


@bp.route("/")
@roles_required("officer", "director", "admin")
def index():
    return render_template("placeholder.html", title="Campagnes")
