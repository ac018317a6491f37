"""Baromètre pages at sector scale, through HTTP, on PostgreSQL: export and analyst page.

Starts a throw-away PostgreSQL (``tests.services.start_postgres``), stores N bodies
(default 1,000) with submitted responses (1–3 respondents, agents and elected officials,
indicators and observed indicators), then times through the Flask test client, signed
in as an analyst:

1. the export as the analyst downloads it (``POST /benchmark/editions/<id>/export``) and
   as a script fetches it (``GET /api/v1/benchmark/export``), in CSV, JSON and XLSX;
   then once more after one more body answered (the release-differencing path);
2. the analyst's aggregate page (``GET /benchmark/editions/<id>``): cold (per-process
   cache dropped before each request: what the first reader after a change waits) and
   warm (what every later reader waits), p50 and p90;
3. a body's benchmark page (``GET /benchmark/``) for a director.

Targets (issue 7): export under 2 s, analyst page p50 under 500 ms.

Usage: ``python bench/bench_benchmark_pages.py [--bodies 1000] [--runs 11]
[--report bench/reports/benchmark_pages.md]``. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("CRIEUR_BROKER_URL", "")

from analytics.benchmark import service, services  # noqa: E402
from analytics.benchmark.baselines import ensure_shipped_baseline  # noqa: E402
from analytics.benchmark.indicators import response_indicators  # noqa: E402
from analytics.benchmark.models import Respondent, SurveyResponse  # noqa: E402
from analytics.benchmark.survey import clean_answers, load_survey_definition  # noqa: E402
from analytics.benchmark.synthetic import synthetic_records  # noqa: E402
from contacts.db import db  # noqa: E402
from contacts.models import Organisation  # noqa: E402
from tests.services import start_postgres  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.accounts import create_user  # noqa: E402
from webapp.auth import create_token, use_fast_hashing_for_tests  # noqa: E402

TARGET_EXPORT_S = 2.0
TARGET_PAGE_P50_S = 0.5
PASSWORD = "bench password, not a secret"


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def seed(count: int, now: dt.datetime) -> tuple[int, int, int]:
    """``count`` bodies with submitted responses; one more body (a director's) in draft.

    Returns the edition id, the late body's id and its director's id.
    """
    ensure_shipped_baseline()
    defn = load_survey_definition()
    edition = service.open_edition(
        "bench-2026", defn["title"], now - dt.timedelta(days=30), now + dt.timedelta(days=30)
    )
    records = list(synthetic_records(defn, count + 1, seed=2027))
    late_org = None
    for i, rec in enumerate(records):
        org = Organisation(
            name=rec["name"],
            slug=f"bench-{i}",
            kind=rec["kind"],
            region=rec["region"],
            population=rec["population"],
        )
        db.session.add(org)
        db.session.flush()
        if i == count:
            late_org = org
            break
        people = [
            {"role": r["role"], "answers": clean_answers(defn, r["answers"])}
            for r in rec["respondents"]
        ]
        response = SurveyResponse(
            organisation_id=org.id,
            edition_id=edition.id,
            status="submitted",
            observed=rec["observed"],
            indicators=response_indicators(defn, people),
            submitted_at=now,
        )
        db.session.add(response)
        db.session.flush()
        db.session.add_all(
            Respondent(
                organisation_id=org.id,
                response_id=response.id,
                role=person["role"],
                answers=person["answers"],
            )
            for person in people
        )
        if i % 200 == 0:
            db.session.commit()
    for person in records[count]["respondents"]:
        respondent = service.add_respondent(late_org.id, edition.id, person["role"])
        service.save_answers(late_org.id, respondent.id, person["answers"])
    director = create_user("direction@bench.example.org", "director", late_org.id, PASSWORD)
    db.session.commit()
    return edition.id, late_org.id, director.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--report", default=str(ROOT / "bench" / "reports" / "benchmark_pages.md"))
    args = parser.parse_args()

    server = start_postgres()
    if server is None:
        print("PostgreSQL binaries not found: nothing measured", file=sys.stderr)
        return 1
    use_fast_hashing_for_tests()
    tmp = tempfile.mkdtemp(prefix="crieur-bench-pages-")
    app = create_app(
        {
            "CRIEUR_DATABASE_URL": server.url,
            "CRIEUR_SECRET_KEY": "bench-secret-key",
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        },
        instance_path=tmp,
    )
    now = dt.datetime.now(dt.UTC)
    try:
        with app.app_context():
            db.create_all()
            start = time.perf_counter()
            edition_id, late_org, _ = seed(args.bodies, now)
            seed_s = time.perf_counter() - start
            analyst_user = create_user("analyste@bench.example.org", "analyst", None, PASSWORD)
            token = create_token(analyst_user)
            db.session.commit()
            db.session.remove()

        analyst = app.test_client()
        analyst.post("/auth/login", data={"email": "analyste@bench.example.org",
                                          "password": PASSWORD})  # fmt: skip
        director = app.test_client()
        director.post("/auth/login", data={"email": "direction@bench.example.org",
                                           "password": PASSWORD})  # fmt: skip
        bearer = {"Authorization": f"Bearer {token}"}

        def check(response, what: str) -> None:
            if response.status_code != 200:
                raise RuntimeError(f"{what}: HTTP {response.status_code}")

        exports: dict[str, list[float]] = {}
        sizes: dict[str, int] = {}
        for fmt in ("csv", "json", "xlsx"):

            def ui(fmt: str = fmt) -> None:
                r = analyst.post(f"/benchmark/editions/{edition_id}/export", data={"format": fmt})
                check(r, f"UI export {fmt}")
                sizes[fmt] = len(r.data)

            def via_api(fmt: str = fmt) -> None:
                r = analyst.get(f"/api/v1/benchmark/export?format={fmt}", headers=bearer)
                check(r, f"API export {fmt}")

            exports[f"page: POST export {fmt}"] = timed(ui, max(3, args.runs // 3))
            exports[f"API: GET export {fmt}"] = timed(via_api, max(3, args.runs // 3))

        def cold_page() -> None:
            services.forget_cached()
            check(analyst.get(f"/benchmark/editions/{edition_id}"), "analyst page")

        def warm_page() -> None:
            check(analyst.get(f"/benchmark/editions/{edition_id}"), "analyst page")

        cold = timed(cold_page, args.runs)
        warm = timed(warm_page, args.runs)
        other_view = timed(
            lambda: check(
                analyst.get(f"/benchmark/editions/{edition_id}?vue=region&theme=measurement"),
                "analyst page, region",
            ),
            args.runs,
        )
        body = timed(lambda: check(director.get("/benchmark/"), "body page"), args.runs)

        # One more body answers: the next export is checked against the recorded releases.
        director.post("/benchmark/questionnaire/envoyer")
        with app.app_context():
            status = service.get_response(late_org, edition_id).status
        if status != "submitted":
            raise RuntimeError("the late body's response was not submitted")
        start = time.perf_counter()
        check(
            analyst.post(f"/benchmark/editions/{edition_id}/export", data={"format": "xlsx"}),
            "export after one more body",
        )
        diff_s = time.perf_counter() - start
        after_cold = timed(cold_page, 3)
    finally:
        server.stop()

    worst_export = max(max(v) for v in exports.values())
    ok_export = worst_export < TARGET_EXPORT_S and diff_s < TARGET_EXPORT_S
    ok_page = statistics.median(cold) < TARGET_PAGE_P50_S
    load = os.getloadavg()
    lines = [
        "# Baromètre pages over HTTP on PostgreSQL: export and analyst page",
        "",
        f"`python bench/bench_benchmark_pages.py --bodies {args.bodies} --runs {args.runs}` "
        f"on {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, PostgreSQL 15 (throw-away cluster, fsync off), Flask "
        f"test client signed in as an analyst; load average at the end {load[0]:.1f} / "
        f"{load[1]:.1f} / {load[2]:.1f} (shared machine: figures are upper bounds).",
        "",
        f"{args.bodies} bodies with submitted responses and observed indicators, plus one "
        f"body answering during the run. Seeding took {seed_s:.1f} s.",
        "",
        "| request | p50 | p90 | worst | target | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, values in exports.items():
        size = sizes[name.rsplit(" ", 1)[1]] // 1000
        lines.append(
            f"| {name} ({size} kB) | {ms(statistics.median(values))} | {ms(p(values, 0.9))} | "
            f"{ms(max(values))} | < 2 s | {'ok' if max(values) < TARGET_EXPORT_S else 'MISSED'} |"
        )
    lines += [
        f"| page: POST export xlsx after one more body answered (differencing check) | "
        f"{ms(diff_s)} | — | {ms(diff_s)} | < 2 s | "
        f"{'ok' if diff_s < TARGET_EXPORT_S else 'MISSED'} |",
        f"| analyst page `GET /benchmark/editions/<id>`, cold (cache dropped each time) | "
        f"{ms(statistics.median(cold))} | {ms(p(cold, 0.9))} | {ms(max(cold))} | "
        f"p50 < 500 ms | {'ok' if ok_page else 'MISSED'} |",
        f"| same page, warm (data unchanged since the last reader) | "
        f"{ms(statistics.median(warm))} | {ms(p(warm, 0.9))} | {ms(max(warm))} | "
        f"p50 < 500 ms | {'ok' if statistics.median(warm) < TARGET_PAGE_P50_S else 'MISSED'} |",
        f"| same page by region, theme « Mesure » (warm) | "
        f"{ms(statistics.median(other_view))} | {ms(p(other_view, 0.9))} | "
        f"{ms(max(other_view))} | — | — |",
        f"| analyst page cold after one more body answered | "
        f"{ms(statistics.median(after_cold))} | — | {ms(max(after_cold))} | — | — |",
        f"| a director's page `GET /benchmark/` | {ms(statistics.median(body))} | "
        f"{ms(p(body, 0.9))} | {ms(max(body))} | — | — |",
        "",
        "The verdict for the analyst page is taken on the cold figure: the per-process cache "
        "(`analytics.benchmark.services.analyst_overview`, keyed by a fingerprint of every "
        "row the tables come from) only helps the readers after the first. Exports are never "
        "cached: each one is built, protected against the earlier releases, recorded, then "
        "sent.",
        "",
    ]
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0 if ok_export and ok_page else 1


if __name__ == "__main__":
    sys.exit(main())
