"""Sign-in, sign-out and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from contacts.db import db
from webapp.auth import authenticate, end_all_sessions, sign_in
from webapp.extensions import limiter

bp = Blueprint("auth", __name__, url_prefix="/auth")


def _login_key() -> str:
    # Throttle per account as well as per client: spraying one account from many
    # addresses is caught by this key, many accounts from one address by the other.
    return "login:" + (request.form.get("email") or "").strip().lower()[:320]


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("main.home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
@limiter.limit("5 per minute; 30 per hour", methods=["POST"], key_func=_login_key)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    error = None
    email = ""
    if request.method == "POST":
        email = (request.form.get("email") or "").strip()
        user = authenticate(email, request.form.get("password") or "")
        if user is None:
            # One message whatever was wrong: no account enumeration.
            error = _("Adresse e-mail ou mot de passe incorrect.")
        else:
            session.clear()
            sign_in(user)
            return redirect(_safe_next(request.args.get("next")))
    status = 401 if error else 200
    return render_template("auth/login.html", error=error, email=email), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    end_all_sessions(current_user)
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("Vous êtes déconnecté."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/lang", methods=["POST"])
def set_language():
    lang = request.form.get("lang", "fr")
    if lang in ("fr", "en"):
        session["lang"] = lang
        if current_user.is_authenticated:
            current_user.locale = lang
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")))
