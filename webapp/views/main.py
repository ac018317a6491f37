"""Home, health and the accessibility statement."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Blueprint, abort, redirect, render_template, send_from_directory, url_for
from flask_login import current_user
from sqlalchemy import func, select

from contacts.db import db, scoped
from webapp.auth import roles_required

bp = Blueprint("main", __name__)


@bp.route("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.role == "analyst":
        return redirect(url_for("benchmark.index"))
    return dashboard()


@roles_required("officer", "director", "admin")
def dashboard():
    from campaigns.models import Campaign
    from contacts.models import Contact, MailingList

    org_id = current_user.organisation_id
    counts = {
        "lists": db.session.scalar(
            select(func.count()).select_from(scoped(MailingList, org_id).subquery())
        ),
        "contacts": db.session.scalar(
            select(func.count()).select_from(scoped(Contact, org_id).subquery())
        ),
        "campaigns": db.session.scalar(
            select(func.count()).select_from(scoped(Campaign, org_id).subquery())
        ),
    }
    recent = db.session.scalars(
        scoped(Campaign, org_id).order_by(Campaign.updated_at.desc()).limit(5)
    ).all()
    return render_template("main/home.html", counts=counts, recent=recent)


@bp.route("/accessibilite")
def accessibility():
    return render_template("main/accessibility.html")


# Front-end libraries installed from npm (package.json) and served by the app itself:
# no CDN, so the app works offline and no third party learns who reads which page.
VENDOR_FILES = {
    "chart.js": ("chart.js", "dist/chart.umd.js"),
}


def node_modules() -> Path:
    return Path(
        os.environ.get("CRIEUR_NODE_MODULES")
        or Path(__file__).resolve().parents[2] / "node_modules"
    )


@bp.route("/vendor/<name>")
def vendor(name: str):
    if name not in VENDOR_FILES:
        abort(404)
    package, relative = VENDOR_FILES[name]
    directory = node_modules() / package
    response = send_from_directory(directory, relative, mimetype="text/javascript", max_age=86400)
    return response


@bp.route("/healthz")
def health():
    db.session.execute(select(1))
    return {"status": "ok"}
