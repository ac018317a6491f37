"""Sending batches through a real SMTP server: outcomes, retries, bounces, re-checks."""

from __future__ import annotations

from sqlalchemy import select

from campaigns import sender, sending
from campaigns.models import Campaign, Delivery
from contacts.db import db
from contacts.models import Contact
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import drive, received_by_address, statuses


def _start(body, lst, n=12, **contacts):
    ids = make_contacts(body, lst, n, **contacts)
    campaign = make_ready_campaign(body, [lst])
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()
    return campaign, ids


def _emails(ids):
    query = select(Contact.id, Contact.email).where(Contact.id.in_(ids))
    return dict(db.session.execute(query).all())


def test_every_recipient_gets_exactly_one_message_and_the_campaign_ends_sent(
    body, newsletter_list, relay
):
    campaign, ids = _start(body, newsletter_list, 45)

    drive(_app(), campaign.id)

    got = received_by_address(relay)
    assert sorted(got) == sorted(_emails(ids).values())
    assert set(got.values()) == {1}
    assert statuses(campaign.id) == {"sent": 45}
    db.session.refresh(campaign)
    assert campaign.status == "sent" and campaign.finished_at is not None


def _app():
    from flask import current_app

    return current_app._get_current_object()


def test_a_batch_run_twice_sends_nothing_the_second_time(body, newsletter_list, relay):
    campaign, ids = _start(body, newsletter_list, 10)
    settings = sender.SendSettings.from_config(_app().config)
    lo, hi = min(_row_ids(campaign)), max(_row_ids(campaign))

    first = sender.send_batch(campaign.id, lo, hi, settings)
    second = sender.send_batch(campaign.id, lo, hi, settings)

    assert first.claimed == 10 and first.sent == 10
    assert second.claimed == 0 and second.sent == 0
    assert len(relay.messages) == 10


def _row_ids(campaign):
    return db.session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign.id)).all()


def test_a_contact_who_unsubscribes_after_the_freeze_is_not_sent_to(body, newsletter_list, relay):
    campaign, ids = _start(body, newsletter_list, 6)
    leaver = db.session.get(Contact, ids[3])
    leaver.status = "unsubscribed"
    db.session.commit()

    drive(_app(), campaign.id)

    assert leaver.email not in relay.recipients()
    assert len(relay.messages) == 5
    row = db.session.scalars(select(Delivery).where(Delivery.contact_id == leaver.id)).one()
    assert row.status == "skipped"
    db.session.refresh(campaign)
    assert campaign.status == "sent"


def test_a_withdrawn_subscription_after_the_freeze_wins_too(body, newsletter_list, relay):
    from contacts.models import Subscription

    campaign, ids = _start(body, newsletter_list, 4)
    sub = db.session.scalars(select(Subscription).where(Subscription.contact_id == ids[0])).one()
    sub.status = "withdrawn"
    db.session.commit()

    drive(_app(), campaign.id)

    assert len(relay.messages) == 3


def test_relay_4xx_for_one_in_ten_and_dropped_connections_still_deliver_everyone(
    body, newsletter_list, relay
):
    campaign, ids = _start(body, newsletter_list, 40)
    emails = list(_emails(ids).values())
    for email in emails[::10]:
        relay.script.rcpt_replies[email] = "451 4.7.1 Greylisted, try again"
    for email in emails[5::13]:
        relay.script.drop_on_data.add(email)
    tries = {"n": 0}

    class Healing:
        """The relay recovers after a few attempts (greylisting lets retries through)."""

        def __init__(self, transport):
            self.transport = transport

        def send(self, sender_, recipients, raw):
            tries["n"] += 1
            if tries["n"] == 50:
                relay.script.rcpt_replies.clear()
                relay.script.drop_on_data.clear()
            return self.transport.send(sender_, recipients, raw)

    from campaigns.mailer import transport_for

    drive(_app(), campaign.id, transport=Healing(transport_for(body, "", 4)))

    got = received_by_address(relay)
    assert sorted(got) == sorted(emails) and set(got.values()) == {1}
    assert statuses(campaign.id) == {"sent": 40}
    retried = db.session.scalars(
        select(Delivery.attempts).where(Delivery.campaign_id == campaign.id, Delivery.attempts > 1)
    ).all()
    assert len(retried) >= 4 + 3  # the greylisted and the dropped ones were retried


