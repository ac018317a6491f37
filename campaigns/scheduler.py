"""Time-driven sending work: scheduled campaigns, and the reconciler run periodically.

One :func:`tick` starts the campaigns whose time has come (or holds those overdue past
the grace period, listmonk#1801: a server down overnight must not send yesterday's
invitation without a human saying so), then runs a reconciler pass
(:func:`campaigns.reconcile.reconcile`) and queues what it found; contact imports left
by a dead worker are recovered in the same pass (``contacts.import_recovery.recover_imports``).

Who calls :func:`tick`:

- embedded mode (``crieur run``, in-process queue): :func:`start_in_process`, a daemon
  thread. Its first pass knows the in-memory queue of any previous process is gone and
  that no other worker exists, so it takes back every ``sending`` row at once and
  re-queues every campaign still sending;
- Redis/RabbitMQ mode: every worker process runs :class:`ReconcilerMiddleware`'s thread;
  the advisory lock in :func:`campaigns.reconcile.reconcile` lets one pass run at a time.
  A thread rather than a self-re-enqueueing actor, because a flushed or restarted Redis
  would lose that actor's message too.

These are edges (like actors): they read ``app.config``; the services they call do not.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from flask import Flask
from sqlalchemy import select

from campaigns import dbclock, reconcile, sending, workflow
from campaigns.models import Campaign, CampaignStatus
from campaigns.sender import SendSettings
from contacts.db import DomainError, db
from contacts.i18n import N_

log = logging.getLogger(__name__)
S = CampaignStatus

DEFAULT_INTERVAL = 30.0  # CRIEUR_RECONCILE_SECONDS
DEFAULT_STALL = 120.0  # CRIEUR_SEND_STALL_SECONDS
DEFAULT_GRACE = 15 * 60.0  # CRIEUR_SCHEDULE_GRACE_SECONDS


def run_due_schedules(grace_seconds: float) -> tuple[list[int], list[int]]:
    """Start the scheduled campaigns that are due; hold those overdue past the grace.

    Returns ``(started, held)`` campaign ids; commits each campaign on its own.
    """
    started: list[int] = []
    held: list[int] = []
    now = dbclock.db_now()
    due = db.session.scalars(
        select(Campaign)
        .where(Campaign.status == S.SCHEDULED, Campaign.scheduled_at <= now)
        .order_by(Campaign.scheduled_at, Campaign.id)
    ).all()
    for campaign in due:
        late = (now - campaign.scheduled_at).total_seconds()
        try:
            if late > grace_seconds:
                minutes = int(late // 60)
                workflow.transition(
                    campaign.organisation_id,
                    campaign,
                    S.HELD,
                    None,
                    workflow.SYSTEM,
                    f"Heure d'envoi dépassée de {minutes} min (serveur arrêté ?) : "
                    "l'envoi attend une confirmation.",
                )
                held.append(campaign.id)
            else:
                sending.start_sending(
                    campaign.organisation_id,
                    campaign,
                    None,
                    workflow.SYSTEM,
                    N_("Envoi programmé lancé."),
                )
                started.append(campaign.id)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            log.warning("scheduled campaign %s not started: %s", campaign.id, exc.code)
    return started, held


def _config(app: Flask, key: str, default: float) -> float:
    value = app.config.get(key)
    return float(value) if value else default


def tick(
    app: Flask, *, queue_lost: bool = False, orphans: bool = False
) -> reconcile.ReconcileReport:
    """Schedules, then one reconciler pass; queue the batches they call for."""
    from campaigns import actors

    settings = SendSettings.from_config(app.config)
    started, _held = run_due_schedules(_config(app, "CRIEUR_SCHEDULE_GRACE_SECONDS", DEFAULT_GRACE))
    for campaign_id in started:
        actors.enqueue_lanes(campaign_id, settings)
    report = reconcile.reconcile(
        batch_size=settings.batch_size,
        lanes=settings.lanes,
        lease_seconds=settings.lease_seconds,
        stall_seconds=_config(app, "CRIEUR_SEND_STALL_SECONDS", DEFAULT_STALL),
        queue_lost=queue_lost,
        orphans=orphans,
    )
    actors.enqueue_report(report)
    _recover_imports(app, queue_lost=queue_lost)
    if report.expired or report.requeue or report.finished:
        log.info(
            "reconciler: %d leases expired, %d batches re-queued, campaigns finished: %s",
            report.expired,
            len(report.requeue),
            report.finished,
        )
    return report


def _recover_imports(app: Flask, *, queue_lost: bool) -> None:
    """Imports share the reconciler's thread: fail the dead ones, queue the lost ones."""
    from contacts import actors as contact_actors
    from contacts import import_recovery

    recovery = import_recovery.recover_imports(
        stale_seconds=_config(app, "CRIEUR_IMPORT_STALL_SECONDS", import_recovery.STALE_SECONDS),
        queue_lost=queue_lost,
    )
    for org_id, batch_id in recovery.requeue:
        contact_actors.enqueue_import(org_id, batch_id)


class PeriodicRunner:
    """A daemon thread calling :func:`tick` every ``interval`` seconds in ``app``'s context."""

    def __init__(self, app: Flask, interval: float, *, first: dict[str, Any] | None = None):
        self.app = app
        self.interval = interval
        self.first = first or {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crieur-reconciler", daemon=True)

    def start(self) -> PeriodicRunner:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        options = self.first
        while not self._stop.is_set():
            try:
                with self.app.app_context():
                    try:
                        tick(self.app, **options)
                    finally:
                        db.session.remove()
                options = {}
            except Exception:  # keep going: the database or broker may be back next time
                log.exception("reconciler pass failed")
            self._stop.wait(self.interval)


_in_process: PeriodicRunner | None = None


def start_in_process(app: Flask) -> PeriodicRunner:
    """Embedded mode: reconcile at once (queue lost, no other worker), then periodically."""
    global _in_process
    if _in_process is not None:
        _in_process.stop()
    interval = _config(app, "CRIEUR_RECONCILE_SECONDS", DEFAULT_INTERVAL)
    _in_process = PeriodicRunner(app, interval, first={"queue_lost": True, "orphans": True}).start()
    return _in_process


def stop_in_process() -> None:
    global _in_process
    if _in_process is not None:
        _in_process.stop()
        _in_process = None


def _find_app(broker: dramatiq.Broker) -> Flask | None:
    """The app of the worker's app-context middleware (``webapp.worker``), found by shape."""
    for middleware in broker.middleware:
        app = getattr(middleware, "app", None)
        if app is not None and hasattr(app, "app_context"):
            return app
    return None


class ReconcilerMiddleware(Middleware):
    """Runs the reconciler periodically inside each worker process of a real broker."""

    def __init__(self) -> None:
        self.runner: PeriodicRunner | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from contacts.broker import is_embedded

        app = _find_app(broker)
        if is_embedded() or app is None or self.runner is not None:
            return  # the in-process mode has start_in_process; tests drive ticks themselves
        interval = _config(app, "CRIEUR_RECONCILE_SECONDS", DEFAULT_INTERVAL)
        self.runner = PeriodicRunner(app, interval).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.runner is not None:
            self.runner.stop(timeout=5.0)
            self.runner = None
