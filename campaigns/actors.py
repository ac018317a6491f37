"""Dramatiq actors of campaigns: ids in, one service call, commit, enqueue what comes next.

Running any of them twice is safe: the delivery rows decide what a rerun does (a batch
whose rows are already claimed or sent claims nothing). Enqueueing is best-effort: when
the broker is unreachable the rows stay in the database and the reconciler re-enqueues
them (``campaigns.reconcile``).
"""

from __future__ import annotations

import logging
import threading

import dramatiq
from dramatiq.middleware import Middleware
from flask import current_app

from campaigns import reconcile, sender
from campaigns.audience import refresh_statistics
from campaigns.claims import first_ranges
from campaigns.scheduler import ReconcilerMiddleware
from campaigns.sender import SendSettings
from contacts.broker import broker
from contacts.db import db

log = logging.getLogger(__name__)


class StopFlagMiddleware(Middleware):
    """Tells running batches that their worker is shutting down (SIGTERM, Ctrl-C).

    Dramatiq lets a worker thread finish its message on shutdown; a batch checks
    :func:`worker_stopping` between messages, commits what it sent, hands its unsent rows
    back and re-queues its range, so a graceful stop sends nothing twice.
    """

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        for thread in worker.workers:
            thread._crieur_stopping = False  # type: ignore[attr-defined]

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        for thread in worker.workers:
            thread._crieur_stopping = True  # type: ignore[attr-defined]


def worker_stopping() -> bool:
    """True when the worker running this thread has been asked to stop."""
    return bool(getattr(threading.current_thread(), "_crieur_stopping", False))


for _middleware in (StopFlagMiddleware, ReconcilerMiddleware):
    if not any(isinstance(m, _middleware) for m in broker.middleware):
        broker.add_middleware(_middleware())


def settings_from_app() -> SendSettings:
    return SendSettings.from_config(current_app.config)


@dramatiq.actor(
    broker=broker,
    queue_name="send",
    max_retries=20,
    min_backoff=1000,
    max_backoff=60_000,
    time_limit=60 * 60 * 1000,  # a batch yields after a slice; one SMTP reply may take 10 min
)
def deliver_batch(campaign_id: int, lo_id: int, hi_id: int) -> None:
    """Send the due rows of one id range of a campaign, then queue what comes next."""
    result = sender.send_batch(
        campaign_id, lo_id, hi_id, settings_from_app(), should_stop=worker_stopping
    )
    db.session.commit()
    if result.next is not None:
        enqueue_batch(campaign_id, *result.next, delay=result.delay)


@dramatiq.actor(broker=broker, queue_name="send", max_retries=5)
def start_campaign(campaign_id: int) -> None:
    """Queue the first batches of a campaign that was just moved to ``sending``."""
    refresh_statistics()
    enqueue_lanes(campaign_id, settings_from_app())


@dramatiq.actor(broker=broker, queue_name="default", max_retries=0, time_limit=5 * 60 * 1000)
def reconcile_deliveries() -> None:
    """One reconciler pass (expired leases, stalled campaigns, finished ones, schedules)."""
    from campaigns import scheduler

    scheduler.tick(current_app._get_current_object())


def enqueue_batch(campaign_id: int, lo_id: int, hi_id: int, delay: float | None = None) -> bool:
    """Queue one batch; False (logged) when the broker is unreachable."""
    try:
        deliver_batch.send_with_options(
            args=(int(campaign_id), int(lo_id), int(hi_id)),
            delay=int(delay * 1000) if delay else None,
        )
    except Exception:  # the broker is down: the reconciler will find these rows again
        log.warning("could not enqueue batch %s [%s, %s]", campaign_id, lo_id, hi_id, exc_info=True)
        return False
    return True


def enqueue_lanes(campaign_id: int, settings: SendSettings) -> int:
    """Queue a campaign's first lanes (one batch message per lane); how many were queued."""
    ranges = first_ranges(campaign_id, settings.batch_size, settings.lanes)
    db.session.commit()
    return sum(enqueue_batch(campaign_id, lo, hi) for lo, hi in ranges)


def enqueue_report(report: reconcile.ReconcileReport) -> int:
    """Queue the batches a reconciler pass found stalled."""
    return sum(enqueue_batch(c, lo, hi) for c, lo, hi in report.requeue)


def start_campaign_soon(campaign_id: int) -> bool:
    """Ask a worker to queue the campaign's lanes (edges call this after their commit)."""
    try:
        start_campaign.send(int(campaign_id))
    except Exception:
        log.warning("could not enqueue start of campaign %s", campaign_id, exc_info=True)
        return False
    return True
