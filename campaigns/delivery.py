"""Delivery rows, the truth about who gets a campaign: freeze, claim, outcomes, progress.

The queue only says which rows to look at; these rows say what happened (RELIABILITY.md,
"the queue is a hint, the database is the truth"):

1. **Freeze** (:func:`start_sending`): in one transaction, the campaign moves
   ``approved → sending`` by a conditional UPDATE (:func:`campaigns.workflow.transition`)
   and ``INSERT … SELECT … ON CONFLICT DO NOTHING`` creates one ``queued`` row per sendable
   contact of its lists (``UNIQUE(campaign_id, contact_id)`` deduplicates across lists and
   segments). A double click or two schedulers: the second UPDATE changes nothing and fails.
2. **Claim** (:func:`claim_rows`): ``UPDATE … SET status='sending', lease_until=now()+L,
   attempts=attempts+1 WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`` on
   PostgreSQL, the same under ``BEGIN IMMEDIATE`` on SQLite. Only ``queued`` or due
   ``deferred`` rows are claimed, so a redelivered queue message claims nothing.
3. **In-flight window** (:func:`mark_in_flight`): before a row may reach the relay it is
   flagged ``possible_duplicate`` in a committed transaction; the flag is put back to its
   old value when the outcome commits. After a crash the rows still flagged are exactly
   those that may have been accepted without our knowing, so the reconciler re-sends
   every expired row but only these are listed as possible duplicates.
4. **Outcomes** (:func:`write_outcomes`): ``sent``, ``deferred`` (+ backoff), ``failed``,
   ``unknown``, ``skipped``, committed by the sender in small groups right after the
   relay's answers (see :mod:`campaigns.sender` for the trade-off).

A re-permission campaign (``Campaign.is_repermission``) turns the audience around: it goes
to the memberships still waiting for the person's confirmation (:func:`awaiting_clause`:
pending, contact active, so never a suppressed, erased or unsubscribed address) and never
to sendable ones; :func:`audience_clause` picks the rule for freeze, preview and the
sender's re-checks. Someone who confirms after the freeze is skipped at send time: the
request would be pointless (harmless, but noise).

Times that decide who may take a row (leases, due retries, the hourly window) come from
the database clock (``now()``), so a worker whose clock jumps cannot steal or strand rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Interval,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    text,
    update,
)

from campaigns import ratelimit, workflow
from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from contacts.db import DomainError, UTCDateTime, db, utcnow
from contacts.i18n import N_
from contacts.memberships import sendable_clause
from contacts.models import (
    Contact,
    ContactStatus,
    MailingList,
    Organisation,
    Subscription,
    SubscriptionStatus,
)

S = CampaignStatus
D = DeliveryStatus
T = Delivery.__table__

CLAIMABLE = (D.QUEUED, D.DEFERRED)
UNFINISHED = (D.QUEUED, D.DEFERRED, D.SENDING)
FINAL = (D.SENT, D.FAILED, D.UNKNOWN, D.CANCELLED, D.SKIPPED)

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


# --------------------------------------------------------------------------- DB clock


def is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def now_expr() -> ColumnElement[dt.datetime]:
    """The database's ``now()`` (PostgreSQL); on SQLite, the one process's clock."""
    if is_postgres():
        return func.now()
    return literal(utcnow(), UTCDateTime())


def later_expr(seconds: float) -> ColumnElement[dt.datetime]:
    """``now() + seconds`` on the database clock."""
    delta = dt.timedelta(seconds=seconds)
    if is_postgres():
        return func.now() + literal(delta, Interval())
    return literal(utcnow() + delta, UTCDateTime())


def db_now() -> dt.datetime:
    """The database clock as an aware datetime (one round trip on PostgreSQL)."""
    if is_postgres():
        value = db.session.scalar(select(func.now()))
        return value.astimezone(dt.UTC)
    return utcnow()


# ---------------------------------------------------------------------------- audience


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
    columns = [
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
    stmt = (
        dialect_insert(T)
        .from_select(columns, audience)
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


# ------------------------------------------------------------------ campaign state moves


def _org(org_id: int) -> Organisation:
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise DomainError("not_found", "Organisme introuvable.", status=404)
    return org


def _ready_to_send(org_id: int, campaign: Campaign) -> None:
    if not _org(org_id).from_address:
        raise DomainError(
            "no_sender",
            "L'organisme n'a pas d'adresse d'expédition : renseignez-la dans Paramètres.",
            status=409,
        )
    if not campaign.compiled_html or campaign.compiled_version != campaign.version:
        from campaigns.editing import ensure_compiled

        ensure_compiled(org_id, campaign)


def start_sending(
    org_id: int, campaign: Campaign, user_id: int | None, role: str, comment: str = ""
) -> int:
    """Move the campaign to ``sending`` and freeze its audience, in the caller's transaction.

    Returns the number of recipients. Raises DomainError ``empty_audience`` (nobody to
    send to: the caller rolls back, the campaign keeps its status), ``invalid_transition``
    (409: not approved, or another click/scheduler won), ``forbidden`` (403).
    """
    _ready_to_send(org_id, campaign)
    workflow.transition(
        org_id,
        campaign,
        S.SENDING,
        user_id,
        role,
        comment or N_("Envoi lancé."),
        values={"started_at": db_now(), "finished_at": None},
    )
    count = freeze_audience(org_id, campaign)
    if count == 0:
        raise DomainError(
            "empty_audience",
            "Aucun destinataire ne peut recevoir cette campagne (listes vides, désinscriptions "
            "ou consentements en attente) : rien n'a été envoyé.",
            status=409,
        )
    return count


PARIS = "Europe/Paris"


def parse_send_at(value: object) -> dt.datetime | None:
    """An ISO 8601 send time (``"2025-06-01T09:30"``, Paris time when no offset), or None.

    Raises DomainError ``invalid_at`` for anything else.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise DomainError("invalid_at", "« at » doit être une date et heure ISO 8601.")
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise DomainError(
            "invalid_at", "« at » doit être une date et heure ISO 8601 (2025-06-01T09:30)."
        ) from exc
    if when.tzinfo is None:
        from zoneinfo import ZoneInfo

        when = when.replace(tzinfo=ZoneInfo(PARIS))
    return when.astimezone(dt.UTC)


