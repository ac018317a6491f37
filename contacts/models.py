"""Bodies (tenants) and the people they write to: lists, contacts, the consent ledger.

The ledger (:class:`ConsentEvent`) is append-only and is the legal record.
:class:`Subscription` is its projection, one row per (list, contact), kept in step by
``contacts.consent`` only, so that freezing an audience is one indexed query instead of a
replay of the ledger.

Subscriptions and ledger rows carry their body's id without a foreign key to
``organisations``: their contact's key already ties them to a body (and cascades from
it), and each key is a lookup per inserted row, which is most of an import's database
time (bench/reports/import.md). Their keys point at primary keys only: a key into a
composite (body, id) index let PostgreSQL's cached plan for the check pick another index
led by the body on a fresh table, and scan every contact of the body per imported row.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from contacts.db import DomainError, OrgScoped, db, utcnow


class OrgKind(enum.StrEnum):
    COMMUNE = "commune"
    INTERCOMMUNALITE = "intercommunalite"
    DEPARTEMENT = "departement"
    REGION = "region"
    ASSOCIATION = "association"
    SYNDICAT_MIXTE = "syndicat_mixte"
    AGENCE = "agence"
    SERVICE_ETAT = "service_etat"
    OTHER = "other"


class TrackingPolicy(enum.StrEnum):
    OFF = "off"
    AGGREGATE = "aggregate"
    PER_CONTACT = "per_contact"


class Purpose(enum.StrEnum):
    NEWSLETTER = "newsletter"
    INVITATIONS = "invitations"
    SURVEYS = "surveys"
    PRESS = "press"


class Source(enum.StrEnum):
    WEB_FORM = "web_form"
    EVENT_SIGNUP = "event_signup"
    INTERNAL_FILE = "internal_file"
    DIRECTORY = "directory"
    EXCHANGED = "exchanged"
    PURCHASED = "purchased"
    UNKNOWN = "unknown"
    API = "api"


RISKY_SOURCES = frozenset({Source.EXCHANGED, Source.PURCHASED, Source.UNKNOWN})


class LegalBasis(enum.StrEnum):
    CONSENT = "consent"
    PUBLIC_TASK = "public_task"


class ConsentAction(enum.StrEnum):
    GRANT = "grant"
    CONFIRM = "confirm"
    WITHDRAW = "withdraw"


class ContactStatus(enum.StrEnum):
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    ERASED = "erased"


class SubscriptionStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for double opt-in or re-permission
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class Organisation(db.Model):
    """A body: commune, intercommunalité, département… the tenant of every other row."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(40), default=OrgKind.COMMUNE)
    region: Mapped[str] = mapped_column(String(80), default="")
    population: Mapped[int | None]
    from_name: Mapped[str] = mapped_column(String(200), default="")
    from_address: Mapped[str] = mapped_column(String(320), default="")
    reply_to: Mapped[str] = mapped_column(String(320), default="")
    postal_address: Mapped[str] = mapped_column(Text, default="")
    dpo_contact: Mapped[str] = mapped_column(String(320), default="")
    site_key: Mapped[str] = mapped_column(
        String(40), unique=True, default=lambda: secrets.token_urlsafe(16)
    )
    tracking_policy: Mapped[str] = mapped_column(String(20), default=TrackingPolicy.AGGREGATE)
    smtp_url: Mapped[str] = mapped_column(String(500), default="")
    hourly_limit: Mapped[int | None]
    logo_url: Mapped[str] = mapped_column(String(500), default="")
    brand_color: Mapped[str] = mapped_column(String(7), default="#000091")
    website_url: Mapped[str] = mapped_column(String(500), default="")
    dkim_selector: Mapped[str] = mapped_column(String(63), default="")
    dkim_private_key: Mapped[str] = mapped_column(Text, default="")
    retention_months: Mapped[int] = mapped_column(default=36)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def mail_domain(self) -> str:
        """The domain of the sender address, used for Message-IDs and List-Id."""
        if "@" in self.from_address:
            return self.from_address.rsplit("@", 1)[1].lower()
        return f"{self.slug}.crieur.invalid"


