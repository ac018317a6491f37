"""The reconciler and the scheduler: leases, lost queues, finishing, overdue schedules."""

from __future__ import annotations

import datetime as dt
import threading
import time

import dramatiq
import pytest
from sqlalchemy import select, update

from campaigns import claims, outcomes, reconcile, scheduler, sender, sending
from campaigns.models import Campaign, Delivery
from contacts.db import db, utcnow
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import drive, received_by_address, statuses


def _sending(body, lst, n):
    make_contacts(body, lst, n)
    campaign = make_ready_campaign(body, [lst])
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()
    return campaign


def _app():
    from flask import current_app

    return current_app._get_current_object()


def _pass(**options):
    values = {"batch_size": 20, "lanes": 3, "lease_seconds": 900.0, "stall_seconds": 60.0}
    return reconcile.reconcile(**{**values, **options})


def test_an_expired_lease_goes_back_to_deferred_and_only_in_flight_rows_are_flagged(
    body, newsletter_list
):
    campaign = _sending(body, newsletter_list, 6)
    rows = sorted(db.session.scalars(select(Delivery.id)).all())
    claim = claims.claim_rows(body.id, campaign.id, rows[0], rows[-1], 4, lease_seconds=0.2)
    outcomes.mark_in_flight([r.id for r in claim.rows[:2]])  # a worker's window, then it dies
    db.session.commit()
    time.sleep(0.4)

    report = _pass()

    assert report.expired == 4
    found = {
        r.id: (r.status, r.possible_duplicate)
        for r in db.session.scalars(select(Delivery).order_by(Delivery.id))
    }
    assert [found[i] for i in rows] == [
        ("deferred", True),
        ("deferred", True),
        ("deferred", False),
        ("deferred", False),
        ("queued", False),
        ("queued", False),
    ]


def test_a_live_lease_is_left_alone(body, newsletter_list):
    campaign = _sending(body, newsletter_list, 3)
    rows = sorted(db.session.scalars(select(Delivery.id)).all())
    claims.claim_rows(body.id, campaign.id, rows[0], rows[-1], 3, lease_seconds=600)

    assert _pass().expired == 0
    assert statuses(campaign.id) == {"sending": 3}


def test_a_campaign_whose_queue_was_lost_is_queued_again_after_the_stall_delay(
    body, newsletter_list
):
    campaign = _sending(body, newsletter_list, 50)
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(started_at=utcnow() - dt.timedelta(seconds=120))
    )
    db.session.commit()

    report = _pass(stall_seconds=60)

    first = min(db.session.scalars(select(Delivery.id)))
    assert report.requeue == [
        (campaign.id, first, first + 19),
        (campaign.id, first + 20, first + 39),
        (campaign.id, first + 40, first + 59),
    ]


def test_a_campaign_making_progress_is_not_queued_twice(body, newsletter_list, relay):
    campaign = _sending(body, newsletter_list, 30)
    settings = sender.SendSettings.from_config(_app().config)
    rows = sorted(db.session.scalars(select(Delivery.id)).all())
    sender.send_batch(campaign.id, rows[0], rows[4], settings)  # activity just now

    assert _pass(stall_seconds=60).requeue == []


def test_a_campaign_is_finished_only_when_nothing_is_left_to_send(body, newsletter_list, relay):
    campaign = _sending(body, newsletter_list, 4)
    rows = sorted(db.session.scalars(select(Delivery.id)).all())
    db.session.execute(update(Delivery).where(Delivery.id.in_(rows[:3])).values(status="sent"))
    db.session.execute(update(Delivery).where(Delivery.id == rows[3]).values(status="deferred"))
    db.session.commit()

    assert _pass().finished == []
    db.session.execute(update(Delivery).where(Delivery.id == rows[3]).values(status="failed"))
    db.session.commit()
    assert _pass().finished == [campaign.id]
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "sent"


def test_rows_of_a_cancelled_campaign_left_waiting_are_cancelled(body, newsletter_list):
    campaign = _sending(body, newsletter_list, 3)
    db.session.execute(
        update(Campaign).where(Campaign.id == campaign.id).values(status="cancelled")
    )
    db.session.commit()

    assert _pass().cancelled_rows == 3
    assert statuses(campaign.id) == {"cancelled": 3}


