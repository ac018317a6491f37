"""The reconciler: what makes a lost queue, a killed worker or a restart harmless.

Run at start and then periodically (``campaigns.scheduler``), it looks only at the
database:

- a ``sending`` row whose lease has expired belongs to a dead or stuck worker: it goes
  back to ``deferred`` (due now). Its ``possible_duplicate`` flag is left as the sender
  set it: rows inside a worker's in-flight window were flagged before they could reach
  the relay (:mod:`campaigns.delivery`, point 3), the others provably never left;
- a ``sending`` campaign with due rows and no activity (no claim, lease renewal or send)
  for ``stall_seconds`` has lost its queue messages (Redis flushed or restarted, the
  in-process queue gone with its process): its first lanes are queued again. Queueing a
  batch that is in fact still in the queue is harmless, it then claims nothing;
- a ``sending`` campaign with no row ``queued``, ``deferred`` or ``sending`` is ``sent``
  (never earlier: listmonk#2278 marked campaigns finished with people skipped);
- a ``cancelled`` campaign's rows still waiting become ``cancelled``.

Every step is a conditional UPDATE, so two reconcilers at once are safe; on PostgreSQL an
advisory lock also makes the second one skip its pass rather than queue batches twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select, text, update

from campaigns import ratelimit
from campaigns.claims import first_claimable_id, first_ranges
from campaigns.dbclock import db_now, is_postgres, later_expr, now_expr
from campaigns.delivery import CLAIMABLE, T
from campaigns.models import Campaign, CampaignStatus, DeliveryStatus
from campaigns.sending import finish_if_done
from contacts.db import db
from contacts.models import Organisation

S = CampaignStatus
D = DeliveryStatus
_LOCK_KEY = 0x0C71E1  # pg_try_advisory_xact_lock: "crieur reconciler"


@dataclass
class ReconcileReport:
    expired: int = 0
    requeue: list[tuple[int, int, int]] = field(default_factory=list)  # (campaign, lo, hi)
    finished: list[int] = field(default_factory=list)
    cancelled_rows: int = 0
    skipped: bool = False  # another reconciler held the lock


def expire_leases(orphans: bool = False) -> int:
    """Hand expired leases back (``orphans``: every ``sending`` row, for a lone restarted
    process that knows no other worker can hold one). Caller commits."""
    now = now_expr()
    condition = T.c.status == D.SENDING
    if not orphans:
        condition = and_(condition, T.c.lease_until < now)
    result = db.session.execute(
        update(T)
        .where(condition)
        .values(
            status=D.DEFERRED,
            next_attempt_at=now,
            last_error="reprise après l'arrêt d'un worker (bail expiré)",
        )
    )
    return int(result.rowcount or 0)


def _try_lock() -> bool:
    if not is_postgres():
        return True
    return bool(db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _LOCK_KEY}))


def last_activity(campaign_id: int, lease_seconds: float) -> dt.datetime | None:
    """When a worker last claimed, renewed or sent a row of the campaign."""
    lease, sent = db.session.execute(
        select(func.max(T.c.lease_until), func.max(T.c.sent_at)).where(
            T.c.campaign_id == campaign_id
        )
    ).one()
    candidates = [sent] if sent else []
    if lease is not None:
        candidates.append(lease - dt.timedelta(seconds=lease_seconds))
    return max(candidates) if candidates else None


def is_stalled(
    campaign: Campaign, now: dt.datetime, stall_seconds: float, lease_seconds: float
) -> bool:
    """Due rows wait, and nothing happened to the campaign for ``stall_seconds``."""
    if first_claimable_id(campaign.id, 0) is None:
        return False
    org = db.session.get(Organisation, campaign.organisation_id)
    if org is not None and org.hourly_limit:
        left = ratelimit.hourly_remaining(org.id, org.hourly_limit, later_expr(-3600))
        if left == 0:
            return False  # waiting for the hourly cap, not stalled
    last = last_activity(campaign.id, lease_seconds) or campaign.started_at
    return last is None or (now - last).total_seconds() >= stall_seconds


def reconcile(
    *,
    batch_size: int,
    lanes: int,
    lease_seconds: float,
    stall_seconds: float = 120.0,
    queue_lost: bool = False,
    orphans: bool = False,
) -> ReconcileReport:
    """One pass; commits. ``queue_lost``: re-queue every sending campaign without waiting
    for ``stall_seconds`` (the in-process queue died with its process)."""
    report = ReconcileReport()
    db.session.commit()
    if not _try_lock():
        db.session.rollback()
        report.skipped = True
        return report
    report.expired = expire_leases(orphans=orphans)
    cancelled = db.session.execute(
        update(T)
        .where(
            T.c.status.in_(CLAIMABLE),
            T.c.campaign_id.in_(select(Campaign.id).where(Campaign.status == S.CANCELLED)),
        )
        .values(status=D.CANCELLED, last_error="campagne annulée")
    )
    report.cancelled_rows = int(cancelled.rowcount or 0)
    now = db_now()
    sending = db.session.scalars(
        select(Campaign).where(Campaign.status == S.SENDING).order_by(Campaign.id)
    ).all()
    for campaign in sending:
        if finish_if_done(campaign.id):
            report.finished.append(campaign.id)
            continue
        if queue_lost or is_stalled(campaign, now, stall_seconds, lease_seconds):
            for lo, hi in first_ranges(campaign.id, batch_size, lanes, due_only=True):
                report.requeue.append((campaign.id, lo, hi))
    db.session.commit()
    return report
