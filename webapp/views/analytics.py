"""Statistiques: the body's dashboard, each campaign's performance page, exports, snippet.

Thin views: ``analytics.dashboard`` loads the figures (SQL aggregates), ``analytics.export``
writes the files; the templates show every chart beside a table (the charts are drawn
by ``static/analytics-charts.js`` from a JSON data block: no inline script).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for

from analytics import dashboard, export
from analytics.benchmark.indicators import record_practice_signal
from analytics.snippet import snippet_html
from contacts.db import db
from contacts.i18n import N_
from contacts.models import Organisation
from webapp.auth import current_org_id, roles_required
from webapp.i18n import translate_labels
from webapp.views.tracking import flush_quietly, state

bp = Blueprint("analytics", __name__, url_prefix="/analytics")

READERS = ("officer", "director", "admin")
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

DEVICE_LABELS = {
    "phone": N_("téléphone"),
    "tablet": N_("tablette"),
    "desktop": N_("ordinateur"),
    "unknown": N_("inconnu (masqué par un relais)"),
}
FIGURE_LABELS = {
    "recipients": N_("Destinataires"),
    "delivered": N_("Délivrés"),
    "failed": N_("Échecs (adresses rejetées)"),
    "deferred": N_("Différés (en nouvelle tentative)"),
    "opens_unique": N_("Ouvertures (personnes)"),
    "opens_machine": N_("Ouvertures par des robots (relais, antivirus)"),
    "clicks_unique": N_("Clics (personnes)"),
    "unsubscribes": N_("Désinscriptions"),
    "site_visits": N_("Visites du site apportées"),
    "open_rate": N_("Taux d'ouverture"),
    "click_rate": N_("Taux de clic"),
    "click_to_open": N_("Clics parmi les ouvreurs"),
    "unsubscribe_rate": N_("Taux de désinscription"),
}
RATE_OF = {
    "opens_unique": "open_rate",
    "clicks_unique": "click_rate",
    "unsubscribes": "unsubscribe_rate",
}


def pct(value: Any, digits: int = 1) -> str:
    """A share as a French percentage ("12,5 %"), or an em dash."""
    if value is None:
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    if number != number:  # NaN
        return "—"
    return f"{number * 100:.{digits}f}".replace(".", ",") + "\u00a0%"


def num(value: Any) -> str:
    """A count with French thousands separators, or an em dash."""
    if value is None:
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    if number != number:
        return "—"
    if number == int(number):
        return f"{int(number):,}".replace(",", "\u202f")
    return f"{number:,.1f}".replace(",", "\u202f").replace(".", ",")


def delta(value: Any, median: Any, rate: bool) -> dict[str, str] | None:
    """How far a figure is from the body's median: text and a direction for the badge."""
    if value is None or median is None:
        return None
    diff = float(value) - float(median)
    if rate:
        text = f"{diff * 100:+.1f}".replace(".", ",") + " pt"
    else:
        text = f"{diff:+,.0f}".replace(",", "\u202f")
    direction = "up" if diff > 0 else "down" if diff < 0 else "same"
    return {"text": text, "direction": direction}


def _helpers() -> dict[str, Any]:
    return {
        "pct": pct,
        "num": num,
        "delta": delta,
        "device_labels": translate_labels(DEVICE_LABELS),
        "figure_labels": translate_labels(FIGURE_LABELS),
        "source_labels": translate_labels(dashboard.source_labels()),
    }


def _flush() -> None:
    flush_quietly()


def _seen(org_id: int, *kinds: str) -> None:
    """Record that the body read its statistics: the benchmark observes the practice
    ("do they measure?") from this rather than from what they declare."""
    for kind in kinds:
        record_practice_signal(org_id, kind)
    db.session.commit()


# ---------------------------------------------------------------------------- dashboard


@bp.route("/")
@roles_required(*READERS)
def index():
    _flush()
    org_id = current_org_id()
    board = dashboard.body_dashboard(db.session, org_id, cache=state().reports)
    org = db.session.get(Organisation, org_id)
    _seen(org_id, "stats_viewed", "site_stats_viewed")
    return render_template(
        "analytics/dashboard.html",
        board=board,
        org=org,
        chart_data=board.chart_data(),
        **_helpers(),
    )


@bp.route("/campaigns/<int:campaign_id>")
@roles_required(*READERS)
def campaign(campaign_id: int):
    _flush()
    page = dashboard.campaign_page(db.session, current_org_id(), campaign_id, cache=state().reports)
    if page is None:
        abort(404)
    _seen(current_org_id(), "stats_viewed", "clicks_viewed")
    return render_template(
        "analytics/campaign.html",
        page=page,
        stats=page.stats,
        chart_data=page.chart_data(),
        rate_of=RATE_OF,
        **_helpers(),
    )


# ---------------------------------------------------------------------------- exports


def _download(data: bytes, filename: str, fmt: str) -> Response:
    response = Response(data, mimetype=FORMATS[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/campaigns/<int:campaign_id>/export.<fmt>")
@roles_required(*READERS)
def campaign_export(campaign_id: int, fmt: str):
    if fmt not in FORMATS:
        abort(404)
    _flush()
    page = dashboard.campaign_page(db.session, current_org_id(), campaign_id, cache=state().reports)
    if page is None:
        abort(404)
    _seen(current_org_id(), "stats_viewed", "clicks_viewed")
    sheets = export.campaign_sheets(page)
    table = request.args.get("table", "resume")
    if fmt == "csv":
        if table not in sheets:
            abort(400, description="Tableau inconnu.")
        data = export.csv_bytes(sheets[table])
        name = f"campagne-{campaign_id}-{table}.csv"
    else:
        data = export.xlsx_bytes(sheets)
        name = f"campagne-{campaign_id}.xlsx"
    return _download(data, name, fmt)


@bp.route("/export.<fmt>")
@roles_required(*READERS)
def dashboard_export(fmt: str):
    if fmt not in FORMATS:
        abort(404)
    _flush()
    board = dashboard.body_dashboard(db.session, current_org_id(), cache=state().reports)
    sheets = export.dashboard_sheets(board)
    table = request.args.get("table", "campagnes")
    today = dt.date.today().isoformat()
    if fmt == "csv":
        if table not in sheets:
            abort(400, description="Tableau inconnu.")
        return _download(export.csv_bytes(sheets[table]), f"statistiques-{table}-{today}.csv", fmt)
    return _download(export.xlsx_bytes(sheets), f"statistiques-{today}.xlsx", fmt)


# ---------------------------------------------------------------------------- website snippet


@bp.route("/site")
@roles_required("admin")
def site():
    """The snippet to paste into the body's website, and what it counts (and does not)."""
    org = db.session.get(Organisation, current_org_id())
    if org is None:
        abort(404)
    snippet = snippet_html(current_app.config["CRIEUR_PUBLIC_URL"], org.site_key)
    return render_template(
        "analytics/site.html",
        org=org,
        snippet=snippet,
        api_url=url_for("api.site"),
        **_helpers(),
    )
