"""Paramètres: the body's identity, sending and tracking settings, users and API tokens."""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from contacts.db import db, utcnow
from contacts.models import OrgKind, TrackingPolicy
from contacts.organisations import update_settings
from webapp.accounts import create_user, org_users, set_disabled
from webapp.auth import create_token, roles_required
from webapp.models import ApiToken, User
from webapp.templating import current_org

bp = Blueprint("admin", __name__, url_prefix="/admin")

SETTINGS_FIELDS = (
    "name",
    "region",
    "population",
    "from_name",
    "from_address",
    "reply_to",
    "postal_address",
    "dpo_contact",
    "website_url",
    "logo_url",
    "brand_color",
    "tracking_policy",
    "smtp_url",
    "hourly_limit",
    "retention_months",
    "dkim_selector",
    "dkim_private_key",
)


@bp.route("/", methods=["GET", "POST"])
@roles_required("admin")
def index():
    org = current_org()
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in SETTINGS_FIELDS if k in request.form}
        update_settings(org, values)
        db.session.commit()
        flash(_("Paramètres enregistrés."), "success")
        return redirect(url_for("admin.index"))
    return render_template(
        "admin/settings.html", org=org, kinds=list(OrgKind), policies=list(TrackingPolicy)
    )


def _own_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.organisation_id != current_user.organisation_id:
        abort(404)
    return user


@bp.route("/users", methods=["GET", "POST"])
@roles_required("admin")
def users():
    new_password = None
    if request.method == "POST":
        new_password = secrets.token_urlsafe(12)
        role = request.form.get("role", "officer")
        if role not in ("officer", "director", "admin"):
            abort(400)
        user = create_user(
            request.form.get("email", ""),
            role,
            current_user.organisation_id,
            new_password,
            request.form.get("name", ""),
        )
        db.session.commit()
        flash(_("Compte créé pour %(email)s.", email=user.email), "success")
    return render_template(
        "admin/users.html", users=org_users(current_user.organisation_id), new_password=new_password
    )


@bp.route("/users/<int:user_id>/toggle", methods=["POST"])
@roles_required("admin")
def toggle_user(user_id: int):
    user = _own_user(user_id)
    if user.id == current_user.id:
        flash(_("Vous ne pouvez pas désactiver votre propre compte."), "error")
    else:
        set_disabled(user, not user.is_disabled)
        db.session.commit()
    return redirect(url_for("admin.users"))


@bp.route("/tokens", methods=["GET", "POST"])
@roles_required("admin", "officer", "director")
def tokens():
    raw = None
    if request.method == "POST":
        raw = create_token(current_user, (request.form.get("name") or "")[:100])
        db.session.commit()
    mine = db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.id.desc())
    ).all()
    return render_template("admin/tokens.html", tokens=mine, raw=raw)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@roles_required("admin", "officer", "director")
def revoke_token(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)
    token.revoked_at = token.revoked_at or utcnow()
    db.session.commit()
    flash(_("Jeton révoqué."), "success")
    return redirect(url_for("admin.tokens"))
