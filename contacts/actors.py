"""Dramatiq actors of contacts: ids in, one service call, commit."""

from __future__ import annotations

import dramatiq
from flask import current_app

from contacts import imports
from contacts.broker import broker
from contacts.importfile import Limits


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
