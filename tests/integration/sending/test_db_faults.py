"""The database misbehaves under a sending worker: a dropped connection, a jumping clock.

RELIABILITY.md, "Faults to inject":

- "DB connection drops mid-batch → lease expires, rows reclaimed; no duplicate beyond the
  one in flight": the sending thread's PostgreSQL backend is killed with
  ``pg_terminate_backend`` while it sends (real relay, Dramatiq worker threads, the
  reconciler running); its claimed rows come back once their lease expires;
- "Worker clock jumps 1 h → leases unaffected (DB now())": every ``utcnow`` the Python
  code can see is moved an hour; leases, expiry and claims still follow the database's
  ``now()``. PostgreSQL only: on SQLite the process clock *is* the database clock (one
  embedded process, see :mod:`campaigns.dbclock`).
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time

import dramatiq
import pytest
from sqlalchemy import select, text

from campaigns import claims, dbclock, reconcile, scheduler, sender, sending
from campaigns.models import Campaign, Delivery
from contacts import db as db_module
from contacts.db import db
from contacts.models import Contact
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import received_by_address, statuses
from tests.stub_queues import release_held_messages

pytestmark = [pytest.mark.postgres, pytest.mark.backends("postgres")]


def _sending(body, lst, n):
    make_contacts(body, lst, n)
    campaign = make_ready_campaign(body, [lst])
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()
    return campaign


def _row_ids(campaign) -> list[int]:
    return sorted(
        db.session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign.id))
    )


# ------------------------------------------------------------------- connection dropped


class DropConnectionOnce:
    """A transport that, before its ``at``-th message, kills the caller's DB connection.

    The sending thread's session is made to hold its connection (as it does between a
    claim and a commit), its backend is terminated from another connection, and the
    message then goes to the relay as usual: the thread only learns of the loss at its
    next statement, with messages sent whose outcome it can no longer write.
    """

    def __init__(self, transport, at: int, campaign_id: int) -> None:
        self.transport, self.at, self.campaign_id = transport, at, campaign_id
        self.lock = threading.Lock()
        self.count = 0
        self.in_flight: set[int] | None = None  # rows flagged and sending at the kill

    def send(self, sender_, recipients, raw):
        with self.lock:
            self.count += 1
            kill = self.count == self.at
        if kill:
            pid = db.session.connection().connection.dbapi_connection.info.backend_pid
            with db.engine.connect() as other:
                assert other.scalar(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
                self.in_flight = set(
                    other.scalars(
                        text(
                            "SELECT id FROM deliveries WHERE campaign_id = :c"
                            " AND status = 'sending' AND possible_duplicate"
                        ),
                        {"c": self.campaign_id},
                    )
                )
        return self.transport.send(sender_, recipients, raw)

    def close(self) -> None:
        self.transport.close()


def test_a_connection_dropped_mid_batch_skips_nobody_and_resends_only_rows_in_flight(
    app, body, newsletter_list, relay, stub_broker, monkeypatch
):
    from campaigns import actors

    app.config.update(
        CRIEUR_SEND_BATCH_SIZE=50,
        CRIEUR_SEND_LANES=2,
        CRIEUR_SEND_LEASE_SECONDS=3,
        CRIEUR_SEND_STALL_SECONDS=1,
    )
    relay.script.reply_delay = 0.005
    campaign = _sending(body, newsletter_list, 200)
    real_transport_for = sender.transport_for
    dropper: list[DropConnectionOnce] = []

    def transport_for(org, default_url, connections=4):
        if not dropper:
            dropper.append(
                DropConnectionOnce(
                    real_transport_for(org, default_url, connections), 30, campaign.id
                )
            )
        return dropper[0]

    monkeypatch.setattr(sender, "transport_for", transport_for)
    # One worker thread, so the rows in flight at the drop are all that thread's.
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=1)
    worker.start()
    reconciler = scheduler.PeriodicRunner(app, 0.3).start()
    try:
        actors.start_campaign.send(campaign.id)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(Campaign, campaign.id).status == "sent":
                break
            db.session.commit()
            time.sleep(0.1)
    finally:
        reconciler.stop()
        worker.stop()
        release_held_messages(stub_broker)

    in_flight = dropper[0].in_flight
    assert in_flight, "the connection was not dropped while rows were in flight"
    got = received_by_address(relay)
    emails = dict(
        db.session.execute(
            select(Delivery.id, Contact.email)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.campaign_id == campaign.id)
        ).all()
    )
    assert set(got) == set(emails.values())  # nobody skipped
    assert statuses(campaign.id) == {"sent": 200}
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "sent"
    twice = {row for row, email in emails.items() if got[email] > 1}
    assert twice <= in_flight  # duplicates only among the rows in flight at the drop
    assert sum(n - 1 for n in got.values()) <= len(in_flight) <= sender.SendSettings.outcome_batch
    flagged = set(
        db.session.scalars(
            select(Delivery.id).where(
                Delivery.campaign_id == campaign.id, Delivery.possible_duplicate
            )
        )
    )
    assert twice <= flagged  # and each one is listed
    reclaimed = db.session.scalars(select(Delivery.attempts).where(Delivery.id.in_(in_flight)))
    assert min(reclaimed) >= 2  # their lease expired and they were claimed again


# --------------------------------------------------------------------------- clock jumps


@pytest.fixture
def shift_clock(monkeypatch):
    """``shift_clock(hours)``: every module's ``utcnow`` (contacts.db's) runs that far off.

    Call it once per test: the sending code only reads the Python clock through it.
    """
    original = db_module.utcnow

    def shift(hours: float) -> None:
        def shifted() -> dt.datetime:
            return original() + dt.timedelta(hours=hours)

        for module in list(sys.modules.values()):
            if getattr(module, "utcnow", None) is original:
                monkeypatch.setattr(module, "utcnow", shifted)

    return shift


def _leases(ids) -> dict[int, dt.datetime]:
    db.session.expire_all()
    return dict(db.session.execute(select(Delivery.id, Delivery.lease_until).where(
        Delivery.id.in_(ids))).all())  # fmt: skip


def test_a_worker_clock_an_hour_ahead_neither_expires_nor_steals_a_live_lease(
    body, newsletter_list, shift_clock
):
    campaign = _sending(body, newsletter_list, 6)
    rows = _row_ids(campaign)
    held = claims.claim_rows(body.id, campaign.id, rows[0], rows[2], 10, lease_seconds=600)

    shift_clock(+1)
    assert db_module.utcnow() - dbclock.db_now() > dt.timedelta(minutes=59)
    report = reconcile.reconcile(batch_size=20, lanes=3, lease_seconds=600, stall_seconds=60)
    stolen = claims.claim_rows(body.id, campaign.id, rows[0], rows[2], 10, lease_seconds=600)
    fresh = claims.claim_rows(body.id, campaign.id, rows[3], rows[5], 10, lease_seconds=600)

    assert len(held.rows) == 3 and report.expired == 0 and stolen.rows == []
    assert len(fresh.rows) == 3
    assert statuses(campaign.id) == {"sending": 6}
    now = dbclock.db_now()
    for lease in _leases(rows).values():  # a lease is now() + 600 s, whoever's clock
        assert dt.timedelta(seconds=590) < lease - now <= dt.timedelta(seconds=600)


def test_a_worker_clock_an_hour_behind_does_not_extend_a_lease(body, newsletter_list, shift_clock):
    campaign = _sending(body, newsletter_list, 3)
    rows = _row_ids(campaign)

    shift_clock(-1)
    assert dbclock.db_now() - db_module.utcnow() > dt.timedelta(minutes=59)
    claims.claim_rows(body.id, campaign.id, rows[0], rows[-1], 10, lease_seconds=0.5)
    leases = _leases(rows)
    time.sleep(0.8)
    report = reconcile.reconcile(batch_size=20, lanes=3, lease_seconds=0.5, stall_seconds=60)

    now = dbclock.db_now()
    assert all(lease < now for lease in leases.values())  # expired by the database clock
    assert report.expired == 3  # so taken back, although the worker's clock says 59 min left
    assert statuses(campaign.id) == {"deferred": 3}
    again = claims.claim_rows(body.id, campaign.id, rows[0], rows[-1], 10, lease_seconds=600)
    assert len(again.rows) == 3  # and due again at once (next_attempt_at = now())
