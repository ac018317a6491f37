"""Run Dramatiq actors inside the Flask app, and the in-process worker of ``crieur run``.

The middleware pushes an app context around each message and removes the database
session afterwards (django_dramatiq's ``DbConnectionsMiddleware``, done the Flask way).
It is added to the broker once; later ``init_app`` calls only swap the app, so a test
suite that builds one app per test keeps working.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from flask import Flask

from contacts.broker import broker, is_embedded
from contacts.db import db

log = logging.getLogger(__name__)


class AppContextMiddleware(Middleware):
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        ctx = self.app.app_context()
        ctx.push()
        self._local.ctx = ctx

    def _pop(self) -> None:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            return
        try:
            db.session.rollback()
            db.session.remove()
        finally:
            ctx.pop()
            self._local.ctx = None

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        self._pop()

    def after_skip_message(self, broker, message) -> None:
        self._pop()


def init_app(app: Flask) -> AppContextMiddleware:
    """Make actors run in ``app``'s context (idempotent)."""
    for mw in broker.middleware:
        if isinstance(mw, AppContextMiddleware):
            mw.app = app
            return mw
    mw = AppContextMiddleware(app)
    broker.add_middleware(mw)
    return mw


_embedded_worker: dramatiq.Worker | None = None


def start_embedded_worker(threads: int = 4) -> dramatiq.Worker | None:
    """Start a worker thread pool in this process when the broker is the in-memory stub."""
    global _embedded_worker
    if not is_embedded() or _embedded_worker is not None:
        return _embedded_worker
    _embedded_worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    _embedded_worker.start()
    log.info("in-process Dramatiq worker started with %d threads", threads)
    return _embedded_worker


def stop_embedded_worker() -> None:
    global _embedded_worker
    if _embedded_worker is not None:
        _embedded_worker.stop()
        _embedded_worker = None
