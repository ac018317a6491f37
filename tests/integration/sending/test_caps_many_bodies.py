"""Five bodies sending at once, each under its hourly cap, through shared worker threads.

RELIABILITY.md, "Load to hold": "5 bodies sending at once with hourly caps → caps held
within 1 %; no body starved." Real parts: one aiosmtpd relay shared by five bodies
(``make_org``), Dramatiq worker threads on the stub broker claiming concurrently (the
per-body quota lock is what keeps the cap), the reconciler for the next hour.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import dramatiq
import pytest
from sqlalchemy import update

from campaigns import actors, scheduler, sending
from campaigns.models import Campaign, Delivery
from contacts.db import db, utcnow
from tests.factories import make_list, make_org
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import received_by_address, statuses
from tests.stub_queues import release_held_messages

pytestmark = [pytest.mark.smtp]

BODIES = 5
CAP = 100  # messages per hour and body
AUDIENCE = 130  # each body has more people than its cap


def _sent_by_body(relay, senders: dict[str, int]) -> Counter:
    with relay._lock:
        return Counter(senders[m.mail_from] for m in relay.messages)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_five_bodies_at_once_each_get_exactly_their_hourly_cap_and_none_is_starved(
    app, relay, stub_broker, monkeypatch
):
    app.config.update(CRIEUR_SEND_STALL_SECONDS=1)
    bodies, campaigns = [], []
    for _ in range(BODIES):
        org = make_org(smtp_url=f"smtp://{relay.url_hostport}", hourly_limit=CAP)
        lst = make_list(org)
        make_contacts(org, lst, AUDIENCE)
        campaign = make_ready_campaign(org, [lst])
        sending.start_sending(org.id, campaign, None, "officer")
        bodies.append(org)
        campaigns.append(campaign)
    db.session.commit()
    senders = {org.from_address: org.id for org in bodies}
    queued: list[tuple[int, float | None]] = []
    real_enqueue = actors.enqueue_batch

    def enqueue_batch(campaign_id, lo_id, hi_id, delay=None):
        queued.append((campaign_id, delay))
        if delay and delay > 60:
            return True  # due after the test: the reconciler takes over once the hour passed
        return real_enqueue(campaign_id, lo_id, hi_id, delay)

    monkeypatch.setattr(actors, "enqueue_batch", enqueue_batch)
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=4)
    worker.start()
    reconciler = None
    try:
        for campaign in campaigns:
            actors.start_campaign.send(campaign.id)
        # Every body's batches end on its cap and ask to come back later (a delayed message).
        _wait_for(
            lambda: {c for c, d in queued if d and d > 60} == {c.id for c in campaigns},
            60,
            "every body to reach its cap",
        )
        time.sleep(0.5)  # nothing more should go out in this hour
        first_hour = _sent_by_body(relay, senders)
        with relay._lock:
            first_hour_order = [senders[m.mail_from] for m in relay.messages]
        db.session.expire_all()
        held = {c.id: statuses(c.id) for c in campaigns}
        db.session.commit()

        # The hour passes: the reconciler finds the bodies' quota free again.
        db.session.execute(
            update(Delivery)
            .where(Delivery.status == "sent")
            .values(sent_at=utcnow() - dt.timedelta(minutes=61))
        )
        db.session.commit()
        reconciler = scheduler.PeriodicRunner(app, 0.3).start()

        def all_sent() -> bool:
            db.session.expire_all()
            done = all(db.session.get(Campaign, c.id).status == "sent" for c in campaigns)
            db.session.commit()
            return done

        _wait_for(all_sent, 60, "the rest to go out in the next hour")
    finally:
        if reconciler is not None:
            reconciler.stop()
        worker.stop()
        release_held_messages(stub_broker)

    for org in bodies:
        assert abs(first_hour[org.id] - CAP) <= CAP // 100  # the cap, within 1 %
    for campaign in campaigns:
        assert held[campaign.id] == {"sent": CAP, "queued": AUDIENCE - CAP}  # the rest waits
    # No body starved: each had its turn early, interleaved with the others, not after
    # them (served one body after another, the last would start at message 400).
    started = {body: first_hour_order.index(body) for body in first_hour}
    assert max(started.values()) < (BODIES - 1) * CAP
    # A batch that hit the cap comes back when a slot may have freed, not in a busy loop.
    assert not [d for _, d in queued if d and 5 < d <= 60]
    final = _sent_by_body(relay, senders)
    assert final == {org.id: AUDIENCE for org in bodies}  # then everyone…
    assert max(received_by_address(relay).values()) == 1  # …once
    for campaign in campaigns:
        assert statuses(campaign.id) == {"sent": AUDIENCE}
