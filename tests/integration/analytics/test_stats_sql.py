"""SQL aggregates of ``analytics.stats_sql`` against known numbers and against pandas."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest
from sqlalchemy import insert, select

from analytics import reports, stats_sql
from analytics.models import Answer, SiteHit, TrackingEvent
from campaigns.models import Campaign, CampaignLink, Delivery
from contacts.db import db
from contacts.models import Contact, Subscription

T0 = dt.datetime(2025, 3, 4, 8, 0, tzinfo=dt.UTC)


def _at(**delta: float) -> dt.datetime:
    return T0 + dt.timedelta(**delta)


def _insert(model, rows: list[dict]) -> None:
    # An executemany takes its columns from the first row: every row must have the same keys.
    assert all(r.keys() == rows[0].keys() for r in rows)
    if rows:
        db.session.execute(insert(model.__table__), rows)


def _contacts(org_id: int, n: int) -> list[int]:
    start = db.session.scalar(select(db.func.count()).select_from(Contact.__table__)) or 0
    rows = [{"organisation_id": org_id, "email": f"c{start + i}@example.org"} for i in range(n)]
    _insert(Contact, rows)
    return list(
        db.session.scalars(
            select(Contact.id).where(Contact.organisation_id == org_id).order_by(Contact.id)
        )
    )[-n:]


def _campaign(org_id: int, started_at: dt.datetime | None, **kw) -> int:
    campaign = Campaign(organisation_id=org_id, started_at=started_at, status="sent", **kw)
    db.session.add(campaign)
    db.session.flush()
    return campaign.id


def _deliveries(org_id: int, campaign_id: int, contact_ids, statuses) -> list[int]:
    rows = [
        {"organisation_id": org_id, "campaign_id": campaign_id, "contact_id": c, "status": s}
        for c, s in zip(contact_ids, statuses, strict=True)
    ]
    _insert(Delivery, rows)
    return list(
        db.session.scalars(
            select(Delivery.id).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id)
        )
    )


def _links(org_id: int, campaign_id: int, urls) -> list[int]:
    _insert(
        CampaignLink,
        [{"organisation_id": org_id, "campaign_id": campaign_id, "url": u} for u in urls],
    )
    return list(
        db.session.scalars(
            select(CampaignLink.id)
            .where(CampaignLink.campaign_id == campaign_id)
            .order_by(CampaignLink.id)
        )
    )


def _event(org_id, campaign_id, kind, key="", at=T0, machine=False, **kw) -> dict:
    row = {
        "organisation_id": org_id,
        "campaign_id": campaign_id,
        "kind": kind,
        "recipient_key": key,
        "is_machine": machine,
        "created_at": at,
        "delivery_id": None,
        "link_id": None,
        "device_class": "unknown",
        "client_family": "Other",
    }
    row.update(kw)
    return row


@pytest.fixture
def known(app, org):
    """One campaign with hand-counted figures, a previous one, and another body's."""
    from tests.factories import make_org

    oid = org.id
    contacts = _contacts(oid, 6)
    previous = _campaign(oid, T0 - dt.timedelta(days=30), subject="Avant")
    prev_deliveries = _deliveries(oid, previous, contacts[:2], ["sent", "sent"])
    cid = _campaign(oid, T0, subject="Lettre de mars")
    dids = _deliveries(oid, cid, contacts, ["sent"] * 4 + ["failed", "deferred"])
    l1, l2, l3 = _links(oid, cid, ["https://ville.fr/a", "https://ville.fr/b", "https://x.fr/c"])
    ev = [
        _event(oid, cid, "open", "k1", _at(seconds=2), True),
        _event(
            oid,
            cid,
            "open",
            "k1",
            _at(hours=1, minutes=5),
            device_class="phone",
            client_family="Apple Mail",
        ),
        _event(
            oid,
            cid,
            "click",
            "k1",
            _at(hours=1, minutes=10),
            link_id=l1,
            device_class="desktop",
            client_family="Chrome",
        ),
        _event(oid, cid, "open", "k2", _at(seconds=3), True),
        _event(
            oid,
            cid,
            "click",
            "k3",
            _at(hours=2),
            link_id=l2,
            device_class="desktop",
            client_family="Firefox",
        ),
        _event(
            oid,
            cid,
            "click",
            "k3",
            _at(hours=2, minutes=1),
            link_id=l2,
            device_class="desktop",
            client_family="Firefox",
        ),
        _event(oid, cid, "open", "k4", _at(hours=30), device_class="tablet", client_family="Gmail"),
        _event(oid, cid, "unsubscribe", "k4", _at(hours=31)),
        _event(oid, cid, "click", "k5", _at(seconds=5), True, link_id=l3),
        _event(oid, cid, "open", "", _at(hours=3), device_class="desktop", client_family="Outlook"),
        _event(oid, cid, "open", "k6", _at(hours=200)),  # after the 7-day timeline
        _event(oid, previous, "open", "p1", T0 - dt.timedelta(days=29)),
    ]
    _insert(TrackingEvent, ev)
    _insert(
        Answer,
        [
            {
                "organisation_id": oid,
                "campaign_id": cid,
                "delivery_id": dids[0],
                "kind": "rsvp",
                "value": "yes",
            },
            {
                "organisation_id": oid,
                "campaign_id": cid,
                "delivery_id": dids[1],
                "kind": "rsvp",
                "value": "yes",
            },
            {
                "organisation_id": oid,
                "campaign_id": cid,
                "delivery_id": dids[2],
                "kind": "rsvp",
                "value": "no",
            },
            {
                "organisation_id": oid,
                "campaign_id": cid,
                "delivery_id": dids[0],
                "kind": "poll",
                "value": "Vert",
            },
            {
                "organisation_id": oid,
                "campaign_id": previous,
                "delivery_id": prev_deliveries[0],
                "kind": "rsvp",
                "value": "maybe",
            },
        ],
    )
    hit = {"organisation_id": oid, "visitor_hash": "h1", "path": "/", "is_new_visit": True}
    _insert(
        SiteHit,
        [
            {**hit, "campaign_id": cid, "created_at": _at(hours=1)},
            {
                **hit,
                "campaign_id": cid,
                "created_at": _at(hours=1, minutes=2),
                "is_new_visit": False,
            },
            {**hit, "campaign_id": cid, "visitor_hash": "h2", "created_at": _at(days=1)},
            {**hit, "campaign_id": None, "visitor_hash": "h3", "created_at": _at(days=1)},
            {**hit, "campaign_id": previous, "created_at": _at(days=3)},
        ],
    )
    other = make_org()
    other_contacts = _contacts(other.id, 1)
    foreign = _campaign(other.id, T0)
    _deliveries(other.id, foreign, other_contacts, ["sent"])
    _insert(TrackingEvent, [_event(other.id, foreign, "open", "k1", _at(hours=1))])
    _insert(TrackingEvent, [_event(other.id, cid, "open", "zz", _at(hours=1))])  # forged org
    db.session.flush()
    return {
        "org": oid,
        "cid": cid,
        "previous": previous,
        "foreign": foreign,
        "links": (l1, l2, l3),
        "other": other.id,
    }


