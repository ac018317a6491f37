"""Fault tests with real parts: worker processes on Redis and PostgreSQL, a real SMTP server.

Each test runs ``python -m dramatiq`` worker processes (``worker_app``: the real app with
leases of seconds instead of minutes), sends a campaign and hurts it: SIGKILL, SIGTERM,
a Redis restart, a relay down. The database must then show everyone delivered, and the
relay must have received each message once, except at most the in-flight window of each
killed worker, every one of which is flagged ``possible_duplicate``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns import sending
from campaigns.models import Campaign, Delivery
from contacts.db import db
from contacts.models import Contact
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import received_by_address, statuses

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.smtp,
    pytest.mark.backends("postgres"),
]

ROOT = Path(__file__).resolve().parents[3]
THREADS = 4
WINDOW = 20  # SendSettings.outcome_batch, the in-flight window per thread
TUNING = {
    "CRIEUR_SEND_LEASE_SECONDS": 4,
    "CRIEUR_RECONCILE_SECONDS": 0.5,
    "CRIEUR_SEND_STALL_SECONDS": 3,
    "CRIEUR_SEND_RELAY_BACKOFF_SECONDS": 0.5,
    "CRIEUR_SEND_BACKOFF_SECONDS": 0.2,
    "CRIEUR_SEND_BACKOFF_MAX_SECONDS": 1,
    "CRIEUR_SEND_MAX_ATTEMPTS": 30,
}


class Worker:
    """``python -m dramatiq tests.integration.sending.worker_app -p 1 -t 4`` in its own group."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.proc = env, log, None

    def start(self) -> Worker:
        out = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "tests.integration.sending.worker_app",
             "-p", "1", "-t", str(THREADS), "-Q", "send", "default"],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        return self

    def kill(self) -> None:
        """SIGKILL the whole group: the machine crashed, nothing is cleaned up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        """SIGTERM to the main process, which forwards it once to its worker processes."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_env(app, redis_url, tmp_path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CRIEUR_BROKER_URL=redis_url,
        CRIEUR_DATABASE_URL=app.config["CRIEUR_DATABASE_URL"],
        CRIEUR_PUBLIC_URL=app.config["CRIEUR_PUBLIC_URL"],
        CRIEUR_SECRET_KEY=app.config["CRIEUR_SECRET_KEY"],
        CRIEUR_SMTP_URL="",
        CRIEUR_INSTANCE_PATH=str(tmp_path / "worker-instance"),
        CRIEUR_TEST_OVERRIDES=json.dumps(TUNING),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def workers(worker_env, tmp_path):
    started: list[Worker] = []

    def spawn() -> Worker:
        worker = Worker(worker_env, tmp_path / "workers.log").start()
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.stop()


def _enqueue_start(redis_url: str, campaign_id: int) -> None:
    """What the API does after its commit, through the real broker."""
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=redis_url)
    broker.declare_queue("send")
    broker.enqueue(
        Message(
            queue_name="send", actor_name="start_campaign", args=(campaign_id,), kwargs={},
            options={},
        )
    )  # fmt: skip
    broker.close()


def _campaign(body, lst, n: int):
    make_contacts(body, lst, n)
    campaign = make_ready_campaign(body, [lst])
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()
    return campaign


