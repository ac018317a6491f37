"""Imports left behind: a dead worker's running batch, a lost job message, two deliveries,
and an address another request creates while a chunk is being written."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from campaigns import scheduler
from contacts import chunk_planning, import_recovery, import_writers, imports
from contacts.db import db, utcnow
from contacts.importfile import Limits
from contacts.models import ConsentEvent, Contact, ImportBatch, Subscription
from tests.factories import make_list
from tests.factories_contacts import secret
from tests.integration.contacts.test_imports import start


def _age(batch_id: int, **columns: dt.datetime | str | int | None) -> ImportBatch:
    db.session.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(**columns))
    db.session.commit()
    db.session.expire_all()
    return db.session.get(ImportBatch, batch_id)


def _reload(batch_id: int) -> ImportBatch:
    db.session.expire_all()
    return db.session.get(ImportBatch, batch_id)


def test_a_running_batch_whose_heartbeat_stopped_is_failed_with_a_plain_message(app, org):
    lst = make_list(org)
    dead = start(app, org, lst, "utf8-bom.csv")
    alive = start(app, org, lst, "utf8-bom.csv")
    long_ago = utcnow() - dt.timedelta(hours=1)
    _age(dead.id, status="running", heartbeat_at=long_ago, processed_rows=5000)
    _age(alive.id, status="running", heartbeat_at=utcnow())

    recovery = import_recovery.recover_imports(stale_seconds=600)

    assert recovery.failed == [dead.id]
    dead, alive = _reload(dead.id), _reload(alive.id)
    assert dead.status == "failed" and dead.finished_at is not None
    assert "après 5000 lignes" in dead.error and "relancer le même fichier" in dead.error
    assert alive.status == "running" and alive.error == ""


def test_a_pending_batch_whose_message_was_lost_is_queued_again_once_per_period(app, org):
    lst = make_list(org)
    lost = start(app, org, lst, "utf8-bom.csv")
    fresh = start(app, org, lst, "utf8-bom.csv")
    _age(lost.id, created_at=utcnow() - dt.timedelta(hours=2))

    first = import_recovery.recover_imports(stale_seconds=600)
    second = import_recovery.recover_imports(stale_seconds=600)

    assert first.requeue == [(org.id, lost.id)] and first.failed == []
    assert second.requeue == []  # its heartbeat now records the re-queue
    assert _reload(fresh.id).status == "pending"


def test_after_an_embedded_restart_running_batches_fail_and_pending_ones_are_requeued(app, org):
    lst = make_list(org)
    running = start(app, org, lst, "utf8-bom.csv")
    pending = start(app, org, lst, "utf8-bom.csv")
    _age(running.id, status="running", heartbeat_at=utcnow())  # however recent

    recovery = import_recovery.recover_imports(queue_lost=True)

    assert recovery.failed == [running.id]
    assert recovery.requeue == [(org.id, pending.id)]


def test_the_reconciler_tick_runs_a_lost_import_to_the_end(app, org, stub_broker, stub_worker):
    lst = make_list(org)
    batch = start(app, org, lst, "utf8-bom.csv")  # recorded, but its message never sent

    scheduler.tick(app, queue_lost=True)
    stub_broker.join("imports")
    stub_worker.join()

    batch = _reload(batch.id)
    assert (batch.status, batch.imported, batch.duplicates) == ("done", 3, 1)
    assert batch.heartbeat_at is not None


def test_a_batch_claimed_by_another_delivery_is_not_run_twice(app, org):
    lst = make_list(org)
    batch = start(app, org, lst, "utf8-bom.csv")
    assert imports._claim(org.id, batch.id) is True  # the first delivery's claim

    assert imports.process_import(org.id, batch.id, secret=secret()) is None
    assert imports._claim(org.id, batch.id) is False
    assert db.session.scalar(select(func.count(ConsentEvent.id))) == 0


def test_an_address_created_between_planning_and_writing_is_granted_once(app, org):
    """The race the writers handle: a chunk planned an address as new, and a subscription
    form (or another import) created that contact before the chunk was written."""
    lst = make_list(org)
    batch = start(app, org, lst, "utf8-bom.csv")
    assert imports._claim(org.id, batch.id)
    batch = _reload(batch.id)
    reader = imports._open_reader(batch, lst, Limits())
    target = chunk_planning.ImportTarget(
        org.id, batch.id, lst.id, lst.purpose, batch.source, batch.legal_basis, None, None
    )
    report: list = []
    progress = chunk_planning.Progress()
    job = chunk_planning.plan_chunk(target, list(reader), secret(), report, progress)
    db.session.commit()
    raced = job.new_rows[0]["email"]
    db.session.add(Contact(organisation_id=org.id, email=raced, first_name="Déjà"))
    db.session.commit()

    writer = (
        import_writers.ThreadWriter(db.engine, target)
        if db.engine.dialect.name == "postgresql"
        else import_writers.InlineWriter(target)
    )
    writer.submit(job)
    imported = writer.close()

    assert imported == len(job.new_rows)
    contacts = db.session.scalars(select(Contact).where(Contact.email == raced)).all()
    assert len(contacts) == 1 and contacts[0].first_name == "Déjà"
    subs = db.session.scalars(
        select(Subscription).where(Subscription.contact_id == contacts[0].id)
    ).all()
    assert [s.list_id for s in subs] == [lst.id]
    ledger = db.session.scalars(
        select(ConsentEvent).where(ConsentEvent.contact_id == contacts[0].id)
    ).all()
    assert len(ledger) == 1 and ledger[0].import_batch_id == batch.id