def schedule_sending(
    org_id: int, campaign: Campaign, at: dt.datetime, user_id: int | None, role: str
) -> None:
    """Program the send for ``at`` (aware datetime in the future)."""
    if at.tzinfo is None:
        raise DomainError("invalid_at", "L'heure d'envoi doit préciser son fuseau horaire.")
    if at <= utcnow():
        raise DomainError("invalid_at", "L'heure d'envoi programmée est déjà passée.")
    _ready_to_send(org_id, campaign)
    when = at.astimezone(dt.UTC)
    workflow.transition(
        org_id,
        campaign,
        S.SCHEDULED,
        user_id,
        role,
        f"Envoi programmé pour le {when:%Y-%m-%d %H:%M} UTC.",
        values={"scheduled_at": when},
    )


def pause_sending(org_id: int, campaign: Campaign, user_id: int | None, role: str) -> None:
    """Stop taking new rows; rows in flight finish, claimed ones go back to the queue."""
    workflow.transition(org_id, campaign, S.PAUSED, user_id, role, "Envoi mis en pause.")


def resume_sending(org_id: int, campaign: Campaign, user_id: int | None, role: str) -> int:
    """Back to ``sending``; returns how many rows are still to send (only those are sent)."""
    workflow.transition(org_id, campaign, S.SENDING, user_id, role, "Envoi repris.")
    return count_unfinished(campaign.id)


def cancel_sending(org_id: int, campaign: Campaign, user_id: int | None, role: str) -> int:
    """Cancel; rows not yet handed to a worker become ``cancelled``. Returns their number."""
    workflow.transition(org_id, campaign, S.CANCELLED, user_id, role, N_("Envoi annulé."))
    result = db.session.execute(
        update(T)
        .where(T.c.campaign_id == campaign.id, T.c.status.in_(CLAIMABLE))
        .values(status=D.CANCELLED, last_error="campagne annulée")
    )
    return int(result.rowcount or 0)