def test_a_deferred_row_shows_when_it_will_be_retried_and_why(body, newsletter_list, relay):
    campaign, ids = _start(body, newsletter_list, 3)
    victim = _emails(ids)[ids[1]]
    relay.script.rcpt_replies[victim] = "452 4.2.2 Mailbox full"
    settings = sender.SendSettings.from_config(_app().config)
    rows = _row_ids(campaign)

    sender.send_batch(campaign.id, min(rows), max(rows), settings)

    row = db.session.scalars(select(Delivery).where(Delivery.contact_id == ids[1])).one()
    assert row.status == "deferred"
    assert row.next_attempt_at is not None
    assert "452" in row.last_error and row.attempts == 1


def test_bad_mailboxes_fail_and_are_suppressed_and_the_others_are_delivered(
    body, newsletter_list, relay
):
    campaign, ids = _start(body, newsletter_list, 10)
    emails = _emails(ids)
    bad = [emails[ids[2]], emails[ids[7]]]
    for email in bad:
        relay.script.rcpt_replies[email] = "550 5.1.1 User unknown"
    relay.script.rcpt_replies[emails[ids[4]]] = "554 5.7.1 Message refused by policy"

    drive(_app(), campaign.id)

    assert statuses(campaign.id) == {"sent": 7, "failed": 3}
    contacts = {c.email: c.status for c in db.session.scalars(select(Contact))}
    assert contacts[bad[0]] == contacts[bad[1]] == "bounced"
    assert contacts[emails[ids[4]]] == "active"  # a policy refusal is not the address's fault
    from contacts.suppression import is_suppressed

    secret = _app().config["CRIEUR_SECRET_KEY"]
    assert is_suppressed(body.id, bad[0], secret)
    db.session.refresh(campaign)
    assert campaign.status == "sent"


def test_a_retry_limit_ends_in_failure_not_in_an_endless_loop(body, newsletter_list, relay):
    _app().config["CRIEUR_SEND_MAX_ATTEMPTS"] = 3
    campaign, ids = _start(body, newsletter_list, 2)
    stubborn = _emails(ids)[ids[0]]
    relay.script.rcpt_replies[stubborn] = "421 4.3.0 Try later"

    drive(_app(), campaign.id)

    row = db.session.scalars(select(Delivery).where(Delivery.contact_id == ids[0])).one()
    assert row.status == "failed" and row.attempts == 3
    assert "3 tentatives" in row.last_error
    assert statuses(campaign.id) == {"sent": 1, "failed": 1}


def test_a_connection_lost_after_the_final_dot_is_unknown_and_not_resent(
    body, newsletter_list, relay
):
    campaign, ids = _start(body, newsletter_list, 3)
    ghost = _emails(ids)[ids[1]]
    relay.script.drop_after_dot.add(ghost)

    drive(_app(), campaign.id)

    assert received_by_address(relay)[ghost] == 1
    row = db.session.scalars(select(Delivery).where(Delivery.contact_id == ids[1])).one()
    assert row.status == "unknown"
    assert statuses(campaign.id) == {"sent": 2, "unknown": 1}


def test_a_relay_that_is_down_costs_no_attempts(body, newsletter_list, relay):
    campaign, ids = _start(body, newsletter_list, 5)
    relay.stop()
    settings = sender.SendSettings.from_config(_app().config)
    rows = _row_ids(campaign)

    result = sender.send_batch(campaign.id, min(rows), max(rows), settings)

    assert result.reason == "relay_down" and result.next is not None and result.delay > 0
    found = db.session.execute(
        select(Delivery.status, Delivery.attempts).where(Delivery.campaign_id == campaign.id)
    ).all()
    assert {tuple(r) for r in found} == {("queued", 0)}


