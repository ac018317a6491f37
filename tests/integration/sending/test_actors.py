"""The actors end to end on Dramatiq's stub broker and an in-process worker."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from campaigns import actors, sending
from campaigns.models import Campaign, Delivery
from contacts.db import db
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import received_by_address, statuses


def _start(body, lst, n):
    make_contacts(body, lst, n)
    campaign = make_ready_campaign(body, [lst])
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()
    return campaign


def _wait(stub_broker, stub_worker):
    stub_broker.join("send", fail_fast=True)
    stub_worker.join()


def test_start_campaign_sends_to_everyone_once_through_the_queue(
    body, newsletter_list, relay, stub_broker, stub_worker
):
    campaign = _start(body, newsletter_list, 70)

    actors.start_campaign.send(campaign.id)
    _wait(stub_broker, stub_worker)

    got = received_by_address(relay)
    assert len(got) == 70 and set(got.values()) == {1}
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "sent"


def test_the_same_batch_message_delivered_twice_sends_each_row_once(
    body, newsletter_list, relay, stub_broker, stub_worker
):
    campaign = _start(body, newsletter_list, 15)
    lo, hi = db.session.execute(
        select(func.min(Delivery.id), func.max(Delivery.id)).where(
            Delivery.campaign_id == campaign.id
        )
    ).one()

    actors.deliver_batch.send(campaign.id, lo, hi)
    actors.deliver_batch.send(campaign.id, lo, hi)
    _wait(stub_broker, stub_worker)

    got = received_by_address(relay)
    assert len(got) == 15 and set(got.values()) == {1}
    db.session.expire_all()
    assert statuses(campaign.id) == {"sent": 15}


def test_retries_come_back_through_delayed_messages(
    body, newsletter_list, relay, stub_broker, stub_worker
):
    campaign = _start(body, newsletter_list, 8)
    first = db.session.scalars(
        select(Delivery.contact_id).where(Delivery.campaign_id == campaign.id)
    ).first()
    from contacts.models import Contact

    email = db.session.get(Contact, first).email
    relay.script.rcpt_replies[email] = "451 4.7.1 Greylisted"

    actors.start_campaign.send(campaign.id)
    # Let the first attempt fail, then heal the relay while the retry waits.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        db.session.expire_all()
        if statuses(campaign.id).get("deferred"):
            break
        time.sleep(0.02)
    relay.script.rcpt_replies.clear()
    _wait(stub_broker, stub_worker)

    assert received_by_address(relay)[email] == 1
    db.session.expire_all()
    assert statuses(campaign.id) == {"sent": 8}
