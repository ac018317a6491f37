"""The tracking write buffer: batches, flushes, never drops an event."""

from __future__ import annotations

import threading
import time

import pytest

from analytics.buffer import EventBuffer


class Recorder:
    def __init__(self, fail_times: int = 0, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.fail_times = fail_times
        self.delay = delay
        self.calls = 0
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, items) -> None:
        with self.lock:
            self.calls += 1
            self.threads.add(threading.current_thread().name)
            if self.fail_times > 0:
                self.fail_times -= 1
                raise RuntimeError("database unavailable")
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.batches.append(list(items))

    @property
    def items(self) -> list[int]:
        return [i for b in self.batches for i in b]


def _buffer(writer, **kw) -> EventBuffer:
    kw.setdefault("register_atexit", False)
    kw.setdefault("retry_delays", (0.01,))
    return EventBuffer(writer, **kw)


def _wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_put_returns_before_the_writer_has_run():
    writer = Recorder(delay=0.2)
    buf = _buffer(writer, interval=0.05)
    started = time.perf_counter()
    for i in range(50):
        buf.put(i)
    assert time.perf_counter() - started < 0.1
    assert _wait(lambda: len(writer.items) == 50)
    buf.close()


def test_the_background_thread_writes_within_the_interval():
    writer = Recorder()
    buf = _buffer(writer, interval=0.05)
    buf.put("a")
    assert _wait(lambda: writer.items == ["a"], timeout=1.0)
    assert writer.threads == {"event-buffer"}
    buf.close()


def test_items_are_written_in_batches_of_at_most_batch_size():
    writer = Recorder()
    buf = _buffer(writer, interval=10.0, batch_size=7)
    for i in range(30):
        buf.put(i)
    buf.flush()
    assert writer.items == list(range(30))
    assert max(len(b) for b in writer.batches) <= 7


def test_a_full_batch_is_written_without_waiting_for_the_interval():
    writer = Recorder()
    buf = _buffer(writer, interval=30.0, batch_size=10)
    for i in range(10):
        buf.put(i)
    assert _wait(lambda: len(writer.items) == 10, timeout=2.0)
    buf.close()


def test_flush_writes_everything_queued_before_it_returns():
    writer = Recorder()
    buf = _buffer(writer, interval=30.0)
    for i in range(123):
        buf.put(i)
    buf.flush()
    assert sorted(writer.items) == list(range(123))
    assert len(buf) == 0


def test_a_full_queue_writes_in_the_callers_thread_instead_of_dropping():
    writer = Recorder(delay=0.05)
    buf = _buffer(writer, interval=30.0, max_items=5, batch_size=1000)
    for i in range(20):
        buf.put(i)
    buf.flush()
    assert sorted(writer.items) == list(range(20))
    assert buf.sync_writes == 15
    assert "MainThread" in writer.threads


def test_a_failed_write_is_retried_and_nothing_is_lost():
    writer = Recorder(fail_times=3)
    buf = _buffer(writer, interval=0.02, retry_delays=(0.01, 0.01))
    for i in range(40):
        buf.put(i)
    assert _wait(lambda: len(writer.items) == 40, timeout=5.0)
    assert sorted(writer.items) == list(range(40))
    assert buf.failures == 3
    buf.close()


def test_flush_raises_and_keeps_the_items_when_the_writer_keeps_failing():
    writer = Recorder(fail_times=100)
    buf = _buffer(writer, interval=30.0)
    buf.put(1)
    buf.put(2)
    with pytest.raises(RuntimeError):
        buf.flush()
    assert len(buf) == 2
    writer.fail_times = 0
    buf.flush()
    assert writer.items == [1, 2]


def test_close_writes_what_is_left():
    writer = Recorder()
    buf = _buffer(writer, interval=30.0)
    for i in range(9):
        buf.put(i)
    buf.close()
    assert sorted(writer.items) == list(range(9))


def test_after_close_puts_are_written_at_once():
    writer = Recorder()
    buf = _buffer(writer, interval=30.0)
    buf.close()
    buf.put("late")
    assert writer.items == ["late"]


def test_close_counts_what_could_not_be_written():
    writer = Recorder(fail_times=100)
    buf = _buffer(writer, interval=30.0)
    buf.put(1)
    buf.close()
    assert buf.lost == 1


def test_an_idle_thread_ends_and_a_later_put_starts_another():
    writer = Recorder()
    buf = _buffer(writer, interval=0.02, idle_exit=0.05)
    buf.put(1)
    assert _wait(lambda: buf._thread is None, timeout=3.0)
    buf.put(2)
    assert _wait(lambda: writer.items == [1, 2], timeout=3.0)
    buf.close()


def test_concurrent_producers_lose_nothing():
    writer = Recorder()
    buf = _buffer(writer, interval=0.01, batch_size=50, max_items=100)

    def produce(start: int) -> None:
        for i in range(start, start + 500):
            buf.put(i)

    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    buf.close()
    expected = [k * 1000 + i for k in range(4) for i in range(500)]
    assert sorted(writer.items) == expected
