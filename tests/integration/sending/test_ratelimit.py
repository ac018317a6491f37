"""Throttling: CRIEUR_SEND_RATE per process, hourly caps per body, fairness between bodies."""

from __future__ import annotations

import datetime as dt
import threading
import time

import dramatiq
import pytest
from sqlalchemy import func, select, update

from campaigns import actors, claims, ratelimit, sender, sending
from campaigns.models import Campaign, Delivery
from contacts.db import db, utcnow
from tests.factories import make_list, make_org
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import drive, statuses


def _app():
    from flask import current_app

    return current_app._get_current_object()


def _sending(org, lst, n):
    make_contacts(org, lst, n)
    campaign = make_ready_campaign(org, [lst])
    sending.start_sending(org.id, campaign, None, "officer")
    db.session.commit()
    return campaign


def _bounds(campaign):
    return db.session.execute(
        select(func.min(Delivery.id), func.max(Delivery.id)).where(
            Delivery.campaign_id == campaign.id
        )
    ).one()


def test_the_rate_limiter_spaces_messages_across_threads():
    limiter = ratelimit.RateLimiter(100.0)
    waits = []

    def take():
        for _ in range(10):
            waits.append(limiter.reserve())

    threads = [threading.Thread(target=take) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(waits) == 30
    assert max(waits) == pytest.approx(0.29, abs=0.02)  # 30 slots 10 ms apart


def test_no_rate_means_no_wait():
    assert ratelimit.RateLimiter(None).reserve() == 0.0


def test_crieur_send_rate_paces_a_worker(body, newsletter_list, relay):
    _app().config["CRIEUR_SEND_RATE"] = 40.0
    campaign = _sending(body, newsletter_list, 20)

    started = time.monotonic()
    drive(_app(), campaign.id)

    assert time.monotonic() - started >= 19 / 40 - 0.05
    assert len(relay.messages) == 20


def test_an_hourly_cap_stops_the_body_and_says_when_to_come_back(body, newsletter_list, relay):
    body.hourly_limit = 10
    campaign = _sending(body, newsletter_list, 25)
    settings = sender.SendSettings.from_config(_app().config)
    lo, hi = _bounds(campaign)

    result = sender.send_batch(campaign.id, lo, hi, settings)

    assert result.sent == 10 and result.reason == "quota"
    assert result.next == (lo, hi) and 0 < result.delay <= 3601
    assert statuses(campaign.id) == {"sent": 10, "queued": 15}
    again = sender.send_batch(campaign.id, lo, hi, settings)
    assert again.sent == 0 and again.reason == "quota"


def test_the_cap_is_a_sliding_hour(body, newsletter_list, relay):
    body.hourly_limit = 10
    campaign = _sending(body, newsletter_list, 15)
    settings = sender.SendSettings.from_config(_app().config)
    lo, hi = _bounds(campaign)
    sender.send_batch(campaign.id, lo, hi, settings)
    db.session.execute(
        update(Delivery)
        .where(Delivery.campaign_id == campaign.id, Delivery.status == "sent")
        .values(sent_at=utcnow() - dt.timedelta(minutes=61))
    )
    db.session.commit()

    result = sender.send_batch(campaign.id, lo, hi, settings)

    assert result.sent == 5
    assert statuses(campaign.id) == {"sent": 15}


def test_a_capped_body_is_not_counted_as_stalled(body, newsletter_list, relay):
    from campaigns import reconcile

    body.hourly_limit = 3
    campaign = _sending(body, newsletter_list, 6)
    settings = sender.SendSettings.from_config(_app().config)
    sender.send_batch(campaign.id, *_bounds(campaign), settings)
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(started_at=utcnow() - dt.timedelta(hours=2))
    )
    db.session.execute(
        update(Delivery)
        .where(Delivery.campaign_id == campaign.id)
        .values(lease_until=utcnow() - dt.timedelta(hours=1))
    )
    db.session.commit()

    report = reconcile.reconcile(batch_size=20, lanes=3, lease_seconds=900, stall_seconds=1)

    assert report.requeue == []


@pytest.mark.backends("postgres")
def test_concurrent_claims_never_exceed_the_cap(body, newsletter_list):
    body.hourly_limit = 25
    campaign = _sending(body, newsletter_list, 100)
    lo, hi = _bounds(campaign)
    app = _app()
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer():
        with app.app_context():
            for _ in range(5):
                got = claims.claim_rows(body.id, campaign.id, lo, hi, 7, 900, 25)
                with lock:
                    claimed.extend(r.id for r in got.rows)
            db.session.remove()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(claimed) == len(set(claimed)) == 25
    assert statuses(campaign.id) == {"sending": 25, "queued": 75}


def test_a_small_body_is_not_starved_behind_a_large_one(relay, stub_broker, app):
    big, small = (
        make_org(smtp_url=f"smtp://{relay.url_hostport}"),
        make_org(smtp_url=f"smtp://{relay.url_hostport}"),
    )
    large = _sending(big, make_list(big), 300)
    little = _sending(small, make_list(small), 30)
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=1)
    actors.start_campaign.send(large.id)
    actors.start_campaign.send(little.id)
    worker.start()
    try:
        stub_broker.join("send", fail_fast=True)
        worker.join()
    finally:
        worker.stop()

    db.session.expire_all()
    little_done = db.session.get(Campaign, little.id).finished_at
    sent_before = db.session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.campaign_id == large.id, Delivery.sent_at <= little_done)
    )
    assert db.session.get(Campaign, large.id).status == "sent"
    assert sent_before <= 150  # the small body finished before the large one was half done