def test_pause_then_resume_sends_only_the_rows_not_yet_sent(body, newsletter_list, relay):
    campaign, ids = _start(body, newsletter_list, 30)
    settings = sender.SendSettings.from_config(_app().config)
    rows = sorted(_row_ids(campaign))
    sender.send_batch(campaign.id, rows[0], rows[9], settings)
    sending.pause_sending(body.id, campaign, None, "officer")
    db.session.commit()

    paused = sender.send_batch(campaign.id, rows[10], rows[-1], settings)
    assert paused.claimed == 0 and paused.next is None
    sending.resume_sending(body.id, campaign, None, "director")
    db.session.commit()
    drive(_app(), campaign.id)

    got = received_by_address(relay)
    assert len(got) == 30 and set(got.values()) == {1}
    db.session.refresh(campaign)
    assert campaign.status == "sent"


def test_a_pause_noticed_mid_batch_hands_the_claimed_rows_back(body, newsletter_list, relay):
    campaign, ids = _start(body, newsletter_list, 20)
    settings = sender.SendSettings.from_config(_app().config)
    settings = sender.SendSettings(**{**settings.__dict__, "recheck_seconds": 0.0})
    rows = sorted(_row_ids(campaign))
    sent = {"n": 0}

    class PauseAfterFive:
        def __init__(self, transport):
            self.transport = transport

        def send(self, *args):
            sent["n"] += 1
            if sent["n"] == 5:
                db.session.execute(
                    Campaign.__table__.update()
                    .where(Campaign.id == campaign.id)
                    .values(status="paused")
                )
                db.session.commit()
            return self.transport.send(*args)

    from campaigns.mailer import transport_for

    result = sender.send_batch(
        campaign.id, rows[0], rows[-1], settings, transport=PauseAfterFive(transport_for(body, ""))
    )

    assert result.reason == "paused" and result.next is None
    assert statuses(campaign.id) == {"sent": 5, "queued": 15}
    assert len(relay.messages) == 5


def test_cancel_stops_sending_and_marks_the_waiting_rows(body, newsletter_list, relay):
    campaign, ids = _start(body, newsletter_list, 20)
    settings = sender.SendSettings.from_config(_app().config)
    rows = sorted(_row_ids(campaign))
    sender.send_batch(campaign.id, rows[0], rows[4], settings)

    cancelled = sending.cancel_sending(body.id, campaign, None, "officer")
    db.session.commit()
    after = sender.send_batch(campaign.id, rows[0], rows[-1], settings)

    assert cancelled == 15
    assert after.claimed == 0
    assert statuses(campaign.id) == {"sent": 5, "cancelled": 15}
    assert len(relay.messages) == 5


def test_a_one_click_unsubscribe_while_the_row_is_already_claimed_still_wins(
    body, newsletter_list, relay
):
    from contacts.consent import withdraw_all

    campaign, ids = _start(body, newsletter_list, 12)
    settings = sender.SendSettings.from_config(_app().config)
    settings = sender.SendSettings(**{**settings.__dict__, "recheck_seconds": 0.0})
    leaver = db.session.get(Contact, ids[9])
    rows = sorted(_row_ids(campaign))
    secret = _app().config["CRIEUR_SECRET_KEY"]
    sent = {"n": 0}

    class UnsubscribeDuringSend:
        def __init__(self, transport):
            self.transport = transport

        def send(self, *args):
            sent["n"] += 1
            if sent["n"] == 3:  # all 12 rows are claimed by now
                withdraw_all(body.id, leaver.id, secret, method="one_click")
                db.session.commit()
            return self.transport.send(*args)

    from campaigns.mailer import transport_for

    result = sender.send_batch(
        campaign.id, rows[0], rows[-1], settings,
        transport=UnsubscribeDuringSend(transport_for(body, "")),
    )  # fmt: skip

    assert result.claimed == 12
    assert leaver.email not in relay.recipients()
    assert statuses(campaign.id) == {"sent": 11, "skipped": 1}


def test_without_a_relay_the_messages_land_in_the_outbox_once_each(org):
    from campaigns.models import OutboxMessage
    from tests.factories import make_list

    lst = make_list(org)
    campaign, ids = _start(org, lst, 7)

    drive(_app(), campaign.id)

    captured = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.organisation_id == org.id)
    ).all()
    assert sorted(m.recipients for m in captured) == sorted(_emails(ids).values())
    assert all(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in m.raw for m in captured)
    assert statuses(campaign.id) == {"sent": 7}