def count_unfinished(campaign_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(T)
            .where(T.c.campaign_id == campaign_id, T.c.status.in_(UNFINISHED))
        )
        or 0
    )


def finish_if_done(campaign_id: int) -> bool:
    """Mark a ``sending`` campaign ``sent`` when no row is queued, deferred or sending.

    The count and the move happen in the caller's transaction; a concurrent finisher
    loses the conditional UPDATE and this returns False. Commit after a True.
    """
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None or campaign.status != S.SENDING:
        return False
    if count_unfinished(campaign_id):
        return False
    try:
        workflow.transition(
            campaign.organisation_id,
            campaign,
            S.SENT,
            None,
            workflow.SYSTEM,
            N_("Envoi terminé : plus aucun message en attente."),
            values={"finished_at": db_now()},
        )
    except DomainError:
        return False
    return True


# ------------------------------------------------------------------------ claim & lanes


@dataclass(frozen=True, slots=True)
class Claimed:
    """One claimed row with what the sender needs to render and re-check it."""

    id: int
    contact_id: int
    list_id: int | None
    attempts: int
    was_duplicate: bool
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    fields: dict | None = None
    sendable: bool = False
    contact_status: str = ""
    source: str = ""
    legal_basis: str = ""
    tracking_consent: bool = False


@dataclass
class Claim:
    rows: list[Claimed]
    quota_blocked: bool = False


def _begin_write() -> None:
    """SQLite: take the write lock now (``BEGIN IMMEDIATE``), not halfway through."""
    if is_postgres():
        return
    connection = db.session.connection()
    raw = connection.connection.dbapi_connection
    if raw is not None and getattr(raw, "in_transaction", False):
        db.session.commit()
        connection = db.session.connection()
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def claim_rows(
    org_id: int,
    campaign_id: int,
    lo_id: int,
    hi_id: int,
    limit: int,
    lease_seconds: float,
    hourly_limit: int | None = None,
    *,
    repermission: bool = False,
) -> Claim:
    """Claim up to ``limit`` due rows with ids in ``[lo_id, hi_id]`` and commit the claim.

    Under an hourly cap, takes at most the body's remaining quota (``quota_blocked``
    when none is left).
    """
    db.session.commit()  # nothing of the caller's may ride on the claim's transaction
    _begin_write()
    pg = is_postgres()
    now = now_expr()
    if hourly_limit:
        ratelimit.lock_body_quota(org_id)
        remaining = ratelimit.hourly_remaining(org_id, hourly_limit, later_expr(-3600))
        if remaining is not None and remaining <= 0:
            db.session.commit()
            return Claim([], quota_blocked=True)
        if remaining is not None:
            limit = min(limit, remaining)
    due = select(T.c.id).where(
        T.c.campaign_id == campaign_id,
        T.c.id >= lo_id,
        T.c.id <= hi_id,
        T.c.status.in_(CLAIMABLE),
        or_(T.c.next_attempt_at.is_(None), T.c.next_attempt_at <= now),
    )
    due = due.order_by(T.c.id).limit(max(int(limit), 1))
    if pg:
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(T)
        .where(T.c.id.in_(due.scalar_subquery()), T.c.status.in_(CLAIMABLE))
        .values(
            status=D.SENDING,
            lease_until=later_expr(lease_seconds),
            attempts=T.c.attempts + 1,
        )
        .returning(T.c.id)
    )
    ids = sorted(db.session.execute(stmt).scalars().all())
    db.session.commit()
    return Claim(load_claimed(ids, repermission=repermission))


