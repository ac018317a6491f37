"""Tracking and one-click unsubscribe load during a send (RELIABILITY.md, "Load to hold").

Targets: "200 req/s to pixel and click for 10 min during a send → no 5xx; p99 < 100 ms;
send rate drops < 20 %" and "1,000 one-click unsubscribes/min → all 2xx, applied within
seconds".

Topology, all on loopback and started for the run: a throw-away PostgreSQL, Redis,
Postfix's ``smtp-sink`` in verbose mode (its log names every RCPT, so what reached the
relay is counted independently of the database), the app under gunicorn (sync workers,
as the README deploys it) and two Dramatiq worker processes
(``python -m dramatiq webapp.worker_entry -p 2 -t 4``). The body has one list of N
contacts; each campaign is the 12-block newsletter of ``bench_preview.py`` to that list.

1. **Phase A** (baseline): one campaign, no HTTP load: messages/s from "send" (the
   freeze is inside the clock) to ``sent``.
2. **Phase B**: an open-loop load generator (a separate process, asyncio, a fixed
   schedule: latency is measured from the time each request was *due*, so a slow server
   cannot slow the generator down and hide its own queueing) sends ``--rate`` req/s to
   the open pixel and the click redirect (half each) with valid signed tokens of the
   current campaign's recipients, plus ``--unsubscribes`` RFC 8058 one-click POSTs a
   minute for real recipients of that campaign, for ``--minutes``. Campaigns of the same
   list are sent one after another while the load runs; the rate of each that ran
   entirely under load is compared with phase A.
3. **Phase A2**: one more campaign after the load, unloaded, so drift of a shared machine
   shows (the ratio uses the mean of A and A2).

Each unsubscribe is checked from the database right after its POST is answered
(subscription withdrawn, suppression row present) and the delivery row of that
recipient is read at that moment: a row still ``queued`` then must end ``skipped`` and
its address must not reach the relay for that campaign. At the end the relay's RCPT
count per address is compared with the database's ``sent`` rows per contact.

Usage::

    .venv/bin/python bench/bench_load.py                     # make bench: 2 min of load
    .venv/bin/python bench/bench_load.py --minutes 10 --recipients 60000   # full target

Reported in ``bench/reports/load.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
os.environ.setdefault("CRIEUR_BROKER_URL", "")  # this process seeds and checks; workers use Redis

import psutil  # noqa: E402

SECRET = "bench-secret-key-" + "x" * 32
PUBLIC_URL = "https://crieur.bench.example"
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SMTP_SINK = "/usr/sbin/smtp-sink"
ROUTES = ("pixel", "click", "unsubscribe")
ROUTE_ROWS = tuple(f"| {route} " for route in ROUTES)


# ---------------------------------------------------------------------------- processes


def code_version() -> str:
    """The commit measured: git's, or ``CRIEUR_BENCH_COMMIT`` for an exported snapshot."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("CRIEUR_BENCH_COMMIT", "unknown")
    return f"{head} (working tree with uncommitted changes)" if dirty else head


def family(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """CPU seconds of these processes, and of their children already exited and reaped
    (a gunicorn worker killed and replaced, a PostgreSQL backend that ended)."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def postmaster_pid(datadir: Path) -> int:
    return int((datadir / "postmaster.pid").read_text().split()[0])


@dataclass
class VerboseSink:
    """``smtp-sink -v``: its log names each connection, each RCPT and each final dot."""

    host: str
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_verbose_sink(workdir: Path) -> VerboseSink:
    from tests.services import free_port, wait_for_port

    log = workdir / "smtp-sink.log"
    command = [SMTP_SINK, "-4", "-v", "-m", "256"]
    if os.geteuid() == 0:
        command += ["-u", "root"]
    port = free_port()
    out = open(log, "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen([*command, f"127.0.0.1:{port}", "256"], stdout=out, stderr=out)
    out.close()
    wait_for_port(port, proc=proc)
    return VerboseSink("127.0.0.1", port, proc, log)


RCPT = re.compile(rb"rcpt TO:<([^>]*)>", re.IGNORECASE)


def relay_tally(log: Path) -> tuple[collections.Counter, int, int]:
    """RCPTs per address, connections opened and messages completed, from the sink's log."""
    per_address: collections.Counter = collections.Counter()
    connects = dots = 0
    with open(log, "rb") as fh:
        for line in fh:
            if b": RCPT TO:" in line or b": rcpt TO:" in line:
                found = RCPT.search(line)
                if found:
                    per_address[found.group(1).decode().lower()] += 1
            elif line.endswith(b": .\n"):
                dots += 1
            elif b": connect (" in line:
                connects += 1
    return per_address, connects, dots


# ---------------------------------------------------------------------------- campaigns


def new_campaign(org_id: int, list_id: int) -> int:
    """One more approved, compiled 12-block newsletter to the list (as ``bench_send.seed``)."""
    from bench_preview import BLOCKS

    from campaigns import editing
    from campaigns.models import Campaign
    from contacts.db import db

    campaign = editing.create_campaign(
        org_id,
        {
            "kind": "newsletter",
            "subject": "Les nouvelles de mars, {{ first_name }}",
            "preheader": "L'essentiel du mois",
            "blocks": BLOCKS,
            "list_ids": [list_id],
        },
        user_id=None,
    )
    editing.ensure_compiled(org_id, campaign)
    db.session.execute(
        Campaign.__table__.update().where(Campaign.id == campaign.id).values(status="approved")
    )
    db.session.commit()
    return campaign.id


def enqueue_start(broker, campaign_id: int) -> None:  # type: ignore[no-untyped-def]
    from dramatiq import Message

    broker.enqueue(
        Message(queue_name="send", actor_name="start_campaign", args=(campaign_id,),
                kwargs={}, options={})
    )  # fmt: skip


def freeze(org_id: int, campaign_id: int) -> int:
    """``sending.start_sending`` and commit: the audience frozen, the campaign ``sending``."""
    from campaigns import sending
    from campaigns.models import Campaign
    from contacts.db import db

    campaign = db.session.get(Campaign, campaign_id)
    n = sending.start_sending(org_id, campaign, None, "officer")
    db.session.commit()
    return n


def campaign_status(campaign_id: int) -> str:
    from campaigns.models import Campaign
    from contacts.db import db

    status = db.session.scalar(db.select(Campaign.status).where(Campaign.id == campaign_id))
    db.session.commit()
    return status


def wait_sent(campaign_id: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if campaign_status(campaign_id) == "sent":
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"campaign {campaign_id} not sent after {timeout}s")


def delivery_counts(campaign_id: int) -> dict[str, int]:
    from sqlalchemy import func, select

    from campaigns.models import Delivery
    from contacts.db import db

    rows = db.session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status)
    ).all()
    db.session.commit()
    return {s: int(n) for s, n in rows}


