"""How an import's chunks get written: inline in the job's session, or from a writer thread.

Both take :class:`~contacts.chunk_planning.ChunkJob` objects in order and commit each one
with the batch's progress; ``close`` returns the count imported, ``abort`` stops without
raising (the job is already failing).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from contacts.chunk_planning import ChunkJob, ImportTarget
from contacts.chunk_writing import pg_payload, pg_prepare, pg_write, progress_update, write_chunk
from contacts.db import db

log = logging.getLogger(__name__)


class InlineWriter:
    """Writes each chunk in the caller's session and commits it with the progress."""

    def __init__(self, target: ImportTarget) -> None:
        self.target = target
        self.imported = 0

    def submit(self, job: ChunkJob) -> None:
        self.imported += write_chunk(db.session, self.target, job)
        db.session.execute(progress_update(self.target, job, self.imported))
        db.session.commit()

    def close(self) -> int:
        return self.imported

    def abort(self) -> int:
        return self.imported


class ThreadWriter:
    """Writes chunks from a second thread and connection, one chunk behind the reader.

    Reading and validating (Python, holding the GIL) and inserting (the PostgreSQL
    server, while this thread waits on its socket without the GIL) then run on two
    cores at once. Chunks never share an address (the reader reports repeats as
    duplicates), so writing chunk N while chunk N+1 is planned needs no ordering. The
    queue holds two chunks at most: memory stays bounded whatever the file's size.
    """

    def __init__(self, engine: Any, target: ImportTarget) -> None:
        self.engine = engine
        self.target = target
        self.imported = 0
        self.error: BaseException | None = None
        self.queue: queue.Queue[ChunkJob | None] = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.engine.connect() as conn:
                fused = conn.dialect.name == "postgresql"
                if fused:
                    pg_prepare(conn, self.target)
                while (job := self.queue.get()) is not None:
                    if fused:  # progress included
                        self.imported = pg_write(conn, self.target, job, self.imported)
                    else:
                        self.imported += write_chunk(conn, self.target, job)
                        conn.execute(progress_update(self.target, job, self.imported))
                    conn.commit()
        except BaseException as exc:  # handed to the reading thread
            self.error = exc
            log.exception("import writer failed")

    def submit(self, job: ChunkJob) -> None:
        if self.engine.dialect.name == "postgresql":
            job.payload = pg_payload(job)
        while True:
            if self.error is not None:
                raise RuntimeError("the import writer stopped") from self.error
            try:
                self.queue.put(job, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> int:
        self._stop()
        if self.error is not None:
            raise RuntimeError("the import writer stopped") from self.error
        return self.imported

    def abort(self) -> int:
        self._stop()
        return self.imported

    def _stop(self) -> None:
        while self.thread.is_alive():
            try:
                self.queue.put(None, timeout=0.5)
                break
            except queue.Full:
                continue
        self.thread.join()
