"""An in-process write buffer: public endpoints answer first, rows are inserted in batches.

The open pixel and the click redirect must answer in a few milliseconds whatever the
database is doing, and 200 pixels a second must not become 200 transactions a second.
So each hit becomes a small dict appended to a bounded in-memory queue, and a daemon
thread hands the queue to a ``writer`` (one ``executemany`` per batch) every
``interval`` seconds, or as soon as ``batch_size`` items wait.

Losing nothing matters more than speed:

- when the queue is full (the database is slow or down), :meth:`EventBuffer.put` writes
  the item synchronously in the caller's thread instead of dropping it;
- a batch whose write fails goes back to the front of the queue and is retried with a
  back-off; items are dropped only at shutdown, after a last attempt, and counted in
  :attr:`EventBuffer.lost` and the log;
- :meth:`EventBuffer.flush` writes everything queued before it returns (tests and
  shutdown), and :meth:`EventBuffer.close` is registered with ``atexit`` so a clean
  shutdown (gunicorn's SIGTERM, Ctrl-C) flushes the queue.

The thread starts lazily on the first :meth:`put` of each process, so a buffer created
before gunicorn forks its workers gets one thread per worker, each with its own queue.
What a SIGKILL or a power cut catches in the queue (at most ``interval`` seconds of hits)
is lost: the trade made for answering before the insert.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["EventBuffer"]

log = logging.getLogger(__name__)

Writer = Callable[[Sequence[Any]], None]

# Every live buffer, closed at interpreter exit. Weak, so that a buffer (and the app its
# writer refers to) can be collected: tests build hundreds of apps.
_LIVE: weakref.WeakSet[EventBuffer] = weakref.WeakSet()


def _close_all() -> None:
    for buffer in list(_LIVE):
        buffer.close()


atexit.register(_close_all)


class EventBuffer:
    """A bounded queue of items written by ``writer`` in batches from a background thread.

    ``writer(items)`` must write every item or raise; it is called from the background
    thread, from :meth:`flush`, and from :meth:`put` when the queue is full, one call at
    a time (a lock serialises writes, so a writer needs no locking of its own).
    """

    def __init__(
        self,
        writer: Writer,
        *,
        max_items: int = 20_000,
        batch_size: int = 500,
        interval: float = 0.5,
        retry_delays: Sequence[float] = (0.1, 0.5, 2.0, 5.0),
        name: str = "event-buffer",
        register_atexit: bool = True,
        idle_exit: float = 60.0,
    ) -> None:
        if max_items < 1 or batch_size < 1 or interval <= 0:
            raise ValueError("max_items, batch_size and interval must be positive")
        self.writer = writer
        self.max_items = max_items
        self.batch_size = batch_size
        self.interval = interval
        self.retry_delays = tuple(retry_delays) or (1.0,)
        self.name = name
        self.idle_exit = idle_exit
        self.written = 0  # items written so far (by any path)
        self.sync_writes = 0  # items written in the caller's thread because the queue was full
        self.failures = 0  # failed write attempts
        self.lost = 0  # items given up at shutdown
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._closing = False
        self._failed_streak = 0
        if register_atexit:
            _LIVE.add(self)

    # ------------------------------------------------------------------ producers

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Any) -> None:
        """Queue ``item``; write it now, in this thread, when the queue is full."""
        with self._cond:
            if len(self._items) < self.max_items and not self._closing:
                # Under the lock, so the thread cannot end for idleness meanwhile.
                self._ensure_thread()
                self._items.append(item)
                if len(self._items) >= self.batch_size:
                    self._cond.notify()
                return
        # Full (or shutting down): never drop, write it ourselves.
        with self._write_lock:
            self._write([item])
            self.sync_writes += 1

    # ------------------------------------------------------------------ draining

    def flush(self) -> int:
        """Write every queued item now; returns how many were written by this call.

        Raises the writer's error if a batch still fails after the retries (the batch is
        put back in the queue first).
        """
        done = 0
        with self._write_lock:
            while True:
                batch = self._take()
                if not batch:
                    return done
                try:
                    self._write(batch)
                except Exception:
                    self._give_back(batch)
                    raise
                done += len(batch)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and flush what is left (registered with ``atexit``)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout)
        try:
            self.flush()
        except Exception:
            left = len(self._items)
            self._items.clear()
            self.lost += left
            log.exception("%s: %d event(s) could not be written at shutdown", self.name, left)

    # ------------------------------------------------------------------ internals

    def _ensure_thread(self) -> None:
        pid = os.getpid()
        thread = self._thread
        if self._pid == pid and thread is not None and thread.is_alive():
            return
        with self._cond:  # re-entrant: put() already holds it
            thread = self._thread
            if self._pid == pid and thread is not None and thread.is_alive():
                return
            if self._pid is not None and self._pid != pid:
                # A forked child inherits the parent's queue: those items are the parent's.
                self._items.clear()
                self._write_lock = threading.Lock()
            self._pid = pid
            self._closing = False
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _take(self) -> list[Any]:
        with self._cond:
            n = min(self.batch_size, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def _give_back(self, batch: list[Any]) -> None:
        with self._cond:
            self._items.extendleft(reversed(batch))

    def _write(self, batch: list[Any]) -> None:
        last: Exception | None = None
        for attempt, delay in enumerate((0.0, *self.retry_delays[:1])):
            if delay:
                time.sleep(delay)
            try:
                self.writer(batch)
            except Exception as exc:
                last = exc
                self.failures += 1
                log.warning("%s: write of %d item(s) failed (attempt %d): %s",
                            self.name, len(batch), attempt + 1, exc)  # fmt: skip
                continue
            self.written += len(batch)
            return
        assert last is not None
        raise last

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._cond:
                if not self._closing and len(self._items) < self.batch_size:
                    self._cond.wait(self.interval)
                if self._closing:
                    return  # close() flushes in its own thread
                if self._items:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.idle_exit:
                    # Idle: end the thread (the next put() starts another), so a buffer
                    # nobody uses any more does not keep its writer alive forever.
                    self._thread = None
                    return
            try:
                self._drain_once()
            except Exception:  # keep the thread alive, back off
                delay = self.retry_delays[min(self._failed_streak, len(self.retry_delays) - 1)]
                self._failed_streak += 1
                with self._cond:
                    if not self._closing:
                        self._cond.wait(delay)
            else:
                self._failed_streak = 0

    def _drain_once(self) -> None:
        while True:
            with self._write_lock:
                batch = self._take()
                if not batch:
                    return
                try:
                    self._write(batch)
                except Exception:
                    self._give_back(batch)
                    raise
            with self._cond:
                if self._closing:
                    return