def _wait_for(predicate, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def _status(campaign_id: int) -> str:
    db.session.expire_all()
    status = db.session.get(Campaign, campaign_id).status
    db.session.commit()
    return status


def _flagged(campaign_id: int) -> set[str]:
    return set(
        db.session.scalars(
            select(Contact.email)
            .join(Delivery, Delivery.contact_id == Contact.id)
            .where(Delivery.campaign_id == campaign_id, Delivery.possible_duplicate)
        )
    )


def _all_emails(campaign_id: int) -> set[str]:
    return set(
        db.session.scalars(
            select(Contact.email)
            .join(Delivery, Delivery.contact_id == Contact.id)
            .where(Delivery.campaign_id == campaign_id)
        )
    )


def test_sigkill_three_times_skips_nobody_and_flags_every_duplicate(
    body, newsletter_list, relay, workers, redis_url, tmp_path
):
    campaign = _campaign(body, newsletter_list, 5000)
    _enqueue_start(redis_url, campaign.id)
    worker = workers()
    log = tmp_path / "workers.log"

    for threshold in (800, 2000, 3200):
        _wait_for(lambda t=threshold: len(relay.messages) >= t, 40, f"{threshold} sent", log)
        worker.kill()
        worker = workers()
    _wait_for(lambda: _status(campaign.id) == "sent", 50, "the campaign to finish", log)

    got = received_by_address(relay)
    assert set(got) == _all_emails(campaign.id)  # nobody skipped
    twice = {email for email, n in got.items() if n > 1}
    extra = sum(n - 1 for n in got.values())
    flagged = _flagged(campaign.id)
    # A row in flight at one kill may be in flight again at the next: count copies, not rows.
    assert extra <= 3 * THREADS * WINDOW, f"{extra} extra copies"
    assert twice <= flagged  # every duplicate is listed
    assert len(flagged) <= 3 * THREADS * WINDOW  # only the in-flight windows
    assert statuses(campaign.id) == {"sent": 5000}
    print(f"SIGKILL ×3: {extra} extra copies, {len(twice)} people, {len(flagged)} flagged")


def test_sigterm_mid_campaign_sends_no_duplicate_at_all(
    body, newsletter_list, relay, workers, redis_url, tmp_path
):
    campaign = _campaign(body, newsletter_list, 2000)
    _enqueue_start(redis_url, campaign.id)
    worker = workers()
    log = tmp_path / "workers.log"
    _wait_for(lambda: len(relay.messages) >= 600, 40, "600 sent", log)

    worker.terminate()
    stopped_at = len(relay.messages)
    workers()
    _wait_for(lambda: _status(campaign.id) == "sent", 50, "the campaign to finish", log)

    got = received_by_address(relay)
    assert stopped_at < 2000
    assert set(got) == _all_emails(campaign.id)
    assert max(got.values()) == 1
    assert _flagged(campaign.id) == set()


def test_a_redis_restart_mid_campaign_is_survived(
    body, newsletter_list, relay, workers, redis_url, redis_server, tmp_path
):
    campaign = _campaign(body, newsletter_list, 2000)
    _enqueue_start(redis_url, campaign.id)
    workers()
    log = tmp_path / "workers.log"
    _wait_for(lambda: len(relay.messages) >= 500, 40, "500 sent", log)

    redis_server.restart()  # no persistence: every queued message is lost

    _wait_for(lambda: _status(campaign.id) == "sent", 50, "the campaign to finish", log)
    got = received_by_address(relay)
    assert set(got) == _all_emails(campaign.id)
    assert max(got.values()) == 1


def test_a_relay_down_for_seconds_and_sending_resumes_by_itself(
    body, newsletter_list, relay, workers, redis_url, tmp_path, monkeypatch
):
    import tests.smtp_servers as servers

    campaign = _campaign(body, newsletter_list, 1500)
    relay.script.reply_delay = 0.002
    _enqueue_start(redis_url, campaign.id)
    workers()
    log = tmp_path / "workers.log"
    _wait_for(lambda: len(relay.messages) >= 300, 40, "300 sent", log)

    relay.stop()
    time.sleep(5)
    assert _status(campaign.id) == "sending"
    monkeypatch.setattr(servers, "free_port", lambda host="127.0.0.1": relay.port)
    revived = servers.RecordingSMTPServer(pipelining=True).start()
    try:
        _wait_for(lambda: _status(campaign.id) == "sent", 50, "the campaign to finish", log)
        got = received_by_address(relay)
        got.update(received_by_address(revived))
    finally:
        revived.stop()

    final = statuses(campaign.id)
    assert final["sent"] + final.get("unknown", 0) == 1500
    assert set(got) >= _all_emails(campaign.id) - _unknown(campaign.id)
    assert max(got.values()) == 1


def _unknown(campaign_id: int) -> set[str]:
    return set(
        db.session.scalars(
            select(Contact.email)
            .join(Delivery, Delivery.contact_id == Contact.id)
            .where(Delivery.campaign_id == campaign_id, Delivery.status == "unknown")
        )
    )
