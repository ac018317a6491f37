"""How fast Crieur may send: per worker process, and per body and hour across all workers.

Two limits, two mechanisms:

- ``CRIEUR_SEND_RATE`` (messages per second, per worker process) protects the relay. It is
  a token bucket in memory shared by the process's threads (:class:`RateLimiter`): each
  message reserves the next free slot and the thread sleeps until it.
- ``Organisation.hourly_limit`` (messages per hour, per body) stops one body from hogging
  shared workers and relays. It must hold across processes and hosts, so it is counted
  in the database: rows sent (or possibly sent) in the last hour *plus rows claimed right
  now* by any worker. The claim (:func:`campaigns.claims.claim_rows`) takes at most the
  remaining quota, under a per-body lock (PostgreSQL advisory lock; SQLite's
  ``BEGIN IMMEDIATE`` already serialises writers), so two workers cannot both take the
  last slots: the cap is exact, not approximate.

Fairness between bodies comes from the queue shape (see :mod:`campaigns.sender`): a
campaign has at most a few batch messages queued at a time and each yields after a time
slice, so a second body's campaign is interleaved with the first instead of waiting
behind its whole audience; the hourly cap then bounds any single body.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

from sqlalchemy import ColumnElement, and_, func, or_, select, text

from campaigns.models import Delivery, DeliveryStatus
from contacts.db import db

HOUR = dt.timedelta(hours=1)
# A row counts against the hour once it may have reached the relay.
COUNTED = (DeliveryStatus.SENT, DeliveryStatus.UNKNOWN)
_QUOTA_LOCK_CLASS = 0x0C71E0  # first key of pg_advisory_xact_lock(int, int): "crieur quota"


class RateLimiter:
    """A token bucket shared by the threads of one process; ``rate=None`` means unlimited.

    ``burst`` slots may be used at once after an idle period, so a lone thread does not
    pay the interval twice; beyond that messages are spaced ``1/rate`` seconds apart.
    """

    def __init__(self, rate: float | None, burst: int = 1) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.interval = 1.0 / self.rate if self.rate else 0.0
        self.burst = max(int(burst), 1)
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot and return how long to wait for it (0 when it is now)."""
        if self.rate is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            earliest = now - self.interval * (self.burst - 1)
            slot = max(self._next, earliest)
            self._next = slot + self.interval
            return max(slot - now, 0.0)

    def acquire(
        self,
        should_stop: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> bool:
        """Wait for a slot; False when ``should_stop`` turned true while waiting."""
        wait = self.reserve()
        while wait > 0:
            if should_stop is not None and should_stop():
                return False
            step = min(wait, 0.2)
            sleep(step)
            wait -= step
        return True


_limiters: dict[float | None, RateLimiter] = {}
_limiters_lock = threading.Lock()


def process_limiter(rate: float | None) -> RateLimiter:
    """The one limiter of this process for ``rate`` (every thread shares it)."""
    key = rate if rate and rate > 0 else None
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RateLimiter(key)
        return limiter


# --------------------------------------------------------------------- hourly body caps


def _counted_clause(org_id: int, hour_ago: ColumnElement) -> ColumnElement[bool]:
    return and_(
        Delivery.organisation_id == org_id,
        or_(
            Delivery.status == DeliveryStatus.SENDING,
            and_(Delivery.status.in_(COUNTED), Delivery.sent_at > hour_ago),
        ),
    )


def lock_body_quota(org_id: int) -> None:
    """Serialise quota checks of one body until the end of the transaction (PostgreSQL)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(:k1, :k2)"),
            {"k1": _QUOTA_LOCK_CLASS, "k2": int(org_id)},
        )


def hourly_used(org_id: int, now: ColumnElement) -> int:
    """Messages of the body sent in the last hour or being sent right now."""
    return int(
        db.session.scalar(select(func.count(Delivery.id)).where(_counted_clause(org_id, now))) or 0
    )


def hourly_remaining(org_id: int, limit: int | None, now: ColumnElement) -> int | None:
    """How many more the body may send now (None: no cap). Call under :func:`lock_body_quota`."""
    if not limit or limit <= 0:
        return None
    return max(int(limit) - hourly_used(org_id, now), 0)


def quota_wait_seconds(org_id: int, limit: int, now_value: dt.datetime) -> float:
    """Seconds until the body's next slot frees up (the oldest counted send turns 1 h old)."""
    oldest = db.session.scalar(
        select(Delivery.sent_at)
        .where(
            Delivery.organisation_id == org_id,
            Delivery.status.in_(COUNTED),
            Delivery.sent_at > now_value - HOUR,
        )
        .order_by(Delivery.sent_at)
        .limit(1)
    )
    if oldest is None:
        return 5.0  # rows in flight hold the quota: look again shortly
    return min(max((oldest + HOUR - now_value).total_seconds() + 1.0, 1.0), 600.0)
