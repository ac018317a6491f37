"""Time a campaign report over a million tracking events, in pandas and in SQL.

    .venv/bin/python bench/bench_reports.py [--events 1000000] [--url sqlite:///path.db]

Builds one campaign with ``--recipients`` deliveries, 20 links and ``--events`` events
(opens, clicks, a few unsubscribes, 25% machines), then times:
``reports.campaign_report`` on in-memory frames, ``stats_sql.campaign_stats`` (the API
figures) and ``stats_sql.campaign_report`` (the whole page) on the database. The target
(RELIABILITY.md) is an analytics page under 2 s with a million events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import analytics.models  # noqa: E402,F401  (tables)
import campaigns.models  # noqa: E402,F401
import contacts.models  # noqa: E402,F401
import webapp.models  # noqa: E402,F401
from analytics import reports, stats_sql  # noqa: E402
from contacts.db import db  # noqa: E402

T0 = dt.datetime(2025, 3, 4, 8, tzinfo=dt.UTC)


def build_frames(n_events: int, n_recipients: int, seed: int = 1) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    who = rng.integers(0, n_recipients, n_events)
    kinds = rng.choice(
        ["open", "open", "open", "click", "click", "unsubscribe"],
        n_events,
        p=[0.3, 0.2, 0.1, 0.2, 0.19, 0.01],
    )
    events = pd.DataFrame(
        {
            "id": np.arange(1, n_events + 1),
            "organisation_id": 1,
            "campaign_id": 1,
            "kind": kinds,
            "recipient_key": pd.Series(who).map("{:032x}".format),
            "delivery_id": None,
            "contact_id": None,
            "link_id": np.where(kinds == "click", rng.integers(1, 21, n_events), None),
            "is_machine": rng.random(n_events) < 0.25,
            "device_class": rng.choice(["phone", "tablet", "desktop", "unknown"], n_events),
            "client_family": rng.choice(["Gmail", "Outlook", "Apple Mail", "Other"], n_events),
            "value": "",
            "created_at": T0 + pd.to_timedelta(rng.integers(0, 10 * 86400, n_events), unit="s"),
        }
    )
    deliveries = pd.DataFrame(
        {
            "id": np.arange(1, n_recipients + 1),
            "organisation_id": 1,
            "campaign_id": 1,
            "contact_id": np.arange(1, n_recipients + 1),
            "status": rng.choice(
                ["sent", "failed", "deferred"], n_recipients, p=[0.96, 0.03, 0.01]
            ),
        }
    )
    links = pd.DataFrame(
        {
            "id": np.arange(1, 21),
            "organisation_id": 1,
            "campaign_id": 1,
            "url": [f"https://ville.fr/page/{i}" for i in range(1, 21)],
        }
    )
    return {"events": events, "deliveries": deliveries, "links": links}


def load(url: str, frames: dict[str, pd.DataFrame], n_recipients: int) -> float:
    engine = create_engine(url)
    db.metadata.drop_all(engine)
    db.metadata.create_all(engine)
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            insert(contacts.models.Organisation.__table__),
            [{"id": 1, "name": "Ville", "slug": "ville", "site_key": "k"}],
        )
        conn.execute(
            insert(campaigns.models.Campaign.__table__),
            [{"id": 1, "organisation_id": 1, "uuid": "u", "status": "sent", "started_at": T0}],
        )
        conn.execute(
            insert(contacts.models.Contact.__table__),
            [
                {"id": i, "organisation_id": 1, "email": f"c{i}@x.fr"}
                for i in range(1, n_recipients + 1)
            ],
        )
        for name, table in (
            ("deliveries", campaigns.models.Delivery.__table__),
            ("links", campaigns.models.CampaignLink.__table__),
            ("events", analytics.models.TrackingEvent.__table__),
        ):
            rows = frames[name].to_dict("records")
            for row in rows:
                if "created_at" in row:
                    row["created_at"] = row["created_at"].to_pydatetime()
            for i in range(0, len(rows), 50_000):
                conn.execute(insert(table), rows[i : i + 50_000])
    return time.perf_counter() - start


def timed(label: str, fn, repeat: int = 3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    print(f"{label:<42} {best:7.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--url", default="")
    args = parser.parse_args()

    frames = build_frames(args.events, args.recipients)
    print(f"{args.events:,} events, {args.recipients:,} recipients")
    report = timed(
        "pandas reports.campaign_report",
        lambda: reports.campaign_report(
            frames["deliveries"], frames["events"], frames["links"], started_at=T0
        ),
    )
    tmp = None
    url = args.url
    if not url:
        tmp = tempfile.mkdtemp()
        url = f"sqlite:///{os.path.join(tmp, 'bench.db')}"
    print(f"loading into {url.split('@')[-1]} … {load(url, frames, args.recipients):.1f} s")
    engine = create_engine(url)
    with engine.connect() as conn:
        stats = timed(
            "SQL stats_sql.campaign_stats (API)", lambda: stats_sql.campaign_stats(conn, 1, 1)
        )
        sql_report = timed(
            "SQL stats_sql.campaign_report (page)",
            lambda: stats_sql.campaign_report(conn, 1, 1),
        )
    same = reports.contract_stats(stats) == {
        **reports.contract_stats(report.stats),
        "status": "sent",
    }
    print(
        "SQL and pandas agree:", same and sql_report.stats["opens_unique"] == stats["opens_unique"]
    )
    engine.dispose()
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