def test_an_overdue_schedule_is_held_not_sent(body, newsletter_list):
    make_contacts(body, newsletter_list, 3)
    late = make_ready_campaign(body, [newsletter_list], status="scheduled")
    late.scheduled_at = utcnow() - dt.timedelta(hours=5)
    due = make_ready_campaign(body, [newsletter_list], status="scheduled")
    due.scheduled_at = utcnow() - dt.timedelta(seconds=30)
    future = make_ready_campaign(body, [newsletter_list], status="scheduled")
    future.scheduled_at = utcnow() + dt.timedelta(hours=1)
    db.session.commit()

    started, held = scheduler.run_due_schedules(grace_seconds=15 * 60)

    assert started == [due.id] and held == [late.id]
    db.session.expire_all()
    assert db.session.get(Campaign, late.id).status == "held"
    assert db.session.get(Campaign, due.id).status == "sending"
    assert db.session.get(Campaign, future.id).status == "scheduled"
    assert statuses(late.id) == {} and statuses(due.id) == {"queued": 3}


def test_a_held_campaign_is_sent_once_a_human_confirms(body, newsletter_list, relay):
    make_contacts(body, newsletter_list, 2)
    campaign = make_ready_campaign(body, [newsletter_list], status="held")
    db.session.commit()

    sending.start_sending(body.id, campaign, None, "officer", "Confirmé après l'arrêt.")
    db.session.commit()
    drive(_app(), campaign.id)

    assert len(relay.messages) == 2


def test_a_tick_starts_due_schedules_and_queues_their_batches(
    body, newsletter_list, relay, stub_broker, stub_worker
):
    make_contacts(body, newsletter_list, 12)
    campaign = make_ready_campaign(body, [newsletter_list], status="scheduled")
    campaign.scheduled_at = utcnow() - dt.timedelta(seconds=5)
    db.session.commit()

    scheduler.tick(_app())
    stub_broker.join("send", fail_fast=True)
    stub_worker.join()

    assert len(received_by_address(relay)) == 12
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "sent"


def _start_worker(broker, threads=2):
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=threads)
    worker.start()
    return worker


@pytest.mark.backends("postgres")
def test_two_workers_and_two_reconcilers_at_once_send_each_message_once(
    app, body, newsletter_list, relay, stub_broker
):
    from campaigns import actors

    app.config.update(
        CRIEUR_SEND_BATCH_SIZE=15, CRIEUR_SEND_LANES=4, CRIEUR_SEND_STALL_SECONDS=0.01
    )
    campaign = _sending(body, newsletter_list, 240)
    workers = [_start_worker(stub_broker), _start_worker(stub_broker)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def reconciler():
        while not stop.is_set():
            try:
                with app.app_context():
                    # Aggressive on purpose: every pass believes the queue was lost.
                    scheduler.tick(app, queue_lost=True)
                    db.session.remove()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            time.sleep(0.05)

    threads = [threading.Thread(target=reconciler) for _ in range(2)]
    try:
        actors.start_campaign.send(campaign.id)
        for t in threads:
            t.start()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(Campaign, campaign.id).status == "sent":
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for w in workers:
            w.stop()
    stub_broker.flush_all()

    got = received_by_address(relay)
    assert not errors
    assert len(got) == 240
    assert max(got.values()) == 1
    db.session.expire_all()
    assert statuses(campaign.id) == {"sent": 240}


@pytest.mark.backends("sqlite")
def test_the_embedded_mode_stopped_mid_send_and_restarted_finishes_without_duplicates(
    app, body, newsletter_list, relay, stub_broker
):
    from campaigns import actors

    relay.script.reply_delay = 0.01  # slow enough to stop it in the middle
    app.config.update(CRIEUR_SEND_BATCH_SIZE=10, CRIEUR_SEND_LANES=2)
    campaign = _sending(body, newsletter_list, 80)
    worker = _start_worker(stub_broker)
    actors.start_campaign.send(campaign.id)
    deadline = time.monotonic() + 20
    while len(relay.messages) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)

    worker.stop()  # Ctrl-C: the batches hand their rows back and stop
    stub_broker.flush_all()  # the in-memory queue dies with the process
    sent_before = len(relay.messages)
    assert 20 <= sent_before < 80
    relay.script.reply_delay = 0

    worker = _start_worker(stub_broker)  # `crieur run` again
    runner = scheduler.start_in_process(app)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(Campaign, campaign.id).status == "sent":
                break
            time.sleep(0.05)
    finally:
        scheduler.stop_in_process()
        worker.stop()
    del runner

    got = received_by_address(relay)
    assert len(got) == 80 and max(got.values()) == 1
    db.session.expire_all()
    assert statuses(campaign.id) == {"sent": 80}
    flagged = db.session.scalars(select(Delivery).where(Delivery.possible_duplicate)).all()
    assert flagged == []