def test_campaign_stats_match_hand_counted_figures(known):
    stats = stats_sql.campaign_stats(
        db.session, known["org"], known["cid"], poll_options=["Vert", "Bleu"]
    )
    assert reports.contract_stats(stats) == {
        "status": "sent",
        "recipients": 6,
        "sent": 4,
        "deferred": 1,
        "failed": 1,
        "opens_unique": 5,  # k1, k3 (by clicking), k4, the keyless open, k6
        "opens_machine": 2,  # k2 and k5: only machines
        "clicks_unique": 2,
        "unsubscribes": 1,
        "rsvp": {"yes": 2, "no": 1, "maybe": 0},
        "poll": {"Vert": 1, "Bleu": 0},
        "site_visits": 2,
        "links": [
            {"url": "https://ville.fr/b", "clicks_unique": 1},
            {"url": "https://ville.fr/a", "clicks_unique": 1},
            {"url": "https://x.fr/c", "clicks_unique": 0},
        ],
    }
    assert stats["clicks_total"] == 3
    assert stats["clicks_machine"] == 1
    assert stats["opens_pixel_unique"] == 4


def test_campaign_of_another_body_gives_none(known):
    assert stats_sql.campaign_stats(db.session, known["org"], known["foreign"]) is None
    assert stats_sql.campaign_report(db.session, known["org"], known["foreign"]) is None


