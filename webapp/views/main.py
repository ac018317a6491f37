"""Home, health and the accessibility statement."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
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


@bp.route("/healthz")
def health():
    db.session.execute(select(1))
    return {"status": "ok"}
