"""A relay that takes more than 30 s to answer the final dot, during a real campaign send.

RELIABILITY.md: "Relay takes 30 s to answer the final dot → no timeout, no duplicate; ETA
updates." Real parts: an aiosmtpd relay whose reply to the dot of chosen messages waits
31 s (longer than the 30 s command timeout, well under the 10 min the dot may take),
Dramatiq worker threads on the stub broker, the reconciler ticking meanwhile, and the
progress service behind the live page and the API.
"""

from __future__ import annotations

import asyncio
import threading
import time

import dramatiq
import pytest
from sqlalchemy import select

from campaigns import actors, progress, scheduler, sender, sending
from campaigns.models import Campaign, Delivery
from contacts.db import db
from contacts.models import Contact
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import received_by_address, statuses
from tests.stub_queues import release_held_messages

pytestmark = [pytest.mark.smtp]

DOT_DELAY = 31.0  # > campaigns.smtp.DEFAULT_TIMEOUT (30 s per command)


def slow_dot_for(relay, addresses: set[str], delay: float) -> None:
    """Make ``relay`` wait ``delay`` seconds before answering the dot of these addresses."""
    handler = relay._controller.handler
    original = handler.handle_DATA

    async def handle_data(server, session, envelope):
        if any(r in addresses for r in envelope.rcpt_tos):
            await asyncio.sleep(delay)
        return await original(server, session, envelope)

    handler.handle_DATA = handle_data  # aiosmtpd looks the hook up per connection


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _progress(body, campaign) -> progress.Progress:
    """What the live page and ``GET /campaigns/{id}/progress`` show, read afresh."""
    db.session.expire_all()
    reading = progress.progress(body.id, db.session.get(Campaign, campaign.id))
    db.session.commit()
    return reading


@pytest.mark.slow
def test_a_relay_slow_to_answer_the_dot_causes_no_timeout_no_duplicate_and_the_eta_moves(
    app, api, body, newsletter_list, relay, stub_broker
):
    app.config.update(
        CRIEUR_SEND_BATCH_SIZE=10,
        CRIEUR_SEND_LANES=3,
        CRIEUR_SEND_STALL_SECONDS=2,  # the reconciler would re-queue a campaign it thinks stalled
    )
    ids = make_contacts(body, newsletter_list, 30)
    campaign = make_ready_campaign(body, [newsletter_list])
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()
    emails = dict(db.session.execute(select(Contact.id, Contact.email)).all())
    slow = {emails[ids[9]], emails[ids[19]]}  # the last of the first two lanes
    slow_dot_for(relay, slow, DOT_DELAY)
    client = api("officer")
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=3)
    worker.start()
    reconciler = scheduler.PeriodicRunner(app, 0.5).start()
    try:
        actors.start_campaign.send(campaign.id)
        started = time.monotonic()
        # Everyone else is served while the two slow replies are awaited.
        _wait_for(lambda: len(relay.messages) >= 28, 20, "the 28 fast messages")
        time.sleep(1.5)  # > outcome_max_delay: their outcomes must be committed by now
        first = _progress(body, campaign)
        time.sleep(8)
        second = _progress(body, campaign)
        assert time.monotonic() - started < DOT_DELAY  # both were read during the wait

        def finished() -> bool:
            db.session.expire_all()
            done = db.session.get(Campaign, campaign.id).status == "sent"
            db.session.commit()
            return done

        _wait_for(finished, DOT_DELAY + 15, "the campaign to finish")
        waited = time.monotonic() - started
    finally:
        reconciler.stop()
        worker.stop()
        release_held_messages(stub_broker)

    for reading in (first, second):
        # What the relay accepted shows as sent while the two slow replies are awaited.
        assert (reading.counts.get("sent"), reading.counts.get("sending")) == (28, 2)
        assert reading.status == "sending"
        assert reading.eta_seconds is not None and reading.eta_seconds > 0
    assert second.eta_seconds > first.eta_seconds  # nothing accepted since: the ETA grows
    assert waited >= DOT_DELAY  # the slow replies really were waited for
    got = received_by_address(relay)
    assert sorted(got) == sorted(emails[i] for i in ids)
    assert set(got.values()) == {1}  # no timeout → no retry → no duplicate
    assert statuses(campaign.id) == {"sent": 30}  # none unknown, deferred or failed
    attempts = db.session.scalars(
        select(Delivery.attempts).where(Delivery.campaign_id == campaign.id)
    ).all()
    assert set(attempts) == {1}
    final = client.get(f"/campaigns/{campaign.id}/progress").json
    assert final["eta_seconds"] == 0 and final["possible_duplicates"] == 0


def test_the_outcomes_before_a_slow_reply_are_committed_while_it_is_awaited(
    app, body, newsletter_list, relay
):
    ids = make_contacts(body, newsletter_list, 8)
    campaign = make_ready_campaign(body, [newsletter_list])
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()
    email = db.session.get(Contact, ids[5]).email
    slow_dot_for(relay, {email}, 2.0)
    rows = sorted(db.session.scalars(select(Delivery.id)))
    seen: dict = {}

    def watch() -> None:  # another process's view, during the slow reply
        with app.app_context():
            _wait_for(lambda: len(relay.messages) >= 5, 10, "the first five messages")
            time.sleep(1.0)  # > outcome_max_delay (0.25 s), < the 2 s the relay takes
            seen.update(statuses(campaign.id))
            db.session.remove()

    watcher = threading.Thread(target=watch)
    watcher.start()
    settings = sender.SendSettings.from_config(app.config)
    sender.send_batch(campaign.id, rows[0], rows[-1], settings)
    watcher.join(10)

    assert seen == {"sent": 5, "sending": 3}  # not held until the slow reply came
    assert statuses(campaign.id) == {"sent": 8}
