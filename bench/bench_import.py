"""End-to-end contact import into PostgreSQL against a bare email-validator loop.

    .venv/bin/python bench/bench_import.py [--rows 100000] [--repeat 2]

The issue's measure: a generated Windows-1252, semicolon-separated CSV (5 % invalid
addresses, 3 % duplicates), imported end to end into a throw-away PostgreSQL
(``tests.services.start_postgres``): the upload is stored and hashed, the batch recorded,
then the import job runs (``contacts.imports.process_import``: reading, validation,
suppression lookups, contacts, subscriptions and ledger rows, progress commits). In the
same run, in fresh subprocesses, a bare loop calls ``email_validator.validate_email`` on
the same addresses, already in memory.

Reported: rows/s, peak RSS of the importing process (``VmHWM``, interpreter included),
and the ratio to the bare loop in wall time and in CPU time (the importing process, and
the same plus the PostgreSQL server's CPU, read from ``/proc``). Targets: at most 3x the
loop, under 300 MB. Writes bench/reports/import.md (or ``--report PATH``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "reports" / "import.md"


def _parse_bench():
    """The file generator and the bare loop of bench_import_parse.py, shared on purpose."""
    spec = importlib.util.spec_from_file_location(
        "bench_import_parse", ROOT / "bench" / "bench_import_parse.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _ticks(pid: int, children_done: bool) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return utime + stime + (cutime + cstime if children_done else 0)


def pg_cpu_seconds(datadir: str) -> float:
    """CPU used so far by one PostgreSQL cluster: the postmaster, its live children, and
    (through the postmaster's ``cutime``) the children it has reaped."""
    try:
        pid = int(Path(datadir, "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = _ticks(pid, True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                total += _ticks(int(entry.name), False)
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def child_import(path: str, database_url: str, datadir: str) -> None:
    """One import end to end in this fresh process; prints the measurement as JSON."""
    sys.path.insert(0, str(ROOT))
    import logging

    logging.disable(logging.INFO)
    from contacts import imports, uploads
    from contacts.db import db
    from contacts.importfile import Limits
    from webapp import create_app

    secret = "bench-secret-key"
    with tempfile.TemporaryDirectory() as instance:
        app = create_app(
            {
                "CRIEUR_DATABASE_URL": database_url,
                "CRIEUR_SECRET_KEY": secret,
                "TESTING": True,
            },
            instance_path=instance,
        )
        with app.app_context():
            from sqlalchemy import text

            db.drop_all()
            db.create_all()
            from tests.factories import make_list, make_org

            org = make_org()
            lst = make_list(org)
            db.session.commit()
            org_id, list_id = org.id, lst.id
            pg0 = pg_cpu_seconds(datadir)
            t0, c0 = time.perf_counter(), time.process_time()
            with open(path, "rb") as f:
                stored = uploads.store_upload(
                    Path(instance) / "imports", org_id, f, "contacts.csv", 50 * 1024 * 1024
                )
            batch = imports.create_import(
                org_id,
                list_id,
                source="internal_file",
                legal_basis="consent",
                attestation="bench",
                stored=stored,
            )
            db.session.commit()
            done = imports.process_import(org_id, batch.id, secret=secret, limits=Limits())
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            pg = pg_cpu_seconds(datadir) - pg0
            counts = {
                table: db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("contacts", "subscriptions", "consent_events")
            }
            out = {
                "seconds": elapsed,
                "cpu": cpu,
                "pg_cpu": pg,
                "status": done.status,
                "total_rows": done.total_rows,
                "imported": done.imported,
                "duplicates": done.duplicates,
                "report_lines": len(done.rejected),
                "counts": counts,
                "max_rss_mb": peak_rss_mb(),
            }
            db.session.remove()
            db.engine.dispose()
    print(json.dumps(out))


def run_child(args: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--child-import", nargs=3, metavar=("PATH", "URL", "DATADIR"))
    args = parser.parse_args()
    if args.child_import:
        child_import(*args.child_import)
        return

    sys.path.insert(0, str(ROOT))
    from tests.services import start_postgres

    parse_bench = _parse_bench()
    server = start_postgres()
    if server is None:
        raise SystemExit("PostgreSQL binaries not found (CRIEUR_PG_BIN)")
    runs: dict[str, list[dict]] = {"import": [], "bare": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "contacts-cp1252.csv"
            parse_bench.generate(path, args.rows)
            size_mb = path.stat().st_size / 1e6
            for _ in range(args.repeat):
                runs["bare"].append(run_child_bare(parse_bench, path))
                runs["import"].append(
                    run_child(["--child-import", str(path), server.url, str(server.datadir)])
                )
    finally:
        server.stop()
    write_report(args, runs, size_mb)


def run_child_bare(parse_bench, path: Path) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_import_parse.py"),
            "--child",
            "bare",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_report(args, runs: dict[str, list[dict]], size_mb: float) -> None:
    best_wall = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
    best_cpu = {k: min(v, key=lambda r: r["cpu"]) for k, v in runs.items()}
    imp, bare = best_wall["import"], best_wall["bare"]
    imp_c, bare_c = best_cpu["import"], best_cpu["bare"]
    wall_ratio = imp["seconds"] / bare["seconds"]
    cpu_ratio = imp_c["cpu"] / bare_c["cpu"]
    total_ratio = (imp_c["cpu"] + imp_c["pg_cpu"]) / bare_c["cpu"]
    peak = max(r["max_rss_mb"] for r in runs["import"])
    rows_s = args.rows / imp["seconds"]
    # The measure is throughput (rows/s) against the loop, i.e. wall time; the CPU
    # ratios say where the work runs (the import also keeps PostgreSQL busy on a second
    # core, which the bare loop does not have to).
    ok = "met" if wall_ratio <= 3 and peak < 300 else "NOT met"
    lines = [
        "# Contact import: end to end into PostgreSQL",
        "",
        f"Generated by `bench/bench_import.py --rows {args.rows} --repeat {args.repeat}` on "
        f"{time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.machine()}, PostgreSQL 15 (throw-away cluster, fsync off), "
        "2 cores shared with other work (best of the runs, a fresh process each).",
        "",
        f"File: {args.rows:,} rows, Windows-1252, `;`, CRLF, {size_mb:.1f} MB; 5 % invalid "
        "addresses, 3 % duplicates differing only by case (the generator of "
        "`bench_import_parse.py`).",
        "",
        "| run | wall s | rows/s | CPU s (Python) | CPU s (PostgreSQL) | peak RSS (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| bare `email_validator.validate_email` loop | {bare['seconds']:.2f} | "
        f"{args.rows / bare['seconds']:,.0f} | {bare_c['cpu']:.2f} | | {bare['max_rss_mb']:.0f} |",
        f"| import end to end (store + hash + job) | {imp['seconds']:.2f} | {rows_s:,.0f} | "
        f"{imp_c['cpu']:.2f} | {imp_c['pg_cpu']:.2f} | {peak:.0f} |",
        "",
        f"**Ratio to the bare loop: {wall_ratio:.2f}x wall time, {cpu_ratio:.2f}x CPU "
        f"(importing process), {total_ratio:.2f}x CPU (importing process + PostgreSQL).** "
        f"Target ≤ 3x (throughput, i.e. wall time) and < 300 MB: {ok}.",
        "",
        f"Result: status `{imp['status']}`, {imp['total_rows']:,} rows, {imp['imported']:,} "
        f"imported, {imp['duplicates']:,} duplicates, {imp['report_lines']:,} report lines; "
        f"rows written: {json.dumps(imp['counts'], sort_keys=True)}.",
        "",
        "All runs (wall s / CPU s / PostgreSQL CPU s): "
        + "; ".join(
            f"{k}: "
            + ", ".join(f"{r['seconds']:.2f}/{r['cpu']:.2f}/{r.get('pg_cpu', 0):.2f}" for r in v)
            for k, v in runs.items()
        ),
        "",
        "How: `contacts.import_reader.ImportReader` reads and validates the rows; chunks of "
        "5,000 are sorted against the database (one unprepared query each for existing "
        "contacts and, only when the body has any suppression at all, for suppressed "
        "hashes; the addresses go as one newline-joined text through `string_to_array`, "
        "not as a Python-dumped array); the reading thread formats the chunk's COPY text "
        "(psycopg's C formatter) and hands it to a writer thread with its own connection, "
        "which sends it in one write into a temporary table and runs ONE statement "
        "(data-modifying CTEs) inserting the contacts, their subscriptions and their "
        'ledger rows (`{"row": n}` built by PostgreSQL) and updating the progress '
        "counter, with `set_config('synchronous_commit', 'off', true)` for its "
        "transaction (the bench cluster already runs with it off, so it gains nothing "
        "here; it matters on a real server), then commits, while the next chunk is read.",
        "",
        "History (same bench, same machine): first version 11.29 s wall, 4.48x; one COPY "
        "and one statement per chunk, COPY text built on the reading thread, cheaper "
        "lookups: 3.13x-3.43x, with PostgreSQL's CPU the larger half, most of it "
        "foreign-key checks (9 per address with an uploader: contacts' body; "
        "subscriptions' body, list, contact; the ledger's body, contact, list, batch, "
        "user), each a row-locking lookup per inserted row. The schema now keeps 4: the "
        "contact's body, the subscription's list and contact, the ledger's contact. "
        "Subscriptions and ledger rows keep their body id without a key (their contact's "
        "key ties them to the body), and the ledger records list, user, batch and token "
        "as the ids they were (a key's ON DELETE SET NULL could rewrite the legal record). "
        "Indexes no query needed went too (body alone, status, (list, status, contact)). "
        "That brought PostgreSQL's CPU from about 5.9-6.2 s to 3.1-3.3 s "
        "and the ratio from 3.43x to 2.0x-2.7x on a quiet machine. (Composite (body, id) "
        "keys were tried first: PostgreSQL's cached generic plan for the key check chose "
        "another body-led index on the freshly created table and scanned the body's "
        "contacts for each row: 47 s.)",
        "",
        "Where the time goes now: the reading thread (decoding, validating: the bare "
        "loop's work, 1.3x it alone, bench/reports/import_parse.md) and PostgreSQL "
        "(inserts, index entries, 4 key checks per address) run side by side on the two "
        "cores; neither waits long for the other. On a machine shared with other work "
        "the wall-time ratio moves by ±30 % from run to run; the CPU columns are steadier.",
        "",
    ]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
