"""The per-recipient rollup (``analytics.rollup``) gives the figures of the event scan."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest
from sqlalchemy import func, insert, select

from analytics import reports, rollup, stats_sql
from analytics.models import EventKind, RecipientActivity, TrackingEvent
from analytics.tracking import Hit, store_hits
from campaigns.models import Campaign, CampaignLink, Delivery
from contacts.db import db
from contacts.models import Contact, TrackingPolicy

T0 = dt.datetime(2025, 3, 4, 8, 0, tzinfo=dt.UTC)
EV = TrackingEvent.__table__
RA = RecipientActivity.__table__
ROLLUP_COLUMNS = [
    "organisation_id",
    "campaign_id",
    "recipient_key",
    "delivery_id",
    "events",
    *rollup.FLAGS,
    "clicks_total",
    "first_human_id",
    "device_class",
    "client_family",
]


def _campaign_with_deliveries(org_id: int, n: int) -> tuple[int, list[int], list[int]]:
    db.session.execute(
        insert(Contact.__table__),
        [{"organisation_id": org_id, "email": f"r{i}@example.org"} for i in range(n)],
    )
    contacts = list(db.session.scalars(select(Contact.id).where(Contact.organisation_id == org_id)))
    campaign = Campaign(organisation_id=org_id, started_at=T0, status="sent")
    db.session.add(campaign)
    db.session.flush()
    db.session.execute(
        insert(Delivery.__table__),
        [
            {"organisation_id": org_id, "campaign_id": campaign.id, "contact_id": c, "status": s}
            for c, s in zip(contacts, ["sent", "failed"] * n, strict=False)
        ],
    )
    db.session.execute(
        insert(CampaignLink.__table__),
        [
            {"organisation_id": org_id, "campaign_id": campaign.id, "url": f"https://ville.fr/{i}"}
            for i in range(4)
        ],
    )
    dids = list(db.session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign.id)))
    links = list(
        db.session.scalars(select(CampaignLink.id).where(CampaignLink.campaign_id == campaign.id))
    )
    return campaign.id, dids, links


def _random_events(rng: random.Random, org_id: int, cid: int, dids, links, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        who = rng.randrange(len(dids) + 10)  # some events name nobody, some have no key
        rows.append(
            {
                "organisation_id": org_id,
                "campaign_id": cid,
                "kind": rng.choice(["open", "open", "click", "unsubscribe", "bounce", "web_view"]),
                "recipient_key": "" if who % 7 == 0 else f"key{who}",
                "is_machine": rng.random() < 0.3,
                "created_at": T0 + dt.timedelta(minutes=rng.randrange(-60, 60 * 24 * 8)),
                "delivery_id": dids[who] if who < len(dids) and who % 5 else None,
                "link_id": rng.choice([*links, None]),
                "device_class": rng.choice(["phone", "tablet", "desktop", "unknown"]),
                "client_family": rng.choice(["Gmail", "Outlook", ""]),
            }
        )
    return rows


def _write_batches(rng: random.Random, rows: list[dict]) -> None:
    """Insert ``rows`` in random batches, each rolled up in its transaction, as a writer does."""
    conn = db.session.connection()
    i = 0
    while i < len(rows):
        batch = [dict(r) for r in rows[i : i + rng.randint(1, 80)]]
        i += len(batch)
        ids = conn.execute(
            insert(EV).returning(EV.c.id, sort_by_parameter_order=True), batch
        ).scalars()
        for row, event_id in zip(batch, ids, strict=True):
            row["id"] = event_id
        rollup.record_events(conn, batch)


def _scan_figures(org_id: int, cid: int) -> tuple[dict, list]:
    """The unique counts and the device split from the events (the pre-rollup queries)."""
    conn = db.session.connection()
    dialect = conn.dialect.name
    counts = dict(
        conn.execute(stats_sql.event_counts_query(org_id, cid, None, dialect)).one()._mapping
    )
    devices = conn.execute(stats_sql.device_query(org_id, cid, None, dialect)).all()
    return {k: int(v) for k, v in counts.items()}, sorted(tuple(r) for r in devices)


def _rollup_figures(org_id: int, cid: int) -> tuple[dict, list]:
    conn = db.session.connection()
    counts = dict(conn.execute(stats_sql.rollup_counts_query(org_id, cid)).one()._mapping)
    devices = conn.execute(stats_sql.rollup_device_query(org_id, cid)).all()
    return {k: int(v) for k, v in counts.items()}, sorted(tuple(r) for r in devices)


def _rollup_rows(cid: int) -> list[tuple]:
    rows = db.session.execute(
        select(*(RA.c[c] for c in ROLLUP_COLUMNS)).where(RA.c.campaign_id == cid)
    ).all()
    return sorted(tuple(r) for r in rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollup_figures_equal_event_scan_after_random_batches(app, org, seed):
    rng = random.Random(seed)
    cid, dids, links = _campaign_with_deliveries(org.id, 40)
    _write_batches(rng, _random_events(rng, org.id, cid, dids, links, 500))

    assert rollup.covered(db.session.connection(), [cid]) == {cid}
    assert _rollup_figures(org.id, cid) == _scan_figures(org.id, cid)


def test_report_from_rollup_equals_pandas_report_of_the_events(app, org):
    rng = random.Random(11)
    cid, dids, links = _campaign_with_deliveries(org.id, 40)
    _write_batches(rng, _random_events(rng, org.id, cid, dids, links, 400))
    conn = db.session.connection()

    sql = stats_sql.campaign_report(db.session, org.id, cid, with_comparison=False).to_dict()
    frames = [
        pd.read_sql(select(t).where(t.c.campaign_id == cid), conn)
        for t in (Delivery.__table__, EV, CampaignLink.__table__)
    ]
    empty = pd.DataFrame()
    frame = reports.campaign_report(
        *frames, empty, empty, status="sent", started_at=T0, campaign_id=cid
    ).to_dict()
    assert sql == frame


def test_rebuild_gives_the_rows_the_batches_built(app, org):
    rng = random.Random(5)
    cid, dids, links = _campaign_with_deliveries(org.id, 30)
    _write_batches(rng, _random_events(rng, org.id, cid, dids, links, 300))
    incremental = _rollup_rows(cid)

    written = rollup.rebuild(org.id, cid, db.session.connection())

    assert written == len(incremental)
    assert _rollup_rows(cid) == incremental


def test_events_inserted_without_the_rollup_are_scanned_until_a_rebuild(app, org):
    rng = random.Random(9)
    cid, dids, links = _campaign_with_deliveries(org.id, 20)
    _write_batches(rng, _random_events(rng, org.id, cid, dids, links, 100))
    db.session.execute(insert(EV), _random_events(rng, org.id, cid, dids, links, 50))
    conn = db.session.connection()
    assert rollup.covered(conn, [cid]) == set()
    scanned = stats_sql.campaign_stats(db.session, org.id, cid)

    rollup.rebuild(org.id, cid)

    assert rollup.covered(db.session.connection(), [cid]) == {cid}
    assert _rollup_figures(org.id, cid) == _scan_figures(org.id, cid)
    assert stats_sql.campaign_stats(db.session, org.id, cid) == scanned


def test_rebuild_refuses_another_body_campaign(app, org):
    from tests.factories import make_org

    cid, dids, links = _campaign_with_deliveries(org.id, 5)
    other = make_org(name="Autre")

    assert rollup.rebuild(other.id, cid, db.session.connection()) == 0


def test_store_hits_rolls_up_each_batch_in_its_transaction(app, org):
    org.tracking_policy = TrackingPolicy.AGGREGATE
    cid, dids, links = _campaign_with_deliveries(org.id, 10)
    db.session.commit()
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile"
    at = T0.timestamp() + 3600
    batches = [
        [Hit(EventKind.OPEN, cid, recipient_key=f"k{i}", user_agent=ua, at=at) for i in range(6)],
        [
            Hit(EventKind.CLICK, cid, recipient_key="k1", link_id=links[0], user_agent=ua, at=at),
            Hit(EventKind.OPEN, cid, recipient_key="k1", user_agent=ua, at=at + 1),
            Hit(EventKind.OPEN, cid, user_agent=ua, at=at + 2),  # names nobody
        ],
    ]
    for hits in batches:
        with db.engine.begin() as conn:
            store_hits(conn, hits)

    assert rollup.covered(db.session.connection(), [cid]) == {cid}
    assert db.session.scalar(select(func.count()).select_from(RA)) == 7
    assert _rollup_figures(org.id, cid) == _scan_figures(org.id, cid)
    stats = stats_sql.campaign_stats(db.session, org.id, cid)
    assert (stats["opens_unique"], stats["clicks_unique"]) == (7, 1)


def test_an_event_added_through_the_orm_is_rolled_up(app, org):
    cid, dids, links = _campaign_with_deliveries(org.id, 3)
    db.session.add(
        TrackingEvent(
            organisation_id=org.id,
            campaign_id=cid,
            kind=EventKind.UNSUBSCRIBE,
            delivery_id=dids[0],
        )
    )
    db.session.flush()

    assert rollup.covered(db.session.connection(), [cid]) == {cid}
    assert _rollup_figures(org.id, cid)[0]["unsubscribes"] == 1


def test_erasing_a_contact_keeps_the_rollup_equal_to_the_events(app, org):
    from analytics.contact_data import forget_contact

    rng = random.Random(7)
    cid, dids, links = _campaign_with_deliveries(org.id, 40)
    rows = _random_events(rng, org.id, cid, dids, links, 400)
    for row in rows:  # events keyed by delivery only: erasure changes how they count
        if row["delivery_id"] is not None:
            row["recipient_key"] = ""
    _write_batches(rng, rows)
    erased = db.session.get(Delivery, dids[1]).contact_id
    forget_contact(org.id, erased, "")
    assert _rollup_figures(org.id, cid) == _scan_figures(org.id, cid)
