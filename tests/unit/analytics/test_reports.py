"""Reports on hand-built frames whose answers are counted by hand."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from analytics import reports

T0 = dt.datetime(2025, 3, 4, 8, 0, tzinfo=dt.UTC)


def ev(kind, key="", minutes=60.0, machine=False, **kw):
    row = {
        "kind": kind,
        "recipient_key": key,
        "delivery_id": None,
        "is_machine": machine,
        "created_at": T0 + dt.timedelta(minutes=minutes),
        "link_id": None,
        "device_class": "unknown",
        "client_family": "Other",
    }
    row.update(kw)
    return row


def frame(*rows):
    out = pd.DataFrame(list(rows))
    out.insert(0, "id", range(1, len(out) + 1))
    return out


@pytest.fixture
def events():
    return frame(
        ev("open", "k1", 0.05, True),  # Apple prefetch
        ev("open", "k1", 65, device_class="phone", client_family="Apple Mail"),
        ev("click", "k1", 70, link_id=10, device_class="desktop", client_family="Chrome"),
        ev("open", "k2", 0.05, True),  # only ever a machine
        ev("click", "k3", 120, link_id=11, device_class="desktop", client_family="Firefox"),
        ev("click", "k3", 121, link_id=11, device_class="desktop", client_family="Firefox"),
        ev("open", "k4", 30 * 60, device_class="tablet", client_family="Gmail"),
        ev("unsubscribe", "k4", 31 * 60),
        ev("click", "k5", 0.1, True, link_id=12),  # a scanner
        ev("open", "", 180, device_class="desktop", client_family="Outlook"),  # no key
    )


@pytest.fixture
def deliveries():
    return pd.DataFrame({"status": ["sent"] * 4 + ["failed", "deferred", "queued", "sending"]})


@pytest.fixture
def links():
    return pd.DataFrame(
        {"id": [10, 11, 12], "url": ["https://ville.fr/a", "https://ville.fr/b", "https://x.fr"]}
    )


def test_event_counts_separate_people_from_machines(events):
    counts = reports.event_counts(events)
    assert counts == {
        "opens_unique": 4,  # k1, k3 by clicking, k4, the keyless open
        "opens_any": 6,
        "opens_pixel_unique": 3,
        "clicks_unique": 2,
        "clicks_any": 3,
        "clicks_total": 3,
        "unsubscribes": 1,
        "bounces": 0,
        "complaints": 0,
        "web_views": 0,
    }


def test_contract_stats_have_exactly_the_contract_fields(events, deliveries, links):
    answers = pd.DataFrame(
        {"kind": ["rsvp", "rsvp", "rsvp", "poll", "poll"], "value": ["yes", "yes", "no", "B", "Z"]}
    )
    hits = pd.DataFrame({"campaign_id": [1, 1, 1, 2], "is_new_visit": [True, False, True, True]})
    report = reports.campaign_report(
        deliveries,
        events,
        links,
        answers,
        hits,
        status="sent",
        started_at=T0,
        campaign_id=1,
        poll_options=["A", "B"],
    )
    assert reports.contract_stats(report.stats) == {
        "status": "sent",
        "recipients": 8,
        "sent": 4,
        "deferred": 1,
        "failed": 1,
        "opens_unique": 4,
        "opens_machine": 2,
        "clicks_unique": 2,
        "unsubscribes": 1,
        "rsvp": {"yes": 2, "no": 1, "maybe": 0},
        "poll": {"A": 0, "B": 1},
        "site_visits": 2,
        "links": [
            {"url": "https://ville.fr/b", "clicks_unique": 1},
            {"url": "https://ville.fr/a", "clicks_unique": 1},
            {"url": "https://x.fr", "clicks_unique": 0},
        ],
    }


def test_rates_are_over_delivered_and_opens(events, deliveries):
    stats = reports.campaign_report(deliveries, events).stats
    assert stats["delivered"] == 4
    assert stats["open_rate"] == pytest.approx(4 / 4)
    assert stats["click_rate"] == pytest.approx(2 / 4)
    assert stats["click_to_open"] == pytest.approx(2 / 4)
    assert stats["unsubscribe_rate"] == pytest.approx(1 / 4)
    assert stats["bounce_rate"] == pytest.approx(1 / 5)
    assert stats["queued"] == 2


def test_rates_are_none_when_nothing_was_delivered():
    stats = reports.campaign_report(pd.DataFrame({"status": ["queued"]}), None).stats
    assert stats["open_rate"] is None and stats["click_to_open"] is None
    assert stats["opens_unique"] == 0


def test_link_table_lists_every_link_most_clicked_first(events, links):
    table = reports.link_table(events, links)
    assert table[["link_id", "clicks_unique", "clicks_total"]].values.tolist() == [
        [11, 1, 2],
        [10, 1, 1],
        [12, 0, 0],
    ]


def test_per_contact_mode_counts_deliveries():
    events = frame(
        ev("open", "a", delivery_id=1),
        ev("open", "b", delivery_id=1),
        ev("open", "c", delivery_id=2),
    )
    assert reports.event_counts(events, mode="per_contact")["opens_unique"] == 2
    assert reports.event_counts(events, mode="aggregate")["opens_unique"] == 3


def test_default_mode_falls_back_to_delivery_when_key_is_empty():
    events = frame(
        ev("open", "", delivery_id=1),
        ev("open", "", delivery_id=1),
        ev("open", "k", delivery_id=None),
        ev("open", "", delivery_id=None),
        ev("open", "", delivery_id=None),
    )
    # delivery 1 once, key k once, and each event without either on its own.
    assert reports.event_counts(events)["opens_unique"] == 4


def test_unknown_mode_is_refused(events):
    with pytest.raises(ValueError):
        reports.event_counts(events, mode="everyone")


def test_device_split_uses_each_person_first_human_event(events):
    devices, clients = reports.device_split(events)
    assert dict(zip(devices["device_class"], devices["count"], strict=True)) == {
        "phone": 1,
        "tablet": 1,
        "desktop": 2,
        "unknown": 0,
    }
    assert devices["share"].sum() == pytest.approx(1.0)
    assert clients.iloc[0].to_dict() == {"client_family": "Apple Mail", "count": 1, "share": 0.25}
    assert "Chrome" not in set(clients["client_family"])  # k1's later click is not first


def test_timeline_has_168_hours_of_human_opens_and_clicks(events):
    tl = reports.timeline(events, T0)
    assert len(tl) == 168
    assert list(tl["hour"][:3]) == [0, 1, 2]
    assert tl.loc[0, "at"] == pd.Timestamp(T0)
    assert (tl.loc[1, "opens"], tl.loc[1, "clicks"]) == (1, 1)
    assert (tl.loc[2, "opens"], tl.loc[2, "clicks"]) == (0, 2)
    assert tl.loc[3, "opens"] == 1
    assert tl.loc[30, "opens"] == 1
    assert tl.loc[0, "opens"] == 0  # the prefetch was a machine


def test_timeline_leaves_out_events_before_start_and_after_a_week():
    events = frame(ev("open", "a", -5), ev("open", "b", 168 * 60 + 1), ev("open", "c", 167 * 60))
    tl = reports.timeline(events, T0)
    assert int(tl["opens"].sum()) == 1 and tl.loc[167, "opens"] == 1


def test_timeline_accepts_naive_utc_times():
    events = frame(ev("open", "a", 90))
    events["created_at"] = events["created_at"].dt.tz_localize(None)
    assert reports.timeline(events, T0.replace(tzinfo=None)).loc[1, "opens"] == 1


def test_report_to_dict_is_json_ready(events, deliveries, links):
    report = reports.campaign_report(deliveries, events, links, started_at=T0)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["timeline"][1] == {
        "hour": 1,
        "at": "2025-03-04T09:00:00+00:00",
        "opens": 1,
        "clicks": 1,
    }
    assert data["link_table"][0]["url"] == "https://ville.fr/b"


def test_report_frames_are_ready_for_export(events, deliveries, links):
    frames = reports.campaign_report(deliveries, events, links, started_at=T0).frames()
    assert set(frames) == {"summary", "links", "devices", "clients", "timeline"}
    summary = dict(frames["summary"].values.tolist())
    assert summary["opens_unique"] == 4 and summary["rsvp_yes"] == 0
    assert frames["timeline"]["at"].dt.tz is None  # Excel cannot store time zones


def _campaigns():
    campaigns = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "subject": ["Janvier", "Février", "Mars", "Brouillon"],
            "started_at": [T0 - dt.timedelta(days=60), T0 - dt.timedelta(days=30), T0, None],
        }
    )
    deliveries = pd.DataFrame(
        {
            "campaign_id": [1] * 100 + [2] * 100 + [3] * 10,
            "status": ["sent"] * 100 + ["sent"] * 90 + ["failed"] * 10 + ["sent"] * 10,
        }
    )
    rows = []
    for cid, opens, clicks in ((1, 40, 10), (2, 45, 9), (3, 8, 5)):
        rows += [ev("open", f"{cid}-{i}", campaign_id=cid) for i in range(opens)]
        rows += [ev("click", f"{cid}-{i}", campaign_id=cid) for i in range(clicks)]
    rows.append(ev("open", "1-x", campaign_id=1, machine=True))
    rows.append(ev("unsubscribe", "2-0", campaign_id=2))
    return campaigns, deliveries, frame(*rows)


def test_campaign_summaries_give_counts_and_rates_per_campaign():
    summaries = reports.campaign_summaries(*_campaigns())
    assert list(summaries["campaign_id"]) == [1, 2, 3, 4]  # by start, unstarted last
    assert list(summaries["delivered"]) == [100, 90, 10, 0]
    assert list(summaries["opens_unique"]) == [40, 45, 8, 0]
    assert summaries.loc[1, "open_rate"] == pytest.approx(0.5)
    assert summaries.loc[1, "unsubscribe_rate"] == pytest.approx(1 / 90)
    assert summaries.loc[2, "click_to_open"] == pytest.approx(5 / 8)
    assert np.isnan(summaries.loc[3, "open_rate"])


def test_comparison_uses_the_median_of_earlier_campaigns_only():
    summaries = reports.campaign_summaries(*_campaigns())
    stats = {"open_rate": 0.8, "click_rate": 0.5, "click_to_open": 0.625, "unsubscribe_rate": 0}
    cmp = reports.compare_with_previous(stats, summaries, before=T0, exclude_campaign_id=3)
    assert cmp["open_rate"]["median"] == pytest.approx((0.4 + 0.5) / 2)
    assert cmp["open_rate"]["delta"] == pytest.approx(0.8 - 0.45)
    assert cmp["open_rate"]["campaigns"] == 2


def test_comparison_without_history_has_no_median():
    empty = pd.DataFrame(columns=["campaign_id", "started_at", *reports.RATE_FIELDS])
    cmp = reports.compare_with_previous({"open_rate": 0.3}, empty)
    assert cmp["open_rate"] == {"value": 0.3, "median": None, "delta": None, "campaigns": 0}


def test_best_subjects_need_enough_recipients():
    summaries = reports.campaign_summaries(*_campaigns())
    best = reports.best_subjects(summaries, by="click_to_open", min_recipients=50)
    assert [b["subject"] for b in best] == ["Janvier", "Février"]
    assert reports.best_subjects(summaries, by="open_rate", min_recipients=5)[0]["subject"] == (
        "Mars"
    )


def test_best_subjects_refuse_an_unknown_rate():
    with pytest.raises(ValueError):
        reports.best_subjects(reports.campaign_summaries(*_campaigns()), by="subject")


def test_rates_over_time_skip_unstarted_campaigns():
    rows = reports.rates_over_time(reports.campaign_summaries(*_campaigns()))
    assert [r["campaign_id"] for r in rows] == [1, 2, 3]
    assert rows[0]["open_rate"] == pytest.approx(0.4)


def _utc(*args):
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_list_growth_counts_joins_and_withdrawals_per_month():
    subs = pd.DataFrame(
        {
            "created_at": [_utc(2025, 1, 5), _utc(2025, 1, 30), _utc(2025, 1, 6), _utc(2025, 2, 6)],
            "confirmed_at": [None, _utc(2025, 2, 2), None, None],
            "withdrawn_at": [None, None, _utc(2025, 4, 1), None],
            "status": ["active", "active", "withdrawn", "pending"],
            "source": ["web_form", "web_form", "purchased", "unknown"],
        }
    )
    growth = reports.list_growth(subs)
    assert growth.to_dict("list") == {
        "month": ["2025-01", "2025-02", "2025-03", "2025-04"],
        "gains": [2, 1, 0, 0],
        "losses": [0, 0, 0, 1],
        "net": [2, 1, 0, -1],
        "total": [2, 3, 3, 2],
    }


def test_list_growth_of_nothing_is_empty():
    assert reports.list_growth(pd.DataFrame()).empty


def test_consent_sources_share_active_subscriptions_and_flag_risky_ones():
    subs = pd.DataFrame(
        {
            "status": ["active"] * 4 + ["withdrawn"],
            "source": ["web_form", "web_form", "web_form", "purchased", "purchased"],
        }
    )
    assert reports.consent_sources(subs) == [
        {"source": "web_form", "count": 3, "share": 0.75, "risky": False},
        {"source": "purchased", "count": 1, "share": 0.25, "risky": True},
    ]


def test_site_traffic_per_day_fills_quiet_days():
    hits = pd.DataFrame(
        {
            "created_at": [_utc(2025, 3, 1, 9), _utc(2025, 3, 1, 10), _utc(2025, 3, 3, 23)],
            "visitor_hash": ["a", "a", "b"],
            "is_new_visit": [True, False, True],
            "campaign_id": [7, 7, None],
        }
    )
    traffic = reports.site_traffic_daily(hits, end=dt.date(2025, 3, 4))
    assert traffic.to_dict("list") == {
        "day": [dt.date(2025, 3, d) for d in (1, 2, 3, 4)],
        "page_views": [2, 0, 1, 0],
        "visits": [1, 0, 1, 0],
        "visitors": [1, 0, 1, 0],
        "campaign_visits": [1, 0, 0, 0],
    }


def test_site_traffic_of_nothing_is_empty():
    assert reports.site_traffic_daily(pd.DataFrame()).empty


def test_counting_is_vectorised():
    # A sanity bound on vectorisation (the real measurement is bench/bench_reports.py):
    # 200k events must not take seconds.
    import time

    rng = np.random.default_rng(1)
    n = 200_000
    events = pd.DataFrame(
        {
            "kind": rng.choice(["open", "click", "open", "unsubscribe"], n),
            "recipient_key": pd.Series(rng.integers(0, 50_000, n)).map("k{}".format),
            "delivery_id": np.nan,
            "is_machine": rng.random(n) < 0.2,
            "created_at": T0 + pd.to_timedelta(rng.integers(0, 7 * 86400, n), unit="s"),
            "link_id": rng.integers(1, 20, n),
            "device_class": rng.choice(["phone", "desktop"], n),
            "client_family": rng.choice(["Gmail", "Outlook"], n),
        }
    )
    start = time.perf_counter()
    report = reports.campaign_report(pd.DataFrame({"status": ["sent"]}), events, started_at=T0)
    assert time.perf_counter() - start < 5
    assert report.stats["opens_unique"] <= 50_000
