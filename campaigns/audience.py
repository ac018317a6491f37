"""Who a campaign goes to, who is left out and why, and the freeze of that audience into rows.

The freeze (:func:`freeze_audience`) is step 1 of :mod:`campaigns.delivery`: one
``INSERT … SELECT … ON CONFLICT DO NOTHING``, never the audience in memory.

A re-permission campaign (``Campaign.is_repermission``) turns the audience around: it goes
to the memberships still waiting for the person's confirmation (:func:`awaiting_clause`:
pending, contact active, so never a suppressed, erased or unsubscribed address) and never
to sendable ones; :func:`audience_clause` picks the rule for freeze, preview and the
sender's re-checks. Someone who confirms after the freeze is skipped at send time: the
request would be pointless (harmless, but noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    text,
)

from campaigns.dbclock import is_postgres
from campaigns.delivery import D, T
from campaigns.models import Campaign, Delivery
from contacts.db import DomainError, db
from contacts.i18n import N_
from contacts.memberships import sendable_clause
from contacts.models import (
    Contact,
    ContactStatus,
    MailingList,
    Subscription,
    SubscriptionStatus,
)

# Why a member of the campaign's lists is left out, most actionable last (see preview);
# "confirmed" only for a re-permission campaign (already sendable: nothing to ask).
LEFT_OUT = ("pending", "risky", "unsubscribed", "bounced", "suppressed", "confirmed")
LEFT_OUT_LABELS = {
    "pending": N_("inscription non confirmée (double opt-in en attente)"),
    "risky": N_("source à risque en attente de nouvelle autorisation"),
    "unsubscribed": N_("désinscrit·e"),
    "bounced": N_("adresse en échec définitif"),
    "suppressed": N_("adresse supprimée (signalement ou effacement)"),
    "confirmed": N_("inscription déjà confirmée (rien à redemander)"),
}


def _list_ids(org_id: int, campaign: Campaign) -> list[int]:
    wanted = [i for i in (campaign.list_ids or []) if isinstance(i, int)]
    if not wanted:
        return []
    found = set(
        db.session.scalars(
            select(MailingList.id).where(
                MailingList.organisation_id == org_id, MailingList.id.in_(wanted)
            )
        )
    )
    return [i for i in wanted if i in found]


def _segment_contacts(org_id: int, segment_ids: Sequence[int]):
    """``SELECT contact_id`` of the contacts in any of the segments (contacts.segments)."""
    try:
        from contacts.segments import segment_contact_ids  # type: ignore[attr-defined]
    except ImportError as exc:
        raise DomainError(
            "segments_unavailable",
            "Les segments ne peuvent pas encore être utilisés pour un envoi : retirez-les de "
            "la campagne.",
            status=409,
        ) from exc
    return segment_contact_ids(org_id, list(segment_ids))


def _members(org_id: int, campaign: Campaign):
    """Conditions selecting the memberships (Subscription ⋈ Contact) the campaign targets."""
    conditions: list[ColumnElement[bool]] = [
        Subscription.organisation_id == org_id,
        Contact.organisation_id == org_id,
        Subscription.list_id.in_(_list_ids(org_id, campaign)),
    ]
    segments = [i for i in (campaign.segment_ids or []) if isinstance(i, int)]
    if segments:
        conditions.append(Subscription.contact_id.in_(_segment_contacts(org_id, segments)))
    return conditions


def awaiting_clause() -> ColumnElement[bool]:
    """SQL condition over ``Subscription`` ⋈ ``Contact``: may a re-permission request go here?

    The membership waits for the person's confirmation (risky source or double opt-in)
    and the address is active: not suppressed, bounced, erased. A withdrawn membership is
    not pending, so an unsubscribed person is never asked again.
    """
    return and_(
        Subscription.status == SubscriptionStatus.PENDING,
        Contact.status == ContactStatus.ACTIVE,
    )


def audience_clause(repermission: bool = False) -> ColumnElement[bool]:
    """Who a campaign goes to: sendable members, or pending ones for a re-permission."""
    return awaiting_clause() if repermission else sendable_clause()


def _reason_rank(repermission: bool = False) -> ColumnElement[int]:
    """0 for a membership the campaign goes to, else 1 + its reason's index in :data:`LEFT_OUT`.

    Consistent with :func:`audience_clause`: rank 0 exactly when sendable (or, for a
    re-permission campaign, exactly when awaiting confirmation).
    """
    if repermission:
        return case(
            (Contact.status.in_((ContactStatus.ERASED, ContactStatus.COMPLAINED)), 5),
            (Contact.status == ContactStatus.BOUNCED, 4),
            (
                or_(
                    Contact.status != ContactStatus.ACTIVE,
                    Subscription.status == SubscriptionStatus.WITHDRAWN,
                ),
                3,
            ),
            (Subscription.status == SubscriptionStatus.PENDING, 0),
            else_=6,
        )
    return case(
        (Contact.status.in_((ContactStatus.ERASED, ContactStatus.COMPLAINED)), 5),
        (Contact.status == ContactStatus.BOUNCED, 4),
        (
            or_(
                Contact.status != ContactStatus.ACTIVE,
                Subscription.status == SubscriptionStatus.WITHDRAWN,
            ),
            3,
        ),
        (and_(Subscription.is_risky, Subscription.confirmed_at.is_(None)), 2),
        (Subscription.status != SubscriptionStatus.ACTIVE, 1),
        else_=0,
    )


@dataclass
class AudiencePreview:
    """What a send would do now: who gets it, and who is left out and why."""

    recipients: int
    left_out: dict[str, int] = field(default_factory=dict)
    frozen: bool = False  # the audience was set beforehand (resend to non-openers)

    @property
    def left_out_total(self) -> int:
        return sum(self.left_out.values())

    def reasons(self) -> list[tuple[str, str, int]]:
        """``(code, French label, count)`` for the reasons that apply, in display order."""
        return [(c, LEFT_OUT_LABELS[c], self.left_out[c]) for c in LEFT_OUT if self.left_out.get(c)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipients": self.recipients,
            "left_out": {c: self.left_out.get(c, 0) for c in LEFT_OUT},
            "left_out_total": self.left_out_total,
            "frozen": self.frozen,
        }


def preview_audience(org_id: int, campaign: Campaign) -> AudiencePreview:
    """Count who would receive the campaign and why the others are left out.

    A contact on several lists counts once: as a recipient if any membership is
    sendable, else under the most actionable reason among its memberships.
    """
    if has_deliveries(campaign.id):
        counts = dict(
            db.session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.campaign_id == campaign.id)
                .group_by(Delivery.status)
            ).all()
        )
        return AudiencePreview(recipients=sum(counts.values()), frozen=True)
    if not _list_ids(org_id, campaign):
        return AudiencePreview(recipients=0)
    _prefer_hash_joins()
    per_contact = (
        select(
            Subscription.contact_id,
            func.min(_reason_rank(bool(campaign.is_repermission))).label("rank"),
        )
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(*_members(org_id, campaign))
        .group_by(Subscription.contact_id)
        .subquery()
    )
    rows = db.session.execute(
        select(per_contact.c.rank, func.count()).group_by(per_contact.c.rank)
    ).all()
    preview = AudiencePreview(recipients=0)
    for rank, count in rows:
        if rank == 0:
            preview.recipients = int(count)
        else:
            preview.left_out[LEFT_OUT[int(rank) - 1]] = int(count)
    return preview


def has_deliveries(campaign_id: int) -> bool:
    return bool(db.session.scalar(select(exists().where(Delivery.campaign_id == campaign_id))))


def dialect_insert(table):
    """``INSERT`` of the database in use (for ``on_conflict_do_nothing``)."""
    if is_postgres():
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


# The columns a freeze writes (its SELECT lists them in this order); a resend freezes its
# own audience into the same columns (campaigns.resend).
FROZEN_COLUMNS = [
    "organisation_id",
    "campaign_id",
    "contact_id",
    "list_id",
    "status",
    "attempts",
    "message_id",
    "last_error",
    "possible_duplicate",
]


def freeze_audience(org_id: int, campaign: Campaign) -> int:
    """Create one ``queued`` row per sendable contact of the campaign; the rows count.

    A re-permission campaign gets one row per contact awaiting confirmation instead
    (:func:`audience_clause`).

    ``INSERT … SELECT … ON CONFLICT DO NOTHING``: one statement, never the audience in
    memory; a contact on several lists gets one row (from the lowest list id). A
    campaign whose rows exist already (a resend to non-openers) keeps exactly those.
    """
    if has_deliveries(campaign.id):
        return _row_count(campaign.id)
    if not _list_ids(org_id, campaign):
        return 0
    audience = (
        select(
            literal(org_id).label("organisation_id"),
            literal(campaign.id).label("campaign_id"),
            Subscription.contact_id,
            func.min(Subscription.list_id).label("list_id"),
            literal(str(D.QUEUED)).label("status"),
            literal(0).label("attempts"),
            literal("").label("message_id"),
            literal("").label("last_error"),
            false().label("possible_duplicate"),
        )
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(*_members(org_id, campaign), audience_clause(bool(campaign.is_repermission)))
        .group_by(Subscription.contact_id)
        .order_by(Subscription.contact_id)
    )
    stmt = (
        dialect_insert(T)
        .from_select(FROZEN_COLUMNS, audience)
        .on_conflict_do_nothing(index_elements=["campaign_id", "contact_id"])
    )
    _prefer_hash_joins()
    db.session.execute(stmt)
    _prefer_hash_joins(False)
    return _row_count(campaign.id)


def _prefer_hash_joins(on: bool = True) -> None:
    """PostgreSQL: plan the audience join as a hash join, whatever the statistics say.

    Right after a large import the tables have no statistics yet; the planner then
    believes they hold one row and nests loops, which made freezing 10,000 contacts take
    ten seconds instead of a tenth of one. ``SET LOCAL`` ends with the transaction.
    """
    if is_postgres():
        db.session.execute(text(f"SET LOCAL enable_nestloop = {'off' if on else 'on'}"))


def refresh_statistics() -> None:
    """PostgreSQL: ``ANALYZE deliveries`` after a freeze, so claims use the indexes at once.

    Sampled (about 30,000 rows), so it costs a fraction of a second on any table size; a
    database user that does not own the table gets a warning, not an error.
    """
    if is_postgres():
        db.session.execute(text("ANALYZE deliveries"))
        db.session.commit()


def _row_count(campaign_id: int) -> int:
    return int(
        db.session.scalar(select(func.count()).select_from(T).where(T.c.campaign_id == campaign_id))
        or 0
    )