class MailingList(OrgScoped, db.Model):
    __tablename__ = "mailing_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(20), default=Purpose.NEWSLETTER)
    description: Mapped[str] = mapped_column(Text, default="")
    double_opt_in: Mapped[bool] = mapped_column(default=True)
    custom_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_archive_public: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Contact(OrgScoped, db.Model):
    __tablename__ = "contacts"
    # (body, email) serves every query by body, so the mixin's own index on the body alone
    # is not built; nor is one on status, which a body's queries filter from that range
    # (each index is an entry per imported address: bench/reports/import.md).
    __table_args__ = (UniqueConstraint("organisation_id", "email"),)

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str] = mapped_column(String(200), default="")
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=ContactStatus.ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[dt.datetime | None]


class ConsentEvent(OrgScoped, db.Model):
    """One line of the append-only consent ledger (GDPR Art. 7(1): demonstrable consent).

    Only the contact is a foreign key (module docstring). The list, the user, the import
    batch and the API token are recorded as the ids they were when the line was written,
    without keys: a key's ``ON DELETE SET NULL`` would let deleting a user or a token
    rewrite the legal record behind the ledger's back, and each key would cost a lookup
    per imported address.
    """

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # No key and no index of its own (module docstring); read by contact.
    organisation_id: Mapped[int] = mapped_column()
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    list_id: Mapped[int | None]
    purpose: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    legal_basis: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor_user_id: Mapped[int | None]
    import_batch_id: Mapped[int | None]
    api_token_id: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_consent_events_contact_created", "contact_id", "created_at"),)


# The ledger is append-only: any ORM update or delete of one of its rows is refused. Here,
# beside the model, so the guard holds wherever the model is used.
@event.listens_for(ConsentEvent, "before_update")
def _refuse_update(mapper: Any, connection: Any, target: ConsentEvent) -> None:
    raise DomainError("ledger_append_only", "Le registre des consentements ne se modifie pas.")


@event.listens_for(ConsentEvent, "before_delete")
def _refuse_delete(mapper: Any, connection: Any, target: ConsentEvent) -> None:
    raise DomainError("ledger_append_only", "Le registre des consentements ne s'efface pas.")


class Subscription(OrgScoped, db.Model):
    """Projection of the ledger: the current state of one contact on one list."""

    __tablename__ = "subscriptions"
    # (list, contact) serves a list's members (freezing an audience, counts by status)
    # as well as the uniqueness; a (list, status, contact) index cost an entry per
    # imported address for index-only scans no page needed.
    __table_args__ = (UniqueConstraint("list_id", "contact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column()  # no key of its own: module docstring
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    # Indexed: a contact's lists (contact page, sendability checks) and the key's cascade.
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default=SubscriptionStatus.PENDING)
    source: Mapped[str] = mapped_column(String(20))
    legal_basis: Mapped[str] = mapped_column(String(20))
    is_risky: Mapped[bool] = mapped_column(default=False)
    tracking_consent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[dt.datetime | None]
    withdrawn_at: Mapped[dt.datetime | None]


class Suppression(OrgScoped, db.Model):
    """An address that must never be written to again, kept as a salted hash."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("organisation_id", "email_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(20))  # unsubscribed|bounced|complained|erased
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ImportBatch(OrgScoped, db.Model):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255), default="")
    file_path: Mapped[str] = mapped_column(String(500), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    api_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(String(20))
    legal_basis: Mapped[str] = mapped_column(String(20))
    attestation: Mapped[str] = mapped_column(Text, default="")
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    imported: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Written when the job claims the batch and with every chunk's progress: a ``running``
    # batch whose heartbeat stopped was left by a dead worker (contacts.imports.recover).
    heartbeat_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class Segment(OrgScoped, db.Model):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    filter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