def test_sql_report_has_devices_of_first_human_events_and_hourly_timeline(known):
    report = stats_sql.campaign_report(db.session, known["org"], known["cid"])
    devices = dict(zip(report.devices["device_class"], report.devices["count"], strict=True))
    assert devices == {"phone": 1, "tablet": 1, "desktop": 2, "unknown": 1}
    tl = report.timeline.set_index("hour")
    assert len(report.timeline) == 168
    assert (tl.loc[1, "opens"], tl.loc[1, "clicks"]) == (1, 1)
    assert (tl.loc[2, "opens"], tl.loc[2, "clicks"]) == (0, 2)
    assert tl.loc[3, "opens"] == 1
    assert tl.loc[30, "opens"] == 1
    assert int(tl["opens"].sum()) == 3 and int(tl["clicks"].sum()) == 3


def test_sql_report_compares_with_previous_campaigns_median(known):
    report = stats_sql.campaign_report(db.session, known["org"], known["cid"])
    open_rate = report.comparison["open_rate"]
    assert open_rate["value"] == pytest.approx(5 / 4)
    assert open_rate["median"] == pytest.approx(1 / 2)
    assert open_rate["campaigns"] == 1


def _frames(org_id: int, campaign_id: int):
    conn = db.session.connection()
    ev = pd.read_sql(
        select(TrackingEvent.__table__).where(
            TrackingEvent.organisation_id == org_id, TrackingEvent.campaign_id == campaign_id
        ),
        conn,
    )
    dl = pd.read_sql(select(Delivery.__table__).where(Delivery.campaign_id == campaign_id), conn)
    lk = pd.read_sql(
        select(CampaignLink.__table__).where(CampaignLink.campaign_id == campaign_id), conn
    )
    an = pd.read_sql(select(Answer.__table__).where(Answer.campaign_id == campaign_id), conn)
    sh = pd.read_sql(select(SiteHit.__table__).where(SiteHit.organisation_id == org_id), conn)
    return dl, ev, lk, an, sh


@pytest.mark.parametrize("mode", [None, "aggregate", "per_contact"])
def test_sql_and_pandas_reports_agree_on_random_events(app, org, mode):
    rng = random.Random(7)
    oid = org.id
    contacts = _contacts(oid, 60)
    cid = _campaign(oid, T0)
    statuses = rng.choices(["sent", "failed", "deferred", "queued", "unknown"], k=60)
    dids = _deliveries(oid, cid, contacts, statuses)
    links = _links(oid, cid, [f"https://ville.fr/{i}" for i in range(5)])
    rows = []
    for _ in range(600):
        who = rng.randrange(70)  # some events have no delivery, some no key
        rows.append(
            _event(
                oid,
                cid,
                rng.choice(["open", "open", "click", "unsubscribe", "bounce", "web_view"]),
                key="" if who % 7 == 0 else f"key{who}",
                at=_at(minutes=rng.randrange(-60, 60 * 24 * 8)),
                machine=rng.random() < 0.3,
                delivery_id=dids[who] if who < 60 and who % 5 else None,
                link_id=rng.choice([*links, None]),
                device_class=rng.choice(["phone", "tablet", "desktop", "unknown"]),
                client_family=rng.choice(["Gmail", "Outlook", ""]),
            )
        )
    _insert(TrackingEvent, rows)
    _insert(
        Answer,
        [
            {
                "organisation_id": oid,
                "campaign_id": cid,
                "delivery_id": d,
                "kind": "rsvp",
                "value": rng.choice(["yes", "no", "maybe"]),
            }
            for d in dids[:25]
        ],
    )
    db.session.flush()

    sql = stats_sql.campaign_report(
        db.session, oid, cid, mode=mode, with_comparison=False
    ).to_dict()
    dl, ev, lk, an, sh = _frames(oid, cid)
    frame = reports.campaign_report(
        dl, ev, lk, an, sh, status="sent", started_at=T0, campaign_id=cid, mode=mode
    ).to_dict()
    assert sql == frame