def sent_between(start: float, end: float) -> int:
    """Rows of any campaign sent between two wall-clock times (the database's ``now()``)."""
    from sqlalchemy import func, select

    from campaigns.models import Delivery
    from contacts.db import db

    n = db.session.scalar(
        select(func.count()).where(
            Delivery.status == "sent",
            Delivery.sent_at >= dt.datetime.fromtimestamp(start, dt.UTC),
            Delivery.sent_at < dt.datetime.fromtimestamp(end, dt.UTC),
        )
    )
    db.session.commit()
    return int(n or 0)


def token_set(org_id: int, campaign_id: int, exclude: set[int], unsub_max: int) -> dict:
    """Pixel and click paths of 3,000 recipients of the campaign, and one-click unsubscribe
    targets (recipients not unsubscribed yet) in random order, with their delivery ids."""
    from sqlalchemy import select

    from analytics import links as consent_links
    from campaigns.links import RecipientLinks, StoredLink
    from campaigns.models import Campaign, CampaignLink, Delivery
    from contacts.db import db
    from contacts.models import Organisation

    campaign = db.session.get(Campaign, campaign_id)
    org = db.session.get(Organisation, org_id)
    rows = db.session.scalars(
        select(CampaignLink)
        .where(CampaignLink.campaign_id == campaign_id)
        .order_by(CampaignLink.id)
    ).all()
    builder = RecipientLinks(
        public_url=PUBLIC_URL, secret=SECRET, policy=org.tracking_policy, org_id=org_id,
        campaign_id=campaign_id, campaign_uuid=campaign.uuid, campaign_name=campaign.name,
        website_url=org.website_url,
        links=[StoredLink(n, row.id, row.url) for n, row in enumerate(rows, 1)],
    )  # fmt: skip
    deliveries = db.session.execute(
        select(Delivery.id, Delivery.contact_id, Delivery.list_id).where(
            Delivery.campaign_id == campaign_id
        )
    ).all()
    db.session.commit()
    rng = random.Random(campaign_id)
    pixels, clicks = [], []
    link_names = [f"link_{n}" for n in range(1, len(rows) + 1)]
    for d_id, c_id, l_id in rng.sample(deliveries, min(3000, len(deliveries))):
        values = builder.values(d_id, c_id, l_id)
        pixels.append(values["open_pixel_url"].removeprefix(PUBLIC_URL))
        if link_names:
            clicks.append(values[rng.choice(link_names)].removeprefix(PUBLIC_URL))
    candidates = [row for row in deliveries if row[1] not in exclude]
    rng.shuffle(candidates)
    unsubs = []
    for d_id, c_id, l_id in candidates[:unsub_max]:
        url = consent_links.unsubscribe_url(PUBLIC_URL, SECRET, org_id, c_id, l_id or 0, d_id)
        unsubs.append((url.removeprefix(PUBLIC_URL), c_id, d_id, campaign_id))
    return {"campaign": campaign_id, "pixel": pixels, "click": clicks, "unsub": unsubs}


# ---------------------------------------------------------------------------- generator


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99),
            "max": ordered[-1]}  # fmt: skip


async def _http(port: int, method: str, path: str, timeout: float) -> int:
    """One request on its own connection (gunicorn's sync workers close after each)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        if method == "POST":
            body = b"List-Unsubscribe=One-Click"
            head = (
                f"POST {path} HTTP/1.1\r\nHost: crieur.bench.example\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
        else:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: crieur.bench.example\r\nUser-Agent: {BROWSER_UA}"
                "\r\nConnection: close\r\n\r\n".encode()
            )
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        await asyncio.wait_for(reader.read(), timeout)  # to the end: the response is complete
        parts = status_line.split()
        return int(parts[1]) if len(parts) > 1 else 0
    finally:
        writer.close()


async def _generate(port: int, rate: float, per_minute: float, seconds: float,
                    commands: mp.Queue, results: mp.Queue) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    current: dict = {}
    stop = asyncio.Event()

    def next_command() -> tuple | None:
        try:
            return commands.get(timeout=0.5)
        except queue.Empty:
            return None

    async def listen() -> None:
        while True:
            cmd = await loop.run_in_executor(None, next_command)
            if cmd is None:
                continue
            if cmd[0] == "tokens":
                current.clear()
                current.update(cmd[1])
                current["unsub_i"] = 0
            else:
                stop.set()
                return

    listener = asyncio.create_task(listen())
    while not current:
        await asyncio.sleep(0.01)
    status: dict[str, collections.Counter] = {r: collections.Counter() for r in ROUTES}
    latency: dict[str, list[float]] = {r: [] for r in ROUTES}
    lag: list[float] = []
    pending: set[asyncio.Task] = set()
    timeline: collections.Counter = collections.Counter()  # second -> requests over 100 ms

    async def one(route: str, due: float, method: str, path: str, meta: tuple | None) -> None:
        try:
            code = await _http(port, method, path, 10.0)
        except (TimeoutError, OSError) as exc:
            code = -1 if isinstance(exc, TimeoutError) else -2
        done = time.monotonic()
        status[route][code] += 1
        latency[route].append(done - due)
        if done - due > 0.1:
            timeline[int(due - start)] += 1
        if meta is not None:
            results.put(("unsub", (*meta, due, done, code)))

    start = time.monotonic() + 0.05
    track_every = 1.0 / rate if rate else float("inf")
    unsub_every = 60.0 / per_minute if per_minute else float("inf")
    i = j = 0
    while True:
        t_track = start + i * track_every if rate else float("inf")
        t_unsub = start + j * unsub_every if per_minute else float("inf")
        due = min(t_track, t_unsub)
        if due - start >= seconds or stop.is_set():
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag.append(-delay)
        if t_track <= t_unsub:
            route = "pixel" if i % 2 == 0 else "click"
            paths = current.get(route) or current["pixel"]
            task = one(route, due, "GET", paths[i // 2 % len(paths)], None)
            i += 1
        else:
            unsubs = current["unsub"]
            k = current["unsub_i"]
            current["unsub_i"] = k + 1
            if k >= len(unsubs):  # ran out of fresh recipients: count it, send nothing
                status["unsubscribe"][-3] += 1
                j += 1
                continue
            path, contact_id, delivery_id, campaign_id = unsubs[k]
            task = one("unsubscribe", due, "POST", path, (contact_id, delivery_id, campaign_id))
            j += 1
        t = asyncio.create_task(task)
        pending.add(t)
        t.add_done_callback(pending.discard)
    elapsed = time.monotonic() - start
    if pending:
        await asyncio.wait(pending, timeout=15)
    listener.cancel()
    results.put(
        (
            "done",
            {
                "seconds": elapsed,
                "status": {r: dict(c) for r, c in status.items()},
                "latency": {r: _percentiles(v) for r, v in latency.items()},
                "scheduler_lag": _percentiles(lag),
                "late_seconds": sorted(timeline.items()),
            },
        )
    )


def generator_main(port: int, rate: float, per_minute: float, seconds: float,
                   commands: mp.Queue, results: mp.Queue) -> None:  # fmt: skip
    """The load generator's process (spawned: nothing of the bench's state is inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_generate(port, rate, per_minute, seconds, commands, results))


