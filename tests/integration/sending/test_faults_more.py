"""More fault tests with real parts: Dramatiq worker processes on Redis and PostgreSQL.

RELIABILITY.md, "Faults to inject", the items ``test_faults`` leaves out:

- "Kill between the 250 and the commit (fault hook) → row flagged, re-sent at most once,
  reported": ``worker_app_faults`` SIGKILLs its worker right after a 250;
- "FLUSHALL Redis mid-campaign → reconciler re-enqueues within one interval; all
  delivered once": a ``FLUSHALL`` while workers send (queued batches lost, the rest go
  on), and one while every batch of the campaign waits in Redis (a worker restarting),
  where only the reconciler can bring the campaign back.

The fixtures and helpers are ``test_faults``'s (leases of 4 s, a reconciler pass every
0.5 s, a campaign counted as stalled after 3 s without activity).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from campaigns import progress
from campaigns.models import Campaign
from contacts.db import db
from tests.integration.sending.support import received_by_address, statuses
from tests.integration.sending.test_faults import (  # noqa: F401 - worker_env is a fixture
    ROOT,
    THREADS,
    TUNING,
    WINDOW,
    Worker,
    _all_emails,
    _campaign,
    _enqueue_start,
    _flagged,
    _status,
    _wait_for,
    worker_env,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.smtp,
    pytest.mark.backends("postgres"),
]

QUEUE = "dramatiq:send"  # the Redis list of the "send" queue (RedisBroker's namespace)
READY = b"Worker process is ready for action."


class AppWorker(Worker):
    """A ``test_faults`` worker running ``module``, with extra environment."""

    def __init__(self, env: dict[str, str], log: Path, module: str) -> None:
        super().__init__(env, log)
        self.module = module

    def start(self) -> AppWorker:
        out = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", self.module,
             "-p", "1", "-t", str(THREADS), "-Q", "send", "default"],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        return self


@pytest.fixture
def spawn(worker_env, tmp_path):  # noqa: F811 - the imported fixture, requested by name
    """``spawn(module=..., overrides={...}, **env)`` starts a worker process."""
    started: list[AppWorker] = []

    def _spawn(
        module: str = "tests.integration.sending.worker_app",
        overrides: dict | None = None,
        **env: str,
    ) -> AppWorker:
        full = {**worker_env, **env}
        full["CRIEUR_TEST_OVERRIDES"] = json.dumps({**TUNING, **(overrides or {})})
        worker = AppWorker(full, tmp_path / "workers.log", module).start()
        started.append(worker)
        return worker

    yield _spawn
    for worker in started:
        worker.stop()


def _redis(url: str):
    import redis

    return redis.Redis.from_url(url)


def test_a_kill_between_the_250_and_its_commit_is_flagged_resent_once_and_reported(
    body, newsletter_list, relay, spawn, redis_url, tmp_path
):
    campaign = _campaign(body, newsletter_list, 600)
    fault = tmp_path / "fault.txt"
    log = tmp_path / "workers.log"
    _enqueue_start(redis_url, campaign.id)

    hooked = spawn(
        "tests.integration.sending.worker_app_faults",
        CRIEUR_TEST_KILL_AFTER_250="250",
        CRIEUR_TEST_FAULT_FILE=str(fault),
    )
    _wait_for(lambda: hooked.proc.poll() is not None, 40, "the fault hook to fire", log)
    victim = fault.read_text()
    assert received_by_address(relay)[victim] == 1  # the relay had it when the worker died
    spawn()
    _wait_for(lambda: _status(campaign.id) == "sent", 50, "the campaign to finish", log)

    got = received_by_address(relay)
    assert set(got) == _all_emails(campaign.id)  # nobody skipped
    assert got[victim] == 2  # its 250 was never committed: sent again, once
    flagged = _flagged(campaign.id)
    assert victim in flagged
    assert {email for email, n in got.items() if n > 1} <= flagged
    assert sum(n - 1 for n in got.values()) <= THREADS * WINDOW
    assert statuses(campaign.id) == {"sent": 600}
    # Reported: counted in the progress and listed with the possible duplicates.
    db.session.expire_all()
    reading = progress.progress(body.id, db.session.get(Campaign, campaign.id))
    listed = progress.delivery_rows(body.id, campaign.id, "duplicates", limit=1000)
    assert reading.possible_duplicates == len(flagged) == len(listed)
    assert victim in {row["email"] for row in listed}


def test_flushall_while_workers_send_loses_queued_batches_yet_delivers_everyone_once(
    body, newsletter_list, relay, spawn, redis_url, tmp_path
):
    campaign = _campaign(body, newsletter_list, 1500)
    log = tmp_path / "workers.log"
    r = _redis(redis_url)
    _enqueue_start(redis_url, campaign.id)
    # More lanes than threads and a prefetch of one: some batches wait in Redis.
    spawn(
        overrides={"CRIEUR_SEND_BATCH_SIZE": 50, "CRIEUR_SEND_LANES": 8},
        dramatiq_queue_prefetch="1",
    )
    _wait_for(lambda: len(relay.messages) >= 300, 40, "300 sent", log)

    lost = 0
    deadline = time.monotonic() + 10
    while not lost and time.monotonic() < deadline:
        with r.pipeline(transaction=True) as pipe:  # count and flush atomically
            lost, _ = pipe.llen(QUEUE).flushall().execute()
        time.sleep(0.05)
    flushed_at = len(relay.messages)
    _wait_for(lambda: _status(campaign.id) == "sent", 50, "the campaign to finish", log)

    assert lost > 0 and flushed_at < 1500  # batches really were lost mid-campaign
    got = received_by_address(relay)
    assert set(got) == _all_emails(campaign.id)
    assert max(got.values()) == 1
    assert _flagged(campaign.id) == set()
    assert statuses(campaign.id) == {"sent": 1500}


def test_flushall_of_every_queued_batch_is_repaired_by_the_reconciler_within_one_interval(
    body, newsletter_list, relay, spawn, redis_url, tmp_path
):
    campaign = _campaign(body, newsletter_list, 1000)
    log = tmp_path / "workers.log"
    r = _redis(redis_url)
    _enqueue_start(redis_url, campaign.id)
    # Paced, so the campaign is still sending when the worker stops (a fast machine would
    # otherwise finish it during the graceful stop, leaving nothing queued to flush).
    worker = spawn(overrides={"CRIEUR_SEND_RATE": 150})
    _wait_for(lambda: len(relay.messages) >= 300, 40, "300 sent", log)

    worker.terminate()  # a restart: its batches hand their rows back and re-queue themselves
    stopped = time.monotonic()
    sent_before = len(relay.messages)
    # A stopping batch re-queues itself, now or with a delay (the "send.DQ" queue): count
    # the message bodies of every queue, kept in the RedisBroker's "<queue>.msgs" hashes.
    held = list(r.scan_iter("dramatiq:*.msgs"))
    with r.pipeline(transaction=True) as pipe:
        for key in held:
            pipe.hlen(key)
        *sizes, _ = pipe.flushall().execute()
    lost = sum(sizes)
    assert lost > 0 and r.dbsize() == 0  # every batch of the campaign is gone
    spawn()
    _wait_for(lambda: log.read_bytes().count(READY) >= 2, 30, "the new worker", log)
    ready = time.monotonic()
    _wait_for(lambda: len(relay.messages) > sent_before, 30, "sending to resume", log)
    resumed = time.monotonic()
    _wait_for(lambda: _status(campaign.id) == "sent", 50, "the campaign to finish", log)

    # Stalled from `stopped + stall`; the reconciler ticks every `interval` once booted.
    stall, interval = TUNING["CRIEUR_SEND_STALL_SECONDS"], TUNING["CRIEUR_RECONCILE_SECONDS"]
    assert resumed - max(ready, stopped + stall) <= interval + 1.5
    assert b"batches re-queued" in log.read_bytes()  # by the reconciler, nobody else
    got = received_by_address(relay)
    assert set(got) == _all_emails(campaign.id)
    assert max(got.values()) == 1
    assert _flagged(campaign.id) == set()
    assert statuses(campaign.id) == {"sent": 1000}