def load_claimed(ids: Sequence[int], *, repermission: bool = False) -> list[Claimed]:
    """The claimed rows with their contact and subscription, re-checked for sendability.

    For a re-permission campaign "sendable" means still awaiting confirmation.
    """
    if not ids:
        return []
    sendable = case((audience_clause(repermission), True), else_=False)
    rows = db.session.execute(
        select(
            T.c.id,
            T.c.contact_id,
            T.c.list_id,
            T.c.attempts,
            T.c.possible_duplicate,
            Contact.email,
            Contact.first_name,
            Contact.last_name,
            Contact.fields,
            sendable,
            Contact.status,
            Subscription.source,
            Subscription.legal_basis,
            Subscription.tracking_consent,
        )
        .select_from(T)
        .join(Contact, Contact.id == T.c.contact_id)
        .outerjoin(
            Subscription,
            and_(Subscription.list_id == T.c.list_id, Subscription.contact_id == T.c.contact_id),
        )
        .where(T.c.id.in_(list(ids)))
        .order_by(T.c.id)
    ).all()
    return [
        Claimed(
            id=r[0],
            contact_id=r[1],
            list_id=r[2],
            attempts=r[3],
            was_duplicate=bool(r[4]),
            email=r[5],
            first_name=r[6] or "",
            last_name=r[7] or "",
            fields=r[8] or {},
            sendable=bool(r[9]),
            contact_status=r[10] or "",
            source=r[11] or "",
            legal_basis=r[12] or "",
            tracking_consent=bool(r[13]),
        )
        for r in rows
    ]


def still_sendable(ids: Sequence[int], *, repermission: bool = False) -> set[int]:
    """Which of ``ids`` may still be sent to (a later unsubscribe or suppression wins).

    For a re-permission campaign: which are still awaiting confirmation.
    """
    if not ids:
        return set()
    return set(
        db.session.scalars(
            select(T.c.id)
            .select_from(T)
            .join(Contact, Contact.id == T.c.contact_id)
            .join(
                Subscription,
                and_(
                    Subscription.list_id == T.c.list_id,
                    Subscription.contact_id == T.c.contact_id,
                ),
            )
            .where(T.c.id.in_(list(ids)), audience_clause(repermission))
        )
    )


def campaign_status(campaign_id: int) -> str | None:
    return db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))


def first_ranges(
    campaign_id: int, batch_size: int, lanes: int, due_only: bool = False
) -> list[tuple[int, int]]:
    """The first ``lanes`` id ranges of ``batch_size`` starting at the first unsent row."""
    first = first_claimable_id(campaign_id, 0, due_only=due_only)
    if first is None:
        return []
    last = db.session.scalar(
        select(func.max(T.c.id)).where(T.c.campaign_id == campaign_id, T.c.status.in_(CLAIMABLE))
    )
    ranges = []
    for k in range(max(lanes, 1)):
        lo = first + k * batch_size
        if last is None or lo > last:
            break
        ranges.append((lo, lo + batch_size - 1))
    return ranges


def first_claimable_id(campaign_id: int, from_id: int, due_only: bool = True) -> int | None:
    """The lowest id ≥ ``from_id`` still to send (due now, with ``due_only``)."""
    conditions = [
        T.c.campaign_id == campaign_id,
        T.c.status.in_(CLAIMABLE),
        T.c.id >= from_id,
    ]
    if due_only:
        now = now_expr()
        conditions.append(or_(T.c.next_attempt_at.is_(None), T.c.next_attempt_at <= now))
    return db.session.scalar(select(func.min(T.c.id)).where(*conditions))


def next_retry_in(campaign_id: int) -> tuple[int, float] | None:
    """``(id, seconds)`` of the deferred row due first, or None when none waits."""
    row = db.session.execute(
        select(T.c.id, T.c.next_attempt_at)
        .where(T.c.campaign_id == campaign_id, T.c.status.in_(CLAIMABLE))
        .order_by(T.c.next_attempt_at, T.c.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    if row[1] is None:
        return row[0], 0.0
    return row[0], max((row[1] - db_now()).total_seconds(), 0.0)


def range_is_busy(campaign_id: int, lo_id: int, hi_id: int) -> bool:
    """Whether another worker holds rows of this range (claimed, or due but locked)."""
    now = now_expr()
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    T.c.campaign_id == campaign_id,
                    T.c.id >= lo_id,
                    T.c.id <= hi_id,
                    or_(
                        T.c.status == D.SENDING,
                        and_(
                            T.c.status.in_(CLAIMABLE),
                            or_(T.c.next_attempt_at.is_(None), T.c.next_attempt_at <= now),
                        ),
                    ),
                )
            )
        )
    )