# ---------------------------------------------------------------------------- unsubscribe check


@dataclass
class UnsubCheck:
    """Reads each answered unsubscribe back from the database, in its own thread."""

    app: object
    org_id: int
    records: list[dict] = field(default_factory=list)
    inbox: queue.Queue = field(default_factory=queue.Queue)

    def run(self) -> None:
        from sqlalchemy import select

        from campaigns.models import Delivery
        from contacts.db import db
        from contacts.models import Contact, Subscription, Suppression
        from contacts.suppression import email_hash

        with self.app.app_context():  # type: ignore[attr-defined]
            while True:
                item = self.inbox.get()
                if item is None:
                    return
                contact_id, delivery_id, campaign_id, due, done, code = item
                rec = {"contact_id": contact_id, "delivery_id": delivery_id,
                       "campaign_id": campaign_id, "code": code, "post_s": done - due}  # fmt: skip
                if 200 <= code < 300:
                    email = db.session.scalar(select(Contact.email).where(Contact.id == contact_id))
                    digest = email_hash(self.org_id, email, SECRET)
                    deadline = time.monotonic() + 30
                    while True:
                        active = db.session.scalar(
                            select(db.func.count()).where(
                                Subscription.contact_id == contact_id,
                                Subscription.status != "withdrawn",
                            )
                        )
                        suppressed = db.session.scalar(
                            select(db.func.count()).where(
                                Suppression.organisation_id == self.org_id,
                                Suppression.email_hash == digest,
                            )
                        )
                        status = db.session.scalar(
                            select(Delivery.status).where(Delivery.id == delivery_id)
                        )
                        db.session.commit()
                        now = time.monotonic()
                        if (active == 0 and suppressed) or now > deadline:
                            break
                        time.sleep(0.01)
                    rec.update(email=email, visible=active == 0 and bool(suppressed),
                               visible_s=now - due, status_then=status)  # fmt: skip
                self.records.append(rec)


# ---------------------------------------------------------------------------- the run


def precompile_catalogues(*instance_paths: Path) -> None:
    """Compile the message catalogues once, before several processes boot at the same time.

    Each process's ``create_app`` compiles them into its instance folder when missing,
    through one shared ``messages.mo.tmp``: processes booting together (gunicorn -w 4,
    dramatiq -p 2) race on it and one fails to boot (reported with the load bench).
    """
    try:
        from webapp.i18n import compile_catalogues
    except ImportError:
        return
    for path in instance_paths:
        compile_catalogues(path / "translations")


def write_wsgi(workdir: Path, db_url: str) -> None:
    (workdir / "wsgi_load.py").write_text(
        textwrap.dedent(
            f"""
            from webapp import create_app
            app = create_app({{
                "CRIEUR_DATABASE_URL": {db_url!r},
                "CRIEUR_SECRET_KEY": {SECRET!r},
                "CRIEUR_PUBLIC_URL": {PUBLIC_URL!r},
            }}, instance_path={str(workdir / "web-instance")!r})
            """
        )
    )


