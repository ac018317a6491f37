"""Campaigns, their review trail, the links they carry, deliveries and the outbox.

A :class:`Delivery` row is the truth about one message to one contact: the queue only
says which rows to look at (see ``../RELIABILITY.md`` of the design notes).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contacts.db import OrgScoped, db, utcnow


class CampaignKind(enum.StrEnum):
    NEWSLETTER = "newsletter"
    INVITATION = "invitation"


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"
    HELD = "held"  # an overdue schedule waiting for a human (listmonk#1801)


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a worker, lease running
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNKNOWN = "unknown"  # connection lost after the final dot: may have been delivered
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # suppressed or unsubscribed after the freeze


class Campaign(OrgScoped, db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    kind: Mapped[str] = mapped_column(String(20), default=CampaignKind.NEWSLETTER)
    name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(255), default="")
    preheader: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(20), default=CampaignStatus.DRAFT, index=True)
    blocks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    event: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    list_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    segment_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # A re-permission campaign goes to the pending memberships of its lists (risky sources,
    # double opt-in awaiting confirmation) to ask for consent, never to the sendable ones.
    is_repermission: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)
    # Compiled once per version (MJML → HTML); per-recipient values are substituted later.
    compiled_version: Mapped[int] = mapped_column(default=0)
    compiled_html: Mapped[str] = mapped_column(Text, default="")
    compiled_text: Mapped[str] = mapped_column(Text, default="")
    compiled_mjml: Mapped[str] = mapped_column(Text, default="")
    scheduled_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    parent_campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignTransition(OrgScoped, db.Model):
    """Who moved a campaign from one status to another, when, and why."""

    __tablename__ = "campaign_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CampaignLink(OrgScoped, db.Model):
    """A URL stored for one campaign: click tokens resolve only to these (no open redirect)."""

    __tablename__ = "campaign_links"
    __table_args__ = (UniqueConstraint("campaign_id", "url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(255), default="")


class Delivery(OrgScoped, db.Model):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id"),
        Index("ix_deliveries_campaign_status_id", "campaign_id", "status", "id"),
        # The reconciler's scan for expired leases, and the hourly cap's count per body.
        Index("ix_deliveries_status_lease", "status", "lease_until"),
        Index("ix_deliveries_org_sent_at", "organisation_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_lists.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[dt.datetime | None]
    next_attempt_at: Mapped[dt.datetime | None]
    message_id: Mapped[str] = mapped_column(String(255), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    possible_duplicate: Mapped[bool] = mapped_column(default=False)
    sent_at: Mapped[dt.datetime | None]


class OutboxMessage(db.Model):
    """A message captured by the embedded outbox transport instead of a relay."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    sender: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