def test_campaign_summaries_from_sql_match_pandas(known):
    conn = db.session.connection()
    sql = stats_sql.campaign_summaries(db.session, known["org"])
    campaigns = pd.read_sql(
        select(Campaign.__table__).where(Campaign.organisation_id == known["org"]), conn
    )
    ev = pd.read_sql(
        select(TrackingEvent.__table__).where(TrackingEvent.organisation_id == known["org"]), conn
    )
    dl = pd.read_sql(
        select(Delivery.__table__).where(Delivery.organisation_id == known["org"]), conn
    )
    frame = reports.campaign_summaries(campaigns, dl, ev)
    pd.testing.assert_frame_equal(sql, frame, check_dtype=False)
    assert list(sql["opens_unique"]) == [1, 5]


def test_site_traffic_per_day_from_sql(known):
    traffic = stats_sql.site_traffic(
        db.session, known["org"], T0.date(), T0.date() + dt.timedelta(days=3)
    )
    assert traffic.to_dict("list") == {
        "day": [T0.date() + dt.timedelta(days=i) for i in range(4)],
        "page_views": [2, 2, 0, 1],
        "visits": [1, 2, 0, 1],
        "visitors": [1, 2, 0, 1],
        "campaign_visits": [1, 1, 0, 1],
    }


def test_list_growth_and_sources_from_sql(app, org):
    from tests.factories import make_list

    lst = make_list(org)
    contacts = _contacts(org.id, 4)
    base = {
        "organisation_id": org.id,
        "list_id": lst.id,
        "legal_basis": "consent",
        "confirmed_at": None,
        "withdrawn_at": None,
    }
    _insert(
        Subscription,
        [
            {
                **base,
                "contact_id": contacts[0],
                "status": "active",
                "source": "web_form",
                "created_at": dt.datetime(2025, 1, 5, tzinfo=dt.UTC),
            },
            {
                **base,
                "contact_id": contacts[1],
                "status": "active",
                "source": "web_form",
                "created_at": dt.datetime(2025, 1, 30, tzinfo=dt.UTC),
                "confirmed_at": dt.datetime(2025, 2, 2, tzinfo=dt.UTC),
            },
            {
                **base,
                "contact_id": contacts[2],
                "status": "withdrawn",
                "source": "purchased",
                "created_at": dt.datetime(2025, 1, 6, tzinfo=dt.UTC),
                "withdrawn_at": dt.datetime(2025, 4, 1, tzinfo=dt.UTC),
            },
            {
                **base,
                "contact_id": contacts[3],
                "status": "pending",
                "source": "unknown",
                "created_at": dt.datetime(2025, 2, 6, tzinfo=dt.UTC),
            },
        ],
    )
    db.session.flush()
    growth = stats_sql.list_growth(db.session, org.id)
    assert growth.to_dict("list") == {
        "month": ["2025-01", "2025-02", "2025-03", "2025-04"],
        "gains": [2, 1, 0, 0],
        "losses": [0, 0, 0, 1],
        "net": [2, 1, 0, -1],
        "total": [2, 3, 3, 2],
    }
    sources = stats_sql.consent_sources(db.session, org.id)
    assert sources == [{"source": "web_form", "count": 2, "share": 1.0, "risky": False}]
