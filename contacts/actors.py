"""Dramatiq actors of contacts: ids in, one service call, commit."""

from __future__ import annotations

import logging

import dramatiq
from flask import current_app

from contacts import imports
from contacts.broker import broker
from contacts.importfile import Limits

log = logging.getLogger(__name__)


@dramatiq.actor(broker=broker, queue_name="imports", max_retries=0, time_limit=2 * 3600 * 1000)
def run_import(org_id: int, batch_id: int) -> None:
    """Import one pending batch; a second delivery finds it running or done and does nothing.

    No retries: a failure marks the batch failed with its message, and rerunning a half
    import must be the officer's decision (a new batch), not the queue's.
    """
    config = current_app.config
    imports.process_import(
        org_id,
        batch_id,
        secret=config["CRIEUR_SECRET_KEY"],
        limits=Limits(max_bytes=config["CRIEUR_IMPORT_MAX_BYTES"]),
    )


def enqueue_import(org_id: int, batch_id: int) -> bool:
    """Queue a recorded batch; False (logged) when the broker is unreachable.

    The batch is already committed as pending: the reconciler queues it again later
    (``contacts.import_recovery.recover_imports``), so the upload is not lost with the message.
    """
    try:
        run_import.send(int(org_id), int(batch_id))
    except Exception:
        log.warning("could not enqueue import %s", batch_id, exc_info=True)
        return False
    return True
