"""Builders for tracking tests: a sent campaign with stored links and delivery rows, and
the per-recipient URLs ``campaigns.links`` puts in its messages.

Used while the sending engine is not needed (the end-to-end test goes through it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app

from contacts.db import db


def sent_campaign(
    org,
    lst,
    contacts,
    *,
    urls=("https://www.exemple.fr/agenda", "https://autre.example.org/doc"),
    kind: str = "newsletter",
    started_at: dt.datetime | None = None,
    sent_at: dt.datetime | None = None,
    blocks: list[dict[str, Any]] | None = None,
    event: dict[str, Any] | None = None,
    subject: str = "Les nouvelles du mois",
    status: str = "sent",
):
    """A campaign of ``org`` sent to ``contacts`` on ``lst``: (campaign, links, deliveries)."""
    from campaigns.models import Campaign, CampaignLink, Delivery

    started_at = started_at or dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    sent_at = sent_at or started_at
    campaign = Campaign(
        organisation_id=org.id,
        kind=kind,
        name=subject,
        subject=subject,
        status=status,
        list_ids=[lst.id],
        blocks=blocks or [{"type": "heading", "text": "Bonjour"}],
        event=event,
        started_at=started_at,
        finished_at=started_at + dt.timedelta(minutes=5),
    )
    db.session.add(campaign)
    db.session.flush()
    links = []
    for url in urls:
        link = CampaignLink(organisation_id=org.id, campaign_id=campaign.id, url=url, label="")
        db.session.add(link)
        db.session.flush()
        links.append(link)
    deliveries = []
    for contact in contacts:
        d = Delivery(
            organisation_id=org.id,
            campaign_id=campaign.id,
            contact_id=contact.id,
            list_id=lst.id,
            status="sent",
            sent_at=sent_at,
        )
        db.session.add(d)
        deliveries.append(d)
    db.session.flush()
    return campaign, links, deliveries


def recipient_links(org, campaign, links, policy: str | None = None):
    """The ``campaigns.links.RecipientLinks`` the sender would build for ``campaign``."""
    from campaigns.links import RecipientLinks, stored_links

    return RecipientLinks(
        public_url=current_app.config["CRIEUR_PUBLIC_URL"],
        secret=current_app.config["CRIEUR_SECRET_KEY"],
        policy=policy or org.tracking_policy,
        org_id=org.id,
        campaign_id=campaign.id,
        campaign_uuid=campaign.uuid,
        campaign_name=campaign.name,
        website_url=org.website_url,
        links=stored_links(links),
    )


def path_of(url: str) -> str:
    """The path (and query) of a public URL, for the test client."""
    base = current_app.config["CRIEUR_PUBLIC_URL"]
    assert url.startswith(base), url
    return url[len(base) :]


def flush_tracking() -> int:
    """Write the events the tracking endpoints queued (the buffer's background batch)."""
    from webapp.views.tracking import flush_events

    return flush_events()
