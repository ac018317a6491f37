"""Builders for the sending tests: many contacts at once, a campaign ready to send.

Contacts are inserted in bulk (Core ``INSERT``), with their subscription row as
``contacts.consent`` would leave it, so a 5,000-recipient audience takes a fraction of a
second to build. The campaign's compiled parts are written by hand (no mjml process)
with the placeholders the real layouts use.
"""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import insert, select

from contacts.db import db, utcnow

_counter = itertools.count(1)

COMPILED_HTML = (
    "<!doctype html><html><body>"
    '<p><a href="{{ web_version_url }}">Voir dans le navigateur</a></p>'
    "<h1>Les nouvelles du mois</h1>"
    "<p>Bonjour {{ first_name }} {{ last_name }},</p>"
    '<p><a href="{{ link_1 }}">Agenda</a> · <a href="{{ link_2 }}">Ailleurs</a></p>'
    "<p>Vous recevez ce message sur la liste « {{ list_name }} » : {{ subscription_reason }}.</p>"
    '<p><a href="{{ unsubscribe_url }}">Se désinscrire</a> · '
    '<a href="{{ preferences_url }}">Préférences</a></p>'
    '<img src="{{ open_pixel_url }}" width="1" height="1" alt="">'
    "</body></html>"
)
COMPILED_TEXT = (
    "Bonjour {{ first_name }},\n\nAgenda : {{ link_1 }}\nAilleurs : {{ link_2 }}\n\n"
    "Se désinscrire : {{ unsubscribe_url }}\n"
)
LINKS = ("https://www.ville.example.fr/agenda", "https://ailleurs.example.org/page")


def make_contacts(
    org,
    mailing_list,
    n: int,
    *,
    prefix: str | None = None,
    status: str = "active",
    subscription: str = "active",
    source: str = "web_form",
    is_risky: bool = False,
    confirmed: bool = True,
    tracking_consent: bool = False,
    domain: str = "example.net",
) -> list[int]:
    """``n`` contacts subscribed to ``mailing_list``; returns their ids in order."""
    from contacts.models import Contact

    prefix = prefix or f"p{next(_counter)}x"
    now = utcnow()
    emails = [f"{prefix}{i}@{domain}" for i in range(n)]
    db.session.execute(
        insert(Contact),
        [
            {
                "organisation_id": org.id,
                "email": email,
                "first_name": f"Prénom{i}",
                "last_name": f"Nom{i}",
                "fields": {},
                "status": status,
                "created_at": now,
            }
            for i, email in enumerate(emails)
        ],
    )
    ids = dict(
        db.session.execute(
            select(Contact.email, Contact.id).where(
                Contact.organisation_id == org.id, Contact.email.in_(emails)
            )
        ).all()
    )
    contact_ids = [ids[e] for e in emails]
    add_subscriptions(
        org,
        mailing_list,
        contact_ids,
        status=subscription,
        source=source,
        is_risky=is_risky,
        confirmed=confirmed,
        tracking_consent=tracking_consent,
    )
    db.session.flush()
    return contact_ids


def add_subscriptions(
    org,
    mailing_list,
    contact_ids: list[int],
    *,
    status: str = "active",
    source: str = "web_form",
    is_risky: bool = False,
    confirmed: bool = True,
    tracking_consent: bool = False,
) -> None:
    from contacts.models import Subscription

    now = utcnow()
    db.session.execute(
        insert(Subscription),
        [
            {
                "organisation_id": org.id,
                "list_id": mailing_list.id,
                "contact_id": cid,
                "status": status,
                "source": source,
                "legal_basis": "consent",
                "is_risky": is_risky,
                "tracking_consent": tracking_consent,
                "created_at": now,
                "confirmed_at": now if confirmed else None,
                "withdrawn_at": now if status == "withdrawn" else None,
            }
            for cid in contact_ids
        ],
    )


def make_ready_campaign(
    org,
    lists: list[Any],
    *,
    status: str = "approved",
    subject: str = "Les nouvelles du mois, {{ first_name }}",
    html: str = COMPILED_HTML,
    text: str = COMPILED_TEXT,
    links: tuple[str, ...] = LINKS,
    **kwargs: Any,
):
    """An approved newsletter with compiled parts and its links, ready for ``send``."""
    from campaigns.models import Campaign, CampaignLink

    campaign = Campaign(
        organisation_id=org.id,
        name=kwargs.pop("name", "Lettre de test"),
        kind="newsletter",
        subject=subject,
        preheader="",
        status=status,
        blocks=[{"type": "heading", "text": "Les nouvelles du mois"}],
        list_ids=[lst.id for lst in lists],
        segment_ids=[],
        version=1,
        compiled_version=1,
        compiled_html=html,
        compiled_text=text,
        compiled_mjml="<mjml></mjml>",
        **kwargs,
    )
    db.session.add(campaign)
    db.session.flush()
    for url in links:
        db.session.add(CampaignLink(organisation_id=org.id, campaign_id=campaign.id, url=url))
        db.session.flush()
    return campaign
