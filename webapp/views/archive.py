"""Public pages of sent e-mails: the web version and each list's optional public archive.

- ``/w/<token>``: "voir dans le navigateur", the token signed with purpose ``web`` over
  ``(campaign_id, delivery_id)`` (see :mod:`campaigns.links`, :mod:`campaigns.preview`);
- ``/archive/<slug>/listes/<list_id>``: the past newsletters of a list whose
  ``is_archive_public`` is set, and ``…/<campaign_id>`` for one of them;
- ``/archive/aide``: where the neutral copies' unsubscribe, preference, RSVP and poll links
  lead, since a public copy cannot know whose they would be.

Every copy here is rendered with neutral values (no name, no address, no open pixel, links
straight to their URLs), under a CSP that runs no script. A bad token, an unsent campaign,
a private list or another body's ids are all the same 404.
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape
from sqlalchemy import select

from campaigns import preview
from campaigns.models import Campaign, CampaignKind, CampaignStatus
from contacts.db import db, get_scoped
from contacts.models import MailingList, Organisation

bp = Blueprint("archive", __name__, url_prefix="/archive")

WEB_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
MAX_ARCHIVE = 200
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)


def _secret() -> str:
    return current_app.config.get("CRIEUR_SECRET_KEY") or current_app.config["SECRET_KEY"]


def _public(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _message_page(html: str, banner: Markup) -> object:
    """The e-mail's own HTML document, with a short navigation banner at the top."""
    m = _BODY_OPEN.search(html)
    if m:
        html = html[: m.end()] + str(banner) + html[m.end() :]
    response = current_app.response_class(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = WEB_CSP
    return _public(response)


def _banner(org: Organisation, back_href: str = "", back_label: str = "") -> Markup:
    style = (
        "font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.5;"
        "background:#ffffff;color:#1e1e1e;padding:8px 16px;border-bottom:1px solid #929292;"
    )
    link = (
        Markup(' · <a href="{}" style="color:#000091">{}</a>').format(back_href, back_label)
        if back_href
        else Markup("")
    )
    return Markup('<div role="navigation" aria-label="Archive" style="{}"><p style="margin:0">'
                  "{}{}</p></div>").format(style, escape(org.name), link)  # fmt: skip


def _record_web_view(campaign: Campaign, delivery_id: int) -> None:
    """Count the view like the other public events (the policy decides what is kept)."""
    try:
        from analytics.models import EventKind
        from analytics.tracking import Hit, recipient_key
        from webapp.views.tracking import enqueue

        enqueue(
            Hit(
                kind=EventKind.WEB_VIEW,
                campaign_id=campaign.id,
                org_id=campaign.organisation_id,
                delivery_id=delivery_id or None,
                recipient_key=recipient_key(_secret(), campaign.id, delivery_id)
                if delivery_id
                else "",
                method=request.method,
                user_agent=request.headers.get("User-Agent", "")[:500],
            )
        )
    except Exception:  # noqa: BLE001 - statistics must never break the page
        current_app.logger.exception("web view not recorded")


def web_version(token: str):
    """``/w/<token>``: the sent message in the browser, with neutral values."""
    found = preview.read_web_token(_secret(), token)
    if found is None:
        abort(404)
    campaign, delivery_id = found
    org = db.session.get(Organisation, campaign.organisation_id)
    parts = preview.render_web_version(
        campaign.organisation_id,
        campaign,
        help_url=url_for("archive.help"),
        self_url=request.path,
    )
    db.session.commit()
    if request.method == "GET":
        _record_web_view(campaign, delivery_id)
    response = _message_page(parts["html"], _banner(org))
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _register_web_route(state) -> None:  # type: ignore[no-untyped-def]
    # The sender's links are /w/<token> (campaigns.links), outside this blueprint's prefix.
    state.app.add_url_rule("/w/<token>", "archive.web_version", web_version, methods=["GET"])


bp.record_once(_register_web_route)


@bp.route("/aide")
def help():  # noqa: A001 - the endpoint's name in URLs
    return _public(current_app.make_response(render_template("archive/help.html")))


def _public_list(slug: str, list_id: int) -> tuple[Organisation, MailingList]:
    org = db.session.scalars(select(Organisation).where(Organisation.slug == slug)).first()
    if org is None:
        abort(404)
    lst = get_scoped(MailingList, org.id, list_id)
    if lst is None or not lst.is_archive_public:
        abort(404)
    return org, lst


def archived_campaigns(org_id: int, list_id: int) -> list[Campaign]:
    """The list's sent newsletters, newest first."""
    rows = db.session.scalars(
        select(Campaign)
        .where(
            Campaign.organisation_id == org_id,
            Campaign.status == CampaignStatus.SENT,
            Campaign.kind == CampaignKind.NEWSLETTER,
        )
        .order_by(Campaign.finished_at.desc(), Campaign.id.desc())
        .limit(MAX_ARCHIVE * 5)
    )
    return [c for c in rows if list_id in (c.list_ids or [])][:MAX_ARCHIVE]


@bp.route("/<slug>/listes/<int:list_id>")
def list_archive(slug: str, list_id: int):
    org, lst = _public_list(slug, list_id)
    campaigns = [
        (c, preview.neutral_subject(org.id, c) or c.name)
        for c in archived_campaigns(org.id, lst.id)
    ]
    response = current_app.make_response(
        render_template("archive/list.html", org=org, lst=lst, campaigns=campaigns)
    )
    return _public(response)


@bp.route("/<slug>/listes/<int:list_id>/<int:campaign_id>")
def archived_message(slug: str, list_id: int, campaign_id: int):
    org, lst = _public_list(slug, list_id)
    campaign = get_scoped(Campaign, org.id, campaign_id)
    if (
        campaign is None
        or campaign.status != CampaignStatus.SENT
        or campaign.kind != CampaignKind.NEWSLETTER
        or lst.id not in (campaign.list_ids or [])
    ):
        abort(404)
    parts = preview.render_web_version(
        org.id,
        campaign,
        help_url=url_for("archive.help"),
        self_url=request.path,
        list_name=lst.name,
    )
    db.session.commit()
    back = url_for("archive.list_archive", slug=org.slug, list_id=lst.id)
    return _message_page(
        parts["html"], _banner(org, back, _("Toutes les lettres « %(name)s »", name=lst.name))
    )
