"""Builders for tracking tests: a sent campaign with stored links and delivery rows, and
the per-recipient URLs ``campaigns.links`` puts in its messages.

Used while the sending engine is not needed (the end-to-end test goes through it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
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


BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
GOOGLE_PROXY_UA = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
CLIENT_IP = "203.0.113.77"


def tables_containing(needle: str) -> list[str]:
    """``table.column`` of every text-like column whose value contains ``needle``.

    Looks at every table of the metadata (String, Text, JSON and binary columns, the
    latter decoded as UTF-8 in Python): the "no IP stored anywhere" check.
    """
    from sqlalchemy import JSON, LargeBinary, String, Text, cast, func, select

    found = []
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            kind = column.type
            if isinstance(kind, LargeBinary):
                for (value,) in db.session.execute(select(column)).all():
                    if value and needle.encode() in bytes(value):
                        found.append(f"{table.name}.{column.name}")
                        break
            elif isinstance(kind, String | Text | JSON):
                expr = cast(column, Text) if isinstance(kind, JSON) else column
                n = db.session.scalar(
                    select(func.count()).select_from(table).where(expr.contains(needle))
                )
                if n:
                    found.append(f"{table.name}.{column.name}")
    return found


@pytest.fixture(autouse=True)
def quiet_tracking_buffer(app):
    """Tests decide when events are written: no background batch between two requests,
    and nothing left in the buffer for the next test's database (import this fixture
    into a test module to use it)."""
    from webapp.views.tracking import state

    buffer = state(app).buffer
    state(app).reports.ttl = 0.0  # figures recomputed as soon as anything changed,
    state(app).reports.refresher = None  # while the test waits
    buffer.interval = 3600.0
    buffer.batch_size = 100_000
    yield buffer
    buffer.flush()