# ------------------------------------------------------------------------------ outcomes


def mark_in_flight(ids: Iterable[int]) -> None:
    """Flag rows about to be sent (see the module docstring, point 3); caller commits."""
    ids = list(ids)
    if ids:
        db.session.execute(
            update(T)
            .where(T.c.id.in_(ids), T.c.status == D.SENDING)
            .values(possible_duplicate=True)
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to write for one claimed row.

    ``status``: ``sent``, ``deferred``, ``failed``, ``unknown``, ``skipped``, ``cancelled``,
    or ``release`` (hand it back untouched: paused, stopping, relay down, quota).
    ``delay``: seconds before it may be retried (deferred, release).
    """

    id: int
    status: str
    was_duplicate: bool
    error: str = ""
    delay: float | None = None
    message_id: str = ""


def write_outcomes(outcomes: Sequence[Outcome]) -> None:
    """Write outcomes (one executemany per kind); the caller commits.

    Each UPDATE only touches rows still ``sending``: a row the reconciler took back
    after a lease expiry is not overwritten.
    """
    if not outcomes:
        return
    pg = is_postgres()
    now = now_expr()
    by_kind: dict[str, list[Outcome]] = {}
    for item in outcomes:
        by_kind.setdefault(item.status, []).append(item)
    base = update(T).where(T.c.id == bindparam("b_id"), T.c.status == D.SENDING)
    for kind, items in by_kind.items():
        params: list[dict[str, Any]] = [{"b_id": o.id, "b_dup": o.was_duplicate} for o in items]
        if kind != "release":
            for p, o in zip(params, items, strict=True):
                p["b_err"] = o.error[:2000]
                p["b_mid"] = o.message_id
        values: dict[str, Any] = {"possible_duplicate": bindparam("b_dup")}
        if kind in (D.SENT, D.UNKNOWN):
            values.update(status=kind, sent_at=now)
        elif kind in (D.FAILED, D.SKIPPED, D.CANCELLED):
            values.update(status=kind)
        elif kind == D.DEFERRED:
            values.update(status=kind, next_attempt_at=_next_at_expr(pg))
            _with_next_at(params, items, pg)
        elif kind == "release":  # as it was before the claim: the attempt did not happen
            values.update(
                status=case((T.c.attempts > 1, D.DEFERRED), else_=D.QUEUED),
                attempts=T.c.attempts - 1,
                next_attempt_at=_next_at_expr(pg),
            )
            _with_next_at(params, items, pg)
        else:
            raise ValueError(f"unknown outcome {kind!r}")
        if kind != "release":
            values.update(last_error=bindparam("b_err"), message_id=bindparam("b_mid"))
        db.session.execute(base.values(**values), params)


def _with_next_at(params: list[dict], items: Sequence[Outcome], pg: bool) -> None:
    if pg:
        for p, o in zip(params, items, strict=True):
            p["b_delay"] = dt.timedelta(seconds=o.delay or 0.0)
    else:
        now = utcnow()
        for p, o in zip(params, items, strict=True):
            p["b_next"] = now + dt.timedelta(seconds=o.delay or 0.0)


def _next_at_expr(pg: bool) -> ColumnElement[dt.datetime]:
    if pg:
        return func.now() + bindparam("b_delay", type_=Interval())
    return bindparam("b_next", type_=UTCDateTime())


def renew_leases(ids: Sequence[int], lease_seconds: float) -> None:
    """Extend the lease of rows still held (slow relay); the caller commits."""
    if ids:
        db.session.execute(
            update(T)
            .where(T.c.id.in_(list(ids)), T.c.status == D.SENDING)
            .values(lease_until=later_expr(lease_seconds))
        )


# ------------------------------------------------------------------------------ progress


@dataclass
class Progress:
    campaign_id: int
    status: str
    counts: dict[str, int]
    possible_duplicates: int
    rate: float  # messages accepted per second over the last minute
    eta_seconds: float | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        return sum(self.counts.get(s, 0) for s in UNFINISHED)

    @property
    def done(self) -> int:
        return self.total - self.remaining

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "status": self.status,
            "recipients": self.total,
            **{str(s): self.counts.get(s, 0) for s in D},
            "remaining": self.remaining,
            "done": self.done,
            "possible_duplicates": self.possible_duplicates,
            "rate": round(self.rate, 2),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


RATE_WINDOW = dt.timedelta(seconds=60)


def progress(org_id: int, campaign: Campaign) -> Progress:
    """Counts by status, possible duplicates, the recent rate and the time left."""
    rows = db.session.execute(
        select(T.c.status, func.count())
        .where(T.c.campaign_id == campaign.id, T.c.organisation_id == org_id)
        .group_by(T.c.status)
    ).all()
    counts = {str(status): int(n) for status, n in rows}
    duplicates = int(
        db.session.scalar(
            select(func.count())
            .select_from(T)
            .where(
                T.c.campaign_id == campaign.id,
                T.c.possible_duplicate.is_(True),
                T.c.status != D.SENDING,  # in flight right now: not (yet) ambiguous
            )
        )
        or 0
    )
    now = db_now()
    window_start = max(now - RATE_WINDOW, campaign.started_at or now - RATE_WINDOW)
    recent = int(
        db.session.scalar(
            select(func.count())
            .select_from(T)
            .where(
                T.c.campaign_id == campaign.id,
                T.c.status.in_((D.SENT, D.UNKNOWN)),
                T.c.sent_at > window_start,
            )
        )
        or 0
    )
    seconds = max((now - window_start).total_seconds(), 1.0)
    rate = recent / seconds
    remaining = sum(counts.get(s, 0) for s in UNFINISHED)
    eta = None
    if remaining == 0:
        eta = 0.0
    elif rate > 0 and campaign.status == S.SENDING:
        eta = remaining / rate
    return Progress(
        campaign_id=campaign.id,
        status=campaign.status,
        counts=counts,
        possible_duplicates=duplicates,
        rate=rate,
        eta_seconds=eta,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
    )


WHICH = {
    "sent": (T.c.status == D.SENT,),
    "pending": (T.c.status.in_(UNFINISHED),),
    "duplicates": (T.c.possible_duplicate.is_(True), T.c.status != D.SENDING),
    "failed": (T.c.status == D.FAILED,),
    "unknown": (T.c.status == D.UNKNOWN,),
    "skipped": (T.c.status.in_((D.SKIPPED, D.CANCELLED)),),
}


def delivery_rows(
    org_id: int, campaign_id: int, which: str, *, after_id: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    """One page (keyset on id) of the campaign's deliveries of one kind (:data:`WHICH`)."""
    if which not in WHICH:
        raise DomainError("invalid_filter", "Filtre inconnu.")
    rows = db.session.execute(
        select(
            T.c.id,
            Contact.email,
            T.c.status,
            T.c.attempts,
            T.c.sent_at,
            T.c.last_error,
            T.c.possible_duplicate,
            T.c.next_attempt_at,
        )
        .select_from(T)
        .join(Contact, Contact.id == T.c.contact_id)
        .where(
            T.c.organisation_id == org_id,
            T.c.campaign_id == campaign_id,
            T.c.id > after_id,
            *WHICH[which],
        )
        .order_by(T.c.id)
        .limit(min(max(limit, 1), 1000))
    ).all()
    return [
        {
            "id": r[0],
            "email": r[1],
            "status": r[2],
            "attempts": r[3],
            "sent_at": r[4],
            "last_error": r[5],
            "possible_duplicate": bool(r[6]),
            "next_attempt_at": r[7],
        }
        for r in rows
    ]
