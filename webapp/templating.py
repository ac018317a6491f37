"""Jinja globals and filters shared by every page."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g
from flask_babel import format_datetime, get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from contacts.db import db
from webapp.i18n import translate

PARIS = ZoneInfo("Europe/Paris")

NAV = (
    ("contacts.index", _l("Contacts"), ("officer", "director", "admin")),
    ("campaigns.index", _l("Campagnes"), ("officer", "director", "admin")),
    ("analytics.index", _l("Statistiques"), ("officer", "director", "admin")),
    ("benchmark.index", _l("Baromètre"), ("officer", "director", "admin", "analyst")),
    ("admin.index", _l("Paramètres"), ("admin",)),
    ("outbox.index", _l("Boîte d'envoi"), ("admin",)),
)

ROLE_LABELS = {
    "officer": _l("chargé·e de communication"),
    "director": _l("direction"),
    "admin": _l("administration"),
    "analyst": _l("analyste de l'association"),
}

STATUS_LABELS = {
    "draft": _l("brouillon"),
    "in_review": _l("en relecture"),
    "approved": _l("approuvée"),
    "scheduled": _l("programmée"),
    "sending": _l("en cours d'envoi"),
    "paused": _l("en pause"),
    "sent": _l("envoyée"),
    "cancelled": _l("annulée"),
    "held": _l("en attente de confirmation"),
}


def current_org():
    """The signed-in user's body, loaded once per request."""
    from contacts.models import Organisation

    if "current_org" not in g:
        org_id = getattr(current_user, "organisation_id", None)
        g.current_org = db.session.get(Organisation, org_id) if org_id else None
    return g.current_org


def format_dt(value: dt.datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return format_datetime(value, fmt)


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(
        current_org=current_org,
        current_locale=lambda: str(get_locale() or "fr"),
        nav_items=lambda: NAV,
        role_label=lambda role: ROLE_LABELS.get(role, role),
        status_label=lambda status: STATUS_LABELS.get(status, status),
        url_map_endpoints=lambda: current_app.view_functions.keys(),
    )
    app.jinja_env.filters["datetime"] = format_dt
    # {{ label|tr }}: a French message id from a domain table (marked with N_) translated for
    # the reader. A plain str, so autoescaping still applies (unlike _() with a variable).
    app.jinja_env.filters["tr"] = translate
