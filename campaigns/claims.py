"""Claims on delivery rows and their leases, and the id ranges (lanes) they are taken from.

Step 2 of :mod:`campaigns.delivery`: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
LOCKED) RETURNING`` on PostgreSQL, the same under ``BEGIN IMMEDIATE`` on SQLite; only
``queued`` or due ``deferred`` rows are claimed, so a redelivered queue message claims
nothing. Also the sender's re-checks of claimed rows (still sendable? campaign status?).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, case, exists, func, or_, select, update

from campaigns import ratelimit
from campaigns.audience import audience_clause
from campaigns.dbclock import db_now, is_postgres, later_expr, now_expr
from campaigns.delivery import CLAIMABLE, D, T
from campaigns.models import Campaign
from contacts.db import db
from contacts.models import Contact, Subscription


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


def renew_leases(ids: Sequence[int], lease_seconds: float) -> None:
    """Extend the lease of rows still held (slow relay); the caller commits."""
    if ids:
        db.session.execute(
            update(T)
            .where(T.c.id.in_(list(ids)), T.c.status == D.SENDING)
            .values(lease_until=later_expr(lease_seconds))
        )
