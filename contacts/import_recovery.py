"""Imports left behind: batches a dead worker left running, job messages that were lost.

The job writes a heartbeat with every chunk; :func:`recover_imports` (called by the
reconciler, ``campaigns.scheduler``) marks a batch whose heartbeat stopped as failed,
telling the officer the file can be imported again safely (addresses already written
come out as duplicates), and names the pending batches whose message was lost so they are
queued again.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from contacts.db import db, utcnow
from contacts.imports import ImportStatus
from contacts.models import ImportBatch

log = logging.getLogger(__name__)

# A running batch without a heartbeat for this long was left by a dead worker. A chunk
# takes well under a second; walking a large XLSX before the first chunk, a minute.
STALE_SECONDS = 15 * 60


@dataclass
class Recovery:
    """What :func:`recover_imports` did: batches failed, and pending ones to queue again."""

    failed: list[int]
    requeue: list[tuple[int, int]]  # (org_id, batch_id)


STALE_MESSAGE = (
    "L'import s'est interrompu après {processed} lignes (arrêt du serveur ou du "
    "traitement). Vous pouvez relancer le même fichier sans risque : les adresses déjà "
    "importées seront comptées comme doublons."
)


def recover_imports(
    *,
    stale_seconds: float = STALE_SECONDS,
    queue_lost: bool = False,
    now: dt.datetime | None = None,
) -> Recovery:
    """Fail the batches a dead worker left running; name the pending ones to queue again.

    A running batch whose heartbeat is older than ``stale_seconds`` is failed. A pending
    batch queued that long ago lost its job message (broker down at upload, Redis
    flushed): it is named again, at most once per ``stale_seconds`` (its heartbeat
    records the re-queue), and a second delivery is harmless (``contacts.imports._claim``).
    ``queue_lost`` is the embedded mode's first pass after a start: the previous process
    took its in-memory queue and its worker with it, so every running batch is dead and
    every pending one must be queued again, whatever their age.
    """
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=stale_seconds)
    last_seen = func.coalesce(ImportBatch.heartbeat_at, ImportBatch.created_at)
    running = select(ImportBatch).where(ImportBatch.status == ImportStatus.RUNNING)
    pending = select(ImportBatch).where(ImportBatch.status == ImportStatus.PENDING)
    if not queue_lost:
        running = running.where(last_seen < cutoff)
        pending = pending.where(last_seen < cutoff)
    failed: list[int] = []
    for batch in db.session.scalars(running.order_by(ImportBatch.id)).all():
        batch.status = ImportStatus.FAILED
        batch.error = STALE_MESSAGE.format(processed=batch.processed_rows)
        batch.finished_at = now
        failed.append(batch.id)
    requeue: list[tuple[int, int]] = []
    for batch in db.session.scalars(pending.order_by(ImportBatch.id)).all():
        batch.heartbeat_at = now
        requeue.append((batch.organisation_id, batch.id))
    db.session.commit()
    if failed:
        log.warning("imports left running by a dead worker, marked failed: %s", failed)
    return Recovery(failed, requeue)
