"""Tracking events, answers to RSVPs and polls, and website visits.

No column holds an IP address. In the "aggregate" policy ``contact_id`` and
``delivery_id`` stay empty: the event says what happened to a campaign, not who did it.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
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