def wait_http(port: int, timeout: float = 90.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    ok = 0
    while ok < 20:
        if time.monotonic() > deadline:
            raise TimeoutError("gunicorn workers not answering")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                ok += r.status == 200
        except OSError:
            time.sleep(0.2)
    time.sleep(2.0)


def calibrate(port: int, tokens: dict, web_pid: int, n: int = 200, n_unsub: int = 60) -> dict:
    """Each route alone, one request at a time: the web tier's CPU per request and the
    unloaded latency (what the shared machine blurs least)."""
    import http.client

    out = {}
    for route, count in (("pixel", n), ("click", n), ("unsubscribe", n_unsub)):
        items = tokens["unsub"][:count] if route == "unsubscribe" else tokens[route][:count]
        codes: collections.Counter = collections.Counter()
        lat = []
        c0 = cpu_seconds(family(web_pid))
        for item in items:
            t = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if route == "unsubscribe":
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                conn.request("POST", item[0], body="List-Unsubscribe=One-Click", headers=form)
            else:
                conn.request("GET", item, headers={"User-Agent": BROWSER_UA})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            lat.append(time.perf_counter() - t)
            codes[resp.status] += 1
        out[route] = {"cpu_ms": (cpu_seconds(family(web_pid)) - c0) / max(len(items), 1) * 1e3,
                      "latency": _percentiles(lat), "codes": dict(codes)}  # fmt: skip
    return out


class PgActivity:
    """What PostgreSQL's backends are running, sampled every 0.25 s (a profile by query)."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.samples: collections.Counter = collections.Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(0.25):
                rows = conn.execute(
                    "SELECT query FROM pg_stat_activity WHERE state = 'active' "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                ).fetchall()
                for (query,) in rows:
                    self.samples[" ".join(query.split())[:110]] += 1

    def top(self, n: int = 6) -> list[tuple[str, int]]:
        return self.samples.most_common(n)


class Cpu:
    """CPU seconds of each group of processes between two marks."""

    def __init__(self, groups: dict[str, int | None]) -> None:
        self.groups = groups

    def now(self) -> dict[str, float]:
        out = {}
        for name, pid in self.groups.items():
            out[name] = time.process_time() if pid is None else cpu_seconds(family(pid))
        return out


def run(args: argparse.Namespace) -> dict:
    from bench_send import seed
    from dramatiq.brokers.redis import RedisBroker
    from sqlalchemy import select, text

    from contacts.db import db
    from contacts.models import MailingList
    from tests import services
    from webapp import create_app

    workdir = Path(tempfile.mkdtemp(prefix="crieur-bench-load-"))
    pg = services.start_postgres()
    redis = services.start_redis()
    if pg is None or redis is None:
        raise SystemExit("PostgreSQL and redis-server are needed (see tests/services.py)")
    sink = start_verbose_sink(workdir)
    out: dict = {"args": vars(args).copy(), "load_before": os.getloadavg(),
                 "commit": code_version(), "children_cpu": True}  # fmt: skip
    procs: list[subprocess.Popen] = []
    gen = None
    try:
        app = create_app(
            {"CRIEUR_DATABASE_URL": pg.url, "CRIEUR_SECRET_KEY": SECRET,
             "CRIEUR_PUBLIC_URL": PUBLIC_URL, "CRIEUR_SMTP_URL": sink.url},
            instance_path=str(workdir / "instance"),
        )  # fmt: skip
        with app.app_context():
            db.create_all()
            t = time.perf_counter()
            org_id, campaign_a = seed(args.recipients)
            list_id = db.session.scalar(
                select(MailingList.id).where(MailingList.organisation_id == org_id)
            )
            # A production database has statistics (autovacuum); a fresh bulk load has
            # none, and the sender's per-second re-check then scans every delivery.
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            out["seed_s"] = time.perf_counter() - t
            print(f"seeded {args.recipients:,} contacts in {out['seed_s']:.0f} s", flush=True)
            env = dict(os.environ)
            env.update(
                CRIEUR_BROKER_URL=redis.url, CRIEUR_DATABASE_URL=pg.url,
                CRIEUR_SMTP_URL=sink.url, CRIEUR_SMTP_CONNECTIONS=str(args.threads),
                CRIEUR_SECRET_KEY=SECRET, CRIEUR_PUBLIC_URL=PUBLIC_URL,
                CRIEUR_INSTANCE_PATH=str(workdir / "worker-instance"),
            )  # fmt: skip
            precompile_catalogues(workdir / "worker-instance", workdir / "web-instance")
            log = workdir / "workers.log"
            with open(log, "wb") as fh:
                workers = subprocess.Popen(
                    [sys.executable, "-m", "dramatiq", "webapp.worker_entry",
                     "-p", str(args.processes), "-t", str(args.threads), "-Q", "send", "default"],
                    cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                )  # fmt: skip
            procs.append(workers)
            write_wsgi(workdir, pg.url)
            port = services.free_port()
            web_env = dict(env, PYTHONPATH=f"{workdir}{os.pathsep}{ROOT}")
            with open(workdir / "gunicorn.log", "wb") as fh:
                web = subprocess.Popen(
                    [str(Path(sys.executable).with_name("gunicorn")), "-w", str(args.web_workers),
                     "-b", f"127.0.0.1:{port}", "--graceful-timeout", "30", "--backlog", "2048",
                     "--log-level", "warning", "wsgi_load:app"],
                    cwd=workdir, env=web_env, stdout=fh, stderr=subprocess.STDOUT,
                )  # fmt: skip
            procs.append(web)
            deadline = time.monotonic() + 90
            while log.read_text(errors="replace").count("is ready for action") < args.processes:
                if time.monotonic() > deadline or workers.poll() is not None:
                    raise RuntimeError("workers did not start:\n" + log.read_text()[-2000:])
                time.sleep(0.2)
            services.wait_for_port(port, timeout=60, proc=web)
            wait_http(port)
            broker = RedisBroker(url=redis.url)
            broker.declare_queue("send")
            cpu = Cpu({"workers": workers.pid, "web": web.pid,
                       "postgres": postmaster_pid(pg.datadir), "redis": redis.proc.pid,
                       "sink": sink.proc.pid, "bench": None})  # fmt: skip

            def send_one(campaign_id: int, label: str, during=None) -> dict:  # type: ignore[no-untyped-def]
                c0, t0, wall0 = cpu.now(), time.monotonic(), time.time()
                n = freeze(org_id, campaign_id)
                enqueue_start(broker, campaign_id)
                if during:
                    during(campaign_id)
                t1 = wait_sent(campaign_id, 3600)
                c1 = cpu.now()
                counts = delivery_counts(campaign_id)
                sent = counts.get("sent", 0)
                row = {"label": label, "campaign": campaign_id, "recipients": n,
                       "seconds": t1 - t0, "t0": t0, "t1": t1, "wall0": wall0, "counts": counts,
                       "rate": sent / (t1 - t0),
                       "cpu_us": {k: (c1[k] - c0[k]) / max(sent, 1) * 1e6 for k in c0}}  # fmt: skip
                print(f"{label}: {n:,} recipients, {sent:,} sent in {t1 - t0:.1f} s "
                      f"→ {row['rate']:,.0f} msg/s {counts}", flush=True)  # fmt: skip
                return row

            out["a"] = send_one(campaign_a, "A")
            posted: set[int] = set()  # contacts already sent a one-click POST
            unsub_max = int(args.unsubscribes * 6) + 100  # six minutes of one campaign
            calibration_tokens = token_set(org_id, campaign_a, posted, 60)
            out["calibration"] = calibrate(port, calibration_tokens, web.pid)
            out["calibration_unsubscribed"] = [u[1] for u in calibration_tokens["unsub"]]
            posted.update(out["calibration_unsubscribed"])
            ctx = mp.get_context("spawn")
            commands, results = ctx.Queue(), ctx.Queue()
            load_seconds = args.minutes * 60
            gen = ctx.Process(target=generator_main, daemon=True,
                              args=(port, args.rate, args.unsubscribes, load_seconds, commands,
                                    results))  # fmt: skip
            gen.start()
            cpu.groups["generator"] = gen.pid
            checker = UnsubCheck(app, org_id)
            check_thread = threading.Thread(target=checker.run, daemon=True)
            check_thread.start()
            summary: dict = {}

            def pump() -> None:
                while True:
                    kind, payload = results.get()
                    if kind == "unsub":
                        posted.add(payload[0])
                        checker.inbox.put(payload)
                    else:
                        summary.update(payload)
                        return

            pump_thread = threading.Thread(target=pump, daemon=True)
            pump_thread.start()
            # Warm-up: the load starts on phase A's recipients (a finished campaign is
            # still opened and clicked), then follows each new campaign.
            commands.put(("tokens", token_set(org_id, campaign_a, posted, unsub_max)))
            activity = PgActivity(pg.url)
            activity.thread.start()
            c_load0 = cpu.now()
            t_load0, wall_load0 = time.monotonic(), time.time()
            time.sleep(args.warmup)

            def hand_tokens(campaign_id: int) -> None:
                commands.put(("tokens", token_set(org_id, campaign_id, posted, unsub_max)))

            out["b"] = []
            while time.monotonic() - t_load0 < load_seconds:
                cid = new_campaign(org_id, list_id)
                row = send_one(cid, f"B{len(out['b']) + 1}", during=hand_tokens)
                row["under_load"] = row["t1"] <= t_load0 + load_seconds
                out["b"].append(row)
            pump_thread.join(load_seconds + 60)
            activity.stop.set()
            out["pg_activity"] = activity.top()
            t_load1 = time.monotonic()
            c_load1 = cpu.now()
            out["load"] = summary
            out["load_cpu_s"] = {k: c_load1[k] - c_load0[k] for k in c_load0 if k in c_load1}
            out["load_wall_s"] = t_load1 - t_load0
            # The send rate under load: rows the relay accepted between the first loaded
            # campaign's "send" and the end of the load (gaps between campaigns included,
            # as phase A's clock includes its freeze), from the rows' own sent_at.
            if out["b"]:
                window = (out["b"][0]["wall0"], wall_load0 + summary.get("seconds", 0) + 0.05)
                out["b_window"] = {"seconds": window[1] - window[0],
                                   "sent": sent_between(*window)}  # fmt: skip
            checker.inbox.put(None)
            check_thread.join(120)
            out["unsub_checks"] = checker.records
            out["a2"] = send_one(new_campaign(org_id, list_id), "A2")
            time.sleep(1.0)
            out["final"] = final_checks(
                org_id, checker.records, sink, web, set(out["calibration_unsubscribed"])
            )
            broker.close()
    finally:
        if gen is not None and gen.is_alive():
            gen.terminate()
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        sink.stop()
        redis.stop()
        pg.stop()
    out["load_after"] = os.getloadavg()
    out["finished"] = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"
    glog = (workdir / "gunicorn.log").read_text(errors="replace")
    out["gunicorn"] = {"worker_timeouts": glog.count("WORKER TIMEOUT"),
                       "workers_killed": glog.count("was sent SIGKILL")}  # fmt: skip
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def final_checks(  # type: ignore[no-untyped-def]
    org_id: int, checks: list[dict], sink: VerboseSink, web, calibrated: set[int]
) -> dict:
    """Database and relay against each other; events stored after gunicorn's shutdown flush."""
    from sqlalchemy import func, select

    from analytics.models import TrackingEvent
    from campaigns.models import Delivery
    from contacts.db import db
    from contacts.models import Contact, Subscription, Suppression

    web.send_signal(signal.SIGTERM)  # flushes the event buffers
    web.wait(60)
    out: dict = {}
    posted_ok = {r["contact_id"] for r in checks if 200 <= r["code"] < 300} | calibrated
    withdrawn = set(
        db.session.scalars(
            select(Subscription.contact_id)
            .where(Subscription.organisation_id == org_id)
            .group_by(Subscription.contact_id)
            .having(func.count().filter(Subscription.status != "withdrawn") == 0)
        )
    )
    out["contacts_posted_2xx"] = len(posted_ok)
    out["contacts_withdrawn"] = len(withdrawn)
    out["posted_not_withdrawn"] = len(posted_ok - withdrawn)
    posted_any = {r["contact_id"] for r in checks} | calibrated
    out["withdrawn_not_posted"] = len(withdrawn - posted_any)
    out["timed_out_but_applied"] = len((posted_any - posted_ok) & withdrawn)
    out["timed_out_not_applied"] = len(posted_any - posted_ok - withdrawn)
    out["suppressions"] = db.session.scalar(
        select(func.count()).where(Suppression.organisation_id == org_id)
    )
    out["events"] = dict(
        db.session.execute(
            select(TrackingEvent.kind, func.count()).group_by(TrackingEvent.kind)
        ).all()
    )
    # Relay RCPTs per address against the rows the database says reached it.
    relay, connects, dots = relay_tally(sink.log)
    reached = dict(
        db.session.execute(
            select(Contact.email, func.count())
            .join(Delivery, Delivery.contact_id == Contact.id)
            .where(Delivery.status.in_(("sent", "unknown")))
            .group_by(Contact.email)
        ).all()
    )
    more = {a: n - reached.get(a, 0) for a, n in relay.items() if n > reached.get(a, 0)}
    fewer = {a: reached[a] - relay.get(a, 0) for a in reached if relay.get(a, 0) < reached[a]}
    out["relay"] = {"rcpts": sum(relay.values()), "dots": dots, "connections": connects,
                    "db_sent": sum(reached.values()), "relay_more_than_db": len(more),
                    "relay_fewer_than_db": len(fewer)}  # fmt: skip
    # Unsubscribed while their row was still queued: must end skipped, and the relay must
    # have seen that address only for the campaigns whose rows say sent.
    final = dict(
        db.session.execute(
            select(Delivery.id, Delivery.status).where(
                Delivery.id.in_([r["delivery_id"] for r in checks if r.get("status_then")])
            )
        ).all()
    )
    before_claim = [r for r in checks if r.get("status_then") == "queued"]
    out["before_claim"] = len(before_claim)
    out["before_claim_sent"] = sum(final.get(r["delivery_id"]) != "skipped" for r in before_claim)
    out["before_claim_at_relay"] = sum(r["email"] in more for r in before_claim)
    in_flight = [r for r in checks if r.get("status_then") == "sending"]
    out["in_flight"] = collections.Counter(final.get(r["delivery_id"]) for r in in_flight)
    out["already_sent"] = sum(r.get("status_then") in ("sent", "unknown") for r in checks)
    db.session.commit()
    return out


# ---------------------------------------------------------------------------- report


def _ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def report(r: dict) -> str:
    args = r["args"]
    load = r["load"]
    # JSON turns the status codes into strings
    load["status"] = {k: {int(c): n for c, n in v.items()} for k, v in load["status"].items()}
    a, a2 = r["a"], r["a2"]
    base = (a["rate"] + a2["rate"]) / 2
    if "b_window" in r:
        b_sent, b_secs = r["b_window"]["sent"], r["b_window"]["seconds"]
        how = "from B1's start to the end of the load, by the rows' `sent_at`"
    else:  # runs before the window was measured: the B campaigns' own clocks
        b_sent = sum(b["counts"].get("sent", 0) for b in r["b"])
        b_secs = sum(b["seconds"] for b in r["b"])
        how = "by the B campaigns' own clocks, so partly after the load"
    b_rate = b_sent / b_secs if b_secs else 0.0
    ratio = b_rate / base if base else 0.0
    lb = ", ".join(f"{x:.1f}" for x in r["load_before"])
    la = ", ".join(f"{x:.1f}" for x in r["load_after"])
    minutes = args["minutes"]
    lines = [
        "# Load during a send: tracking at 200 req/s and one-click unsubscribes at 1,000/min",
        "",
        f"Run {r['finished']} UTC by `bench/bench_load.py --minutes "
        f"{minutes:g} --recipients {args['recipients']}` on {platform.node()}: "
        f"{os.cpu_count()} CPU cores shared with other work (load average {lb} when it "
        f"started, {la} at the end), Python {platform.python_version()}, code at "
        f"{r.get('commit', 'unknown')}. PostgreSQL 15 "
        "(throw-away, fsync off), Redis, Postfix's `smtp-sink -v` (its log counts every "
        f"RCPT), gunicorn with {args['web_workers']} sync workers, Dramatiq "
        f"`-p {args['processes']} -t {args['threads']}` "
        f"(CRIEUR_SMTP_CONNECTIONS={args['threads']}); everything on loopback, the load "
        "generator included (it competes for the same 2 cores).",
        "",
        *([r["note"], ""] if r.get("note") else []),
        f"Load: open loop, fixed schedule, {args['rate']:g} req/s alternating open pixel and "
        f"click redirect (valid tokens of 3,000 recipients of the campaign being sent), "
        f"{args['unsubscribes']:g} RFC 8058 one-click POSTs a minute for real recipients "
        f"of that campaign, each on a new connection, for {load['seconds']:.0f} s. "
        "Latency is counted from the time each request was due, so queueing in the "
        "generator or the server counts.",
        "",
        "## Requests",
        "",
        "| route | requests | by status | p50 | p95 | p99 | max |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for route in ROUTES:
        st = load["status"][route]
        lat = load["latency"][route]
        ordered = sorted(st.items(), key=lambda x: int(x[0]))
        by = ", ".join(f"{_label(k)}: {v:,}" for k, v in ordered)
        lines.append(
            f"| {route} | {sum(st.values()):,} | {by} | {_ms(lat['p50'])} | {_ms(lat['p95'])} "
            f"| {_ms(lat['p99'])} | {_ms(lat['max'])} |"
        )
    lag = load["scheduler_lag"]
    late = load.get("late_seconds") or []
    worst = ", ".join(f"s{s} ×{n}" for s, n in sorted(late, key=lambda x: -x[1])[:5])
    cal = r["calibration"]
    need = (args["rate"] / 2 * (cal["pixel"]["cpu_ms"] + cal["click"]["cpu_ms"])
            + args["unsubscribes"] / 60 * cal["unsubscribe"]["cpu_ms"]) / 1000  # fmt: skip
    lines += [
        "",
        f"Generator: {lag['n']:,} requests were started behind schedule (p99 lag "
        f"{_ms(lag['p99'])}, max {_ms(lag['max'])}); that lag is inside the latencies above. "
        f"Seconds of the run with requests over 100 ms: {len(late)}"
        + (f" (most: {worst})" if late else "")
        + ". A timeout is a request not answered within 10 s (the server still serves it "
        "later: it stays in gunicorn's backlog).",
        "",
        "Each route alone (one request at a time, between phases A and B, no send "
        "running): the web tier's CPU per request (all gunicorn processes) and the "
        "unloaded latency.",
        "",
        "| route | requests | by status | web CPU per request | p50 | p99 |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for route in ROUTES:
        c = cal[route]
        lines.append(
            f"| {route} | {c['latency']['n']} | "
            f"{', '.join(f'{k}: {v}' for k, v in c['codes'].items())} | {c['cpu_ms']:.1f} ms | "
            f"{_ms(c['latency']['p50'])} | {_ms(c['latency']['p99'])} |"
        )
    lines += [
        "",
        f"At those costs the target mix ({args['rate']:g} req/s of pixel and click, "
        f"{args['unsubscribes']:g} one-click a minute) needs **{need:.2f} cores** for the "
        "web tier alone, beside the send and everything else on the machine.",
        "",
        "## Sending, with and without the load",
        "",
        "| phase | campaign | recipients | sent | seconds | messages/s | vs baseline "
        "| worker CPU µs/msg | web CPU µs/msg | PostgreSQL CPU µs/msg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in [a, *r["b"], a2]:
        tag = row["label"]
        if tag.startswith("B") and not row["under_load"]:
            tag += " (ended after the load)"
        c = row["cpu_us"]
        lines.append(
            f"| {tag} | {row['campaign']} | {row['recipients']:,} | "
            f"{row['counts'].get('sent', 0):,} | {row['seconds']:.1f} | {row['rate']:,.0f} | "
            f"{row['rate'] / base:.2f} | {c['workers']:.0f} | "
            f"{'n/a (workers killed)' if c['web'] < 0 else format(c['web'], '.0f')} "
            f"| {c['postgres']:.0f} |"
        )
    lines += [
        "",
        f"Baseline (mean of A and A2): **{base:,.0f} msg/s**; under load ({b_sent:,} "
        f"messages sent in {b_secs:.0f} s, {how}): "
        f"**{b_rate:,.0f} msg/s**, ratio **{ratio:.2f}** (a drop of "
        f"{(1 - ratio) * 100:.0f} %). A B campaign that ended after the load has its own row "
        "rate partly unloaded.",
    ]
    cpu = r["load_cpu_s"]
    wall = r["load_wall_s"]
    killed = (r.get("gunicorn") or {}).get("workers_killed", 0)
    lost = (
        f" The web and PostgreSQL figures of this run are lower bounds: the CPU of its "
        f"{killed} killed gunicorn workers and of the backends that ended was not counted "
        "(counted since, through the reaped children's times)."
        if killed and not r.get("children_cpu")
        else ""
    )
    lines += [
        "",
        f"CPU during the loaded phase ({wall:.0f} s wall, {2 * wall:.0f} core-seconds on 2 "
        "cores): " + ", ".join(f"{k} {v:.0f} s" for k, v in cpu.items()) + "." + lost,
    ]
    if r.get("pg_activity"):
        top = "; ".join(f"{n} × `{q[:70]}…`" for q, n in r["pg_activity"][:3])
        lines += ["", f"PostgreSQL's busiest statements during the load (4 samples/s): {top}."]
    checks = r["unsub_checks"]
    f = r["final"]
    ok = [c for c in checks if 200 <= c["code"] < 300]
    vis = [c["visible_s"] for c in ok if c.get("visible")]
    pv = _percentiles(vis)
    lines += [
        "",
        "## One-click unsubscribes",
        "",
        f"- POSTs answered: {len(checks):,}, of which 2xx: {len(ok):,}; "
        f"not visible in the database within 30 s: {sum(not c.get('visible') for c in ok)}.",
        f"- From the time the POST was due to the withdrawal read back from another "
        f"connection (subscriptions withdrawn and the suppression row present): p50 "
        f"{_ms(pv['p50'])}, p99 {_ms(pv['p99'])}, max {_ms(pv['max'])} (the POST commits before "
        "it answers; the read-back comes right after the answer).",
        f"- Database at the end: {f['contacts_withdrawn']:,} contacts withdrawn from every list "
        f"for {f['contacts_posted_2xx']:,} unsubscribed (posted but not withdrawn: "
        f"{f['posted_not_withdrawn']}; withdrawn without a POST: {f['withdrawn_not_posted']}); "
        f"{f['suppressions']:,} suppression rows. POSTs that timed out at the client were "
        f"applied by the server later all the same: {f['timed_out_but_applied']} "
        f"(not applied: {f['timed_out_not_applied']}).",
        f"- Recipient's delivery row when the withdrawal became visible: still queued "
        f"{f['before_claim']:,} → sent anyway: **{f['before_claim_sent']}**, "
        f"address at the relay beyond its sent rows: **{f['before_claim_at_relay']}**; claimed "
        f"and in flight {sum(f['in_flight'].values())} (then "
        f"{dict(f['in_flight']) or '—'}: a later unsubscribe is re-checked every second "
        f"before SMTP); already sent {f['already_sent']:,}.",
        "",
        "## Relay against the database",
        "",
        f"smtp-sink saw {f['relay']['rcpts']:,} RCPTs and {f['relay']['dots']:,} completed "
        f"messages over {f['relay']['connections']:,} connections; the database has "
        f"{f['relay']['db_sent']:,} rows sent. Addresses the relay saw more often than their "
        f"sent rows: **{f['relay']['relay_more_than_db']}**; fewer: "
        f"**{f['relay']['relay_fewer_than_db']}**. Tracking events stored (after gunicorn's "
        f"SIGTERM flush): {f['events']} for "
        f"{load['status']['pixel'].get(200, 0):,} pixels and "
        f"{load['status']['click'].get(302, 0):,} redirects answered (the phase's own "
        "POSTs add the unsubscribe events).",
    ]
    g = r.get("gunicorn")
    if g:
        lines += [
            "",
            f"gunicorn during the run: {g['worker_timeouts']} worker timeouts (a sync worker "
            f"held over 30 s), {g['workers_killed']} workers killed and replaced; the events "
            "a killed worker still held in its buffer are lost with it.",
        ]
    lines += ["", "## Against the targets", ""] + verdicts(r, ratio)
    lines += [
        "",
        "## Reading it",
        "",
        "- The one-at-a-time table is the figure a busy machine blurs least: the web tier's "
        "CPU per request. The loaded table is what this machine gave at that moment; compare "
        "the loaded phase's CPU line with the core-seconds available to see how much of the "
        "machine the bench got.",
        "- gunicorn's sync workers serve one connection each. A client slow to send its "
        "request (here the load generator itself when it is starved of CPU, in production a "
        "slow mobile network) holds a worker until gunicorn's 30 s timeout kills it: deploy "
        "behind a buffering proxy (nginx) as gunicorn's documentation advises. Worker "
        "timeouts, if any, are in the run's `gunicorn.log`.",
        "- A one-click POST is about twenty SQL statements in one transaction (contact, "
        "list and organisation loaded several times, ledger row, subscription, suppression "
        "with a savepoint, contact status, unsubscribe event and its rollup): an order of "
        "magnitude more than a pixel or a redirect, and a worker is held for all of it.",
    ]
    return "\n".join(lines) + "\n"


def previous_summary(r: dict) -> str:
    """Another run's requests table, send rate and verdicts, appended to a report."""
    args = r["args"]
    full = report(r).splitlines()
    lb = ", ".join(f"{x:.1f}" for x in r["load_before"])
    la = ", ".join(f"{x:.1f}" for x in r["load_after"])
    keep = [
        "",
        f"### `--minutes {args['minutes']:g} --rate {args['rate']:g} --unsubscribes "
        f"{args['unsubscribes']:g} --recipients {args['recipients']}`",
        "",
        f"Run {r['finished']} UTC, code at {r.get('commit', 'unknown')}, load average {lb} "
        f"at the start, {la} at the end.",
        "",
        "| route | requests | by status | p50 | p95 | p99 | max |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    routes = ROUTE_ROWS if args["unsubscribes"] else ROUTE_ROWS[:2]
    keep += [x for x in full if x.startswith(routes) and x.count("|") == 8]
    keep += [""] + [x for x in full if x.startswith("Baseline (mean of A and A2)")]
    g = r.get("gunicorn")
    if g:
        keep += ["", f"gunicorn: {g['worker_timeouts']} worker timeouts."]
    target = full.index("## Against the targets")
    keep += [""] + [
        x for x in full[target + 2 :] if x.startswith("- ") and "This run loaded" not in x
    ][:6]
    return "\n".join(keep) + "\n"


def _label(code: str | int) -> str:
    code = int(code)
    return {-1: "timeout", -2: "connection error", -3: "not sent (no fresh recipient)"}.get(
        code, str(code)
    )


def verdicts(r: dict, ratio: float) -> list[str]:
    def mark(ok: bool) -> str:
        return "met" if ok else "**not met**"

    load, f, args = r["load"], r["final"], r["args"]
    track = [(int(k), v) for route in ("pixel", "click") for k, v in load["status"][route].items()]
    five = sum(v for k, v in track if k >= 500)
    failed = sum(v for k, v in track if k < 0)
    p99 = {route: load["latency"][route]["p99"] for route in ROUTES}
    unsub = load["status"]["unsubscribe"]
    not_2xx = sum(v for k, v in unsub.items() if not 200 <= int(k) < 300 and int(k) != -3)
    vis = [c["visible_s"] for c in r["unsub_checks"] if c.get("visible")]
    slowest = max(vis) if vis else float("inf")
    invisible = sum(not c.get("visible") for c in r["unsub_checks"] if 200 <= c["code"] < 300)
    minutes = args["minutes"]
    relay_ok = f["relay"]["relay_more_than_db"] == 0 and f["relay"]["relay_fewer_than_db"] == 0
    if not args["unsubscribes"]:
        unsub_line = "- One-click unsubscribes: not exercised in this run (`--unsubscribes 0`)."
    else:
        unsub_line = (
            f"- One-click at {args['unsubscribes']:g}/min all 2xx: {not_2xx} otherwise — "
            f"{mark(not_2xx == 0)}; applied within seconds: slowest {slowest:.2f} s, "
            f"{invisible} never seen — {mark(slowest < 5 and invisible == 0)}."
        )
    out = [
        f"- Tracking for {minutes:g} min at {args['rate']:g} req/s, no 5xx: {five} answered "
        f"5xx — {mark(five == 0)}; but {failed:,} of {sum(v for _, v in track):,} requests "
        f"got no answer in time (timeout or refused) — {mark(failed == 0)}.",
        f"- p99 < 100 ms: pixel {_ms(p99['pixel'])} — {mark(p99['pixel'] < 0.1)}; click "
        f"{_ms(p99['click'])} — {mark(p99['click'] < 0.1)}.",
        f"- Send rate drops < 20 %: {ratio:.2f} of the baseline — {mark(ratio >= 0.8)}.",
        unsub_line,
        f"- Unsubscribed before the claim → no message: {f['before_claim_sent']} sent, "
        f"{f['before_claim_at_relay']} at the relay — "
        f"{mark(f['before_claim_sent'] == 0 and f['before_claim_at_relay'] == 0)}.",
        f"- Relay and database agree: {f['relay']['relay_more_than_db']} more, "
        f"{f['relay']['relay_fewer_than_db']} fewer — "
        f"{mark(relay_ok)}.",
    ]
    if minutes < 10:
        out.append(
            f"- This run loaded for {minutes:g} min; the target says 10 "
            "(`--minutes 10 --recipients 60000`)."
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the load")
    parser.add_argument("--recipients", type=int, default=30_000, help="contacts on the list")
    parser.add_argument("--rate", type=float, default=200.0, help="pixel + click req/s")
    parser.add_argument("--unsubscribes", type=float, default=1000.0, help="one-click a minute")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--keep", action="store_true", help="keep the logs in the work folder")
    parser.add_argument("--report", type=Path, default=ROOT / "bench" / "reports" / "load.md")
    parser.add_argument("--json", type=Path, help="also dump the raw results there")
    parser.add_argument("--from-json", type=Path, help="rewrite the report of an earlier run")
    parser.add_argument("--note", default="", help="a sentence on the conditions, for the report")
    parser.add_argument(
        "--previous-json", type=Path, nargs="*", help="append other runs' key figures"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        mtime = dt.datetime.fromtimestamp(args.from_json.stat().st_mtime, dt.UTC)
        result.setdefault("finished", f"{mtime:%Y-%m-%d %H:%M}")
    else:
        result = run(args)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1, default=str))
    result["note"] = args.note or result.get("note", "")
    text = report(result)
    if args.previous_json:
        text += "\n## Other runs of the same code\n"
    for extra in args.previous_json or ():
        other = json.loads(extra.read_text())
        mtime = dt.datetime.fromtimestamp(extra.stat().st_mtime, dt.UTC)
        other.setdefault("finished", f"{mtime:%Y-%m-%d %H:%M}")
        text += previous_summary(other)
    print(text)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(RuntimeError):
        mp.set_start_method("spawn")
    raise SystemExit(main())
