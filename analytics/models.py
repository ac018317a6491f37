"""Tracking events, answers to RSVPs and polls, and website visits.

No column holds an IP address. In the "aggregate" policy ``contact_id`` and
``delivery_id`` stay empty: the event says what happened to a campaign, not who did it.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, ForeignKey, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contacts.db import OrgScoped, db, utcnow


class EventKind(enum.StrEnum):
    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    RSVP = "rsvp"
    POLL = "poll"
    WEB_VIEW = "web_view"


class DeviceClass(enum.StrEnum):
    PHONE = "phone"
    TABLET = "tablet"
    DESKTOP = "desktop"
    UNKNOWN = "unknown"


class TrackingEvent(OrgScoped, db.Model):
    __tablename__ = "tracking_events"
    __table_args__ = (
        Index("ix_tracking_events_campaign_kind_created", "campaign_id", "kind", "created_at"),
        # The last event of a campaign in one index probe: the version of its cached
        # report (analytics.dashboard.campaign_version).
        Index("ix_tracking_events_campaign_id_id", "campaign_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    # Per-contact only where the body's policy and the contact's consent allow it.
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    # A random per-message key lets aggregates count unique opens without naming anyone.
    recipient_key: Mapped[str] = mapped_column(String(32), default="")
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_links.id", ondelete="SET NULL")
    )
    is_machine: Mapped[bool] = mapped_column(default=False)
    device_class: Mapped[str] = mapped_column(String(10), default=DeviceClass.UNKNOWN)
    client_family: Mapped[str] = mapped_column(String(40), default="")
    value: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Answer(OrgScoped, db.Model):
    """The current RSVP or poll answer of one recipient; changeable until the deadline."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("campaign_id", "delivery_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # rsvp | poll
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SiteHit(OrgScoped, db.Model):
    """A page view on the body's own website, counted without cookie or stored IP."""

    __tablename__ = "site_hits"
    __table_args__ = (Index("ix_site_hits_org_created", "organisation_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256(daily salt + site + UA class + coarse network); the salt is discarded daily.
    visitor_hash: Mapped[str] = mapped_column(String(64))
    is_new_visit: Mapped[bool] = mapped_column(default=True)
    path: Mapped[str] = mapped_column(String(500), default="")
    referrer_host: Mapped[str] = mapped_column(String(255), default="")
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    )
    utm_source: Mapped[str] = mapped_column(String(100), default="")
    utm_medium: Mapped[str] = mapped_column(String(100), default="")
    utm_campaign: Mapped[str] = mapped_column(String(100), default="")
    device_class: Mapped[str] = mapped_column(String(10), default=DeviceClass.UNKNOWN)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DailySalt(db.Model):
    """Today's salt for site visitor hashes; yesterday's row is deleted, never kept."""

    __tablename__ = "daily_salts"

    day: Mapped[dt.date] = mapped_column(primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))


class RecipientActivity(OrgScoped, db.Model):
    """What one recipient did with one campaign: the unique figures without the events.

    A cache of ``tracking_events`` kept by ``analytics.rollup`` (in the transaction that
    writes the events), so the first view of a big campaign sums 100,000 rows instead of
    grouping a million events. The events stay the truth: ``analytics.rollup.rebuild``
    recomputes a campaign's rows from them, and reports use the rows only when their
    ``events`` add up to the campaign's event count.

    The recipient is the one of ``reports.recipient_ids`` (counting mode "auto"): the
    ``recipient_key`` when there is one (``delivery_id`` 0), else the delivery
    (``recipient_key`` ""), else the event alone (``delivery_id`` = minus the event id).
    The measure columns are 0/1 flags ("reached at least once"), so their sums are
    unique counts; ``clicks_total`` and ``events`` are counts.
    """

    __tablename__ = "recipient_activity"
    __table_args__ = (
        UniqueConstraint(
            "campaign_id",
            "organisation_id",
            "recipient_key",
            "delivery_id",
            name="uq_recipient_activity_recipient",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    recipient_key: Mapped[str] = mapped_column(String(32), default="")
    # Not a foreign key: 0 (a keyed recipient) and negative values (an event alone) too.
    delivery_id: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(default=0)
    opens_unique: Mapped[int] = mapped_column(SmallInteger, default=0)
    opens_any: Mapped[int] = mapped_column(SmallInteger, default=0)
    opens_pixel_unique: Mapped[int] = mapped_column(SmallInteger, default=0)
    clicks_unique: Mapped[int] = mapped_column(SmallInteger, default=0)
    clicks_any: Mapped[int] = mapped_column(SmallInteger, default=0)
    unsubscribes: Mapped[int] = mapped_column(SmallInteger, default=0)
    bounces: Mapped[int] = mapped_column(SmallInteger, default=0)
    complaints: Mapped[int] = mapped_column(SmallInteger, default=0)
    web_views: Mapped[int] = mapped_column(SmallInteger, default=0)
    clicks_total: Mapped[int] = mapped_column(default=0)  # human click events
    # The first human open or click (lowest event id) and its device, for the device split.
    first_human_id: Mapped[int | None] = mapped_column(BigInteger)
    first_human_at: Mapped[dt.datetime | None] = mapped_column()
    device_class: Mapped[str] = mapped_column(String(10), default="")
    client_family: Mapped[str] = mapped_column(String(40), default="")
