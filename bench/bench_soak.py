"""Soak: continuous sending with a worker restarted on a schedule (RELIABILITY.md, "Load to hold").

Target: "1 h soak, a worker restarted every 10 min → memory flat; no leaked SMTP
connections; Redis ack sets empty at the end."

Topology, on loopback and started for the run: a throw-away PostgreSQL, Redis, Postfix's
``smtp-sink -v`` (its log names every connection and every RCPT) and two Dramatiq
worker groups, each ``python -m dramatiq webapp.worker_entry -p 1 -t T`` (one main
process and one worker process), with ``CRIEUR_SEND_RATE`` per process and
``CRIEUR_SMTP_CONNECTIONS`` connections. Campaigns of the 12-block newsletter of
``bench_preview.py`` to one list are started one after another for ``--minutes``; every
``--restart-minutes`` one group (alternately) gets SIGTERM and a new one is started.

Sampled every ``--sample-seconds``: the resident memory (RSS) of each worker process,
the relay's established connections (the sink's own sockets) and each group's sockets to
the relay. At the end (the last campaign sent, then both groups stopped with SIGTERM):

- RSS per worker process life and per restart cycle (first vs last), with its slope;
- relay connections during sending (bound: connections × processes) and after the
  workers stopped (0), and how many were opened in all (sink log);
- Redis: the ``dramatiq:__acks__.*`` sets (must be empty) and the queues;
- every delivery row final, and the relay's RCPTs per address equal to the database's
  sent rows per contact; any extra copy must be flagged ``possible_duplicate``.

Usage::

    .venv/bin/python bench/bench_soak.py                       # make bench: 6 min, restart every 2
    .venv/bin/python bench/bench_soak.py --minutes 60 --restart-minutes 10   # the target

Reported in ``bench/reports/soak.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
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
from bench_load import (  # noqa: E402
    PUBLIC_URL,
    SECRET,
    campaign_status,
    code_version,
    delivery_counts,
    enqueue_start,
    freeze,
    new_campaign,
    precompile_catalogues,
    relay_tally,
    start_verbose_sink,
)

MB = 2**20


# ---------------------------------------------------------------------------- worker groups


class Group:
    """One ``python -m dramatiq … -p 1`` in its own session; SIGTERM to stop it gracefully."""

    def __init__(self, slot: int, env: dict[str, str], log: Path, threads: int) -> None:
        self.slot, self.env, self.log, self.threads = slot, env, log, threads
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> Group:
        out = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "webapp.worker_entry",
             "-p", "1", "-t", str(self.threads), "-Q", "send", "default"],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        self.started = time.monotonic()
        return self

    def workers(self) -> list[psutil.Process]:
        """The worker processes (the main process's children)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []

    def family(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def terminate(self, timeout: float = 300) -> float:
        """SIGTERM and wait; the seconds the graceful stop took."""
        assert self.proc is not None
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            return float("inf")
        return time.monotonic() - t


def sockets_to(procs: list[psutil.Process], port: int) -> int:
    """Established TCP sockets of these processes to ``port`` on loopback."""
    n = 0
    for proc in procs:
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        n += sum(1 for c in conns if c.raddr and c.raddr.port == port and c.status == "ESTABLISHED")
    return n


def sink_sockets(pid: int, port: int) -> int:
    """The relay's own established connections (its accepted sockets)."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return -1
    return sum(1 for c in conns if c.laddr.port == port and c.status == "ESTABLISHED")


@dataclass
class Sampler:
    """RSS of every worker process and the relay's connections, every few seconds."""

    groups: list[Group]
    sink_pid: int
    sink_port: int
    every: float
    t0: float
    rss: dict[int, list[tuple[float, int, int]]] = field(default_factory=dict)  # pid → samples
    conns: list[tuple[float, int, list[int]]] = field(default_factory=list)
    cpu: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # pid → CPU s
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        now = time.monotonic() - self.t0
        per_group = []
        for group in self.groups:
            for proc in group.workers():
                try:
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                self.rss.setdefault(proc.pid, []).append((now, rss, group.slot))
                self.cpu.setdefault(proc.pid, []).append((now, times.user + times.system))
            per_group.append(sockets_to(group.family(), self.sink_port))
        self.conns.append((now, sink_sockets(self.sink_pid, self.sink_port), per_group))

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.sample()


# ---------------------------------------------------------------------------- the run


def redis_state(url: str) -> dict:
    import redis

    client = redis.Redis.from_url(url)
    out: dict = {"acks": {}, "queues": {}}
    for key in client.scan_iter("dramatiq:*"):
        name = key.decode()
        kind = client.type(key).decode()
        size = {
            "set": client.scard,
            "list": client.llen,
            "zset": client.zcard,
            "hash": client.hlen,
        }.get(kind, lambda k: -1)(key)
        if name.startswith("dramatiq:__acks__"):
            out["acks"][name] = size
        else:
            out["queues"][name] = {"type": kind, "size": size}
    client.close()
    return out


def final_checks(campaigns: list[int], sink) -> dict:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from campaigns.models import Delivery
    from contacts.db import db
    from contacts.models import Contact

    statuses: dict[str, int] = {}
    for cid in campaigns:
        for status, n in delivery_counts(cid).items():
            statuses[status] = statuses.get(status, 0) + n
    flagged = set(
        db.session.scalars(
            select(Contact.email)
            .join(Delivery, Delivery.contact_id == Contact.id)
            .where(Delivery.possible_duplicate)
        )
    )
    reached = dict(
        db.session.execute(
            select(Contact.email, func.count())
            .join(Delivery, Delivery.contact_id == Contact.id)
            .where(Delivery.status.in_(("sent", "unknown")))
            .group_by(Contact.email)
        ).all()
    )
    db.session.commit()
    relay, connects, dots = relay_tally(sink.log)
    more = {a: n - reached.get(a, 0) for a, n in relay.items() if n > reached.get(a, 0)}
    fewer = {a: reached[a] - relay.get(a, 0) for a in reached if relay.get(a, 0) < reached[a]}
    return {
        "statuses": statuses,
        "relay_rcpts": sum(relay.values()),
        "relay_dots": dots,
        "relay_connections_opened": connects,
        "db_sent": sum(reached.values()),
        "extra_copies": sum(more.values()),
        "extra_unflagged": sorted(set(more) - flagged)[:20],
        "missing": sum(fewer.values()),
        "flagged": len(flagged),
    }


def run(args: argparse.Namespace) -> dict:
    from bench_send import seed
    from sqlalchemy import select, text

    from contacts.db import db
    from contacts.models import MailingList
    from tests import services
    from webapp import create_app

    workdir = Path(tempfile.mkdtemp(prefix="crieur-bench-soak-"))
    pg = services.start_postgres()
    redis = services.start_redis()
    if pg is None or redis is None:
        raise SystemExit("PostgreSQL and redis-server are needed (see tests/services.py)")
    sink = start_verbose_sink(workdir)
    out: dict = {"args": vars(args).copy(), "load_before": os.getloadavg(),
                 "commit": code_version()}  # fmt: skip
    groups: list[Group] = []
    sampler = None
    try:
        app = create_app(
            {"CRIEUR_DATABASE_URL": pg.url, "CRIEUR_SECRET_KEY": SECRET,
             "CRIEUR_PUBLIC_URL": PUBLIC_URL, "CRIEUR_SMTP_URL": sink.url},
            instance_path=str(workdir / "instance"),
        )  # fmt: skip
        with app.app_context():
            db.create_all()
            org_id, first = seed(args.recipients)
            list_id = db.session.scalar(
                select(MailingList.id).where(MailingList.organisation_id == org_id)
            )
            db.session.execute(text("ANALYZE"))  # as autovacuum keeps a live database
            db.session.commit()
            env = dict(os.environ)
            env.update(
                CRIEUR_BROKER_URL=redis.url, CRIEUR_DATABASE_URL=pg.url,
                CRIEUR_SMTP_URL=sink.url, CRIEUR_SMTP_CONNECTIONS=str(args.connections),
                CRIEUR_SEND_RATE=str(args.rate), CRIEUR_SECRET_KEY=SECRET,
                CRIEUR_PUBLIC_URL=PUBLIC_URL,
                CRIEUR_INSTANCE_PATH=str(workdir / "worker-instance"),
            )  # fmt: skip
            precompile_catalogues(workdir / "worker-instance")
            log = workdir / "workers.log"
            groups = [Group(k, env, log, args.threads).start() for k in range(2)]
            deadline = time.monotonic() + 120
            while log.read_text(errors="replace").count("is ready for action") < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not start:\n" + log.read_text()[-2000:])
                time.sleep(0.2)
            from dramatiq.brokers.redis import RedisBroker

            broker = RedisBroker(url=redis.url)
            broker.declare_queue("send")
            t0 = time.monotonic()
            sampler = Sampler(groups, sink.proc.pid, sink.port, args.sample_seconds, t0)
            threading.Thread(target=sampler.run, daemon=True).start()
            duration = args.minutes * 60
            restart_every = args.restart_minutes * 60
            next_restart = restart_every
            restarts: list[dict] = []
            campaigns: list[dict] = []
            cid = first
            while True:
                started = time.monotonic()
                n = freeze(org_id, cid)
                enqueue_start(broker, cid)
                while campaign_status(cid) != "sent":
                    now = time.monotonic() - t0
                    if next_restart < duration and now >= next_restart:
                        slot = len(restarts) % 2
                        old = groups[slot]
                        old_pid = old.proc.pid if old.proc else 0
                        stop_s = old.terminate()
                        groups[slot] = Group(slot, env, log, args.threads).start()
                        sampler.groups = list(groups)
                        restarts.append({"at": now, "slot": slot, "stop_s": stop_s,
                                         "old_pid": old_pid,
                                         "new_pid": groups[slot].proc.pid})  # fmt: skip
                        print(f"{now / 60:5.1f} min: group {slot} restarted "
                              f"(graceful stop {stop_s:.1f} s)", flush=True)  # fmt: skip
                        next_restart += restart_every
                    if now > duration + 1800:
                        raise TimeoutError(f"campaign {cid} not sent 30 min after the end")
                    time.sleep(0.2)
                took = time.monotonic() - started
                campaigns.append({"id": cid, "recipients": n, "seconds": took})
                print(f"{(time.monotonic() - t0) / 60:5.1f} min: campaign {cid} sent "
                      f"({n:,} in {took:.0f} s)", flush=True)  # fmt: skip
                if time.monotonic() - t0 >= duration:
                    break
                cid = new_campaign(org_id, list_id)
            t_end = time.monotonic() - t0
            time.sleep(2 * args.sample_seconds)  # idle, workers up: the pool's kept connections
            sampler.sample()
            idle_conns = sampler.conns[-1]
            sampler.stop.set()
            stops = [g.terminate() for g in groups]
            time.sleep(1.0)
            sampler.sample()
            out.update(
                seconds=t_end,
                campaigns=campaigns,
                restarts=restarts,
                final_stop_s=stops,
                idle_conns=idle_conns,
                after_stop_conns=sampler.conns[-1],
                rss={str(pid): s for pid, s in sampler.rss.items()},
                cpu={str(pid): s for pid, s in sampler.cpu.items()},
                conns=sampler.conns,
                redis=redis_state(redis.url),
                checks=final_checks([c["id"] for c in campaigns], sink),
                log_tail=log.read_text(errors="replace")[-3000:],
                errors=[line for line in log.read_text(errors="replace").splitlines()
                        if "ERROR" in line or "CRITICAL" in line][:20],
            )  # fmt: skip
            broker.close()
    finally:
        for group in groups:
            if group.proc is not None and group.proc.poll() is None:
                group.terminate(60)
        sink.stop()
        redis.stop()
        pg.stop()
    out["load_after"] = os.getloadavg()
    out["finished"] = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------- report


def _slope(samples: list[tuple[float, int, int]]) -> float:
    """Least-squares slope of RSS in MB per minute."""
    if len(samples) < 3:
        return 0.0
    xs = [s[0] / 60 for s in samples]
    ys = [s[1] / MB for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def analyse(r: dict) -> dict:
    args = r["args"]
    warm = args["warm_seconds"]
    lives = []
    for pid, samples in r["rss"].items():
        if not samples:
            continue
        start, end = samples[0][0], samples[-1][0]
        steady = [s for s in samples if s[0] - start >= max(warm, (end - start) / 2)]
        warm_rss = next((x for x in samples if x[0] - start >= warm), samples[-1])[1]
        cpu = r.get("cpu", {}).get(pid) or []
        busy = (cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0]) if len(cpu) > 1 else None
        lives.append({
            "pid": int(pid), "slot": samples[0][2], "from": start, "to": end,
            "warm": warm_rss, "last": samples[-1][1], "peak": max(s[1] for s in samples),
            "slope": _slope(steady or samples), "samples": len(samples), "busy": busy,
        })  # fmt: skip
    lives.sort(key=lambda x: x["from"])
    cycle = args["restart_minutes"] * 60
    n_cycles = max(1, int(-(-r["seconds"] // cycle)))
    cycles = []
    for k in range(n_cycles):
        inside = [(s[1], s[2]) for samples in r["rss"].values() for s in samples
                  if k * cycle <= s[0] < (k + 1) * cycle]  # fmt: skip
        if inside:
            cycles.append({"k": k, "peak": max(x[0] for x in inside),
                           "mean": sum(x[0] for x in inside) / len(inside)})  # fmt: skip
    sending = [c for c in r["conns"] if c[0] <= r["seconds"]]
    return {
        "lives": lives,
        "cycles": cycles,
        "max_sink_conns": max((c[1] for c in sending), default=0),
        "max_group_conns": max((max(c[2]) for c in sending if c[2]), default=0),
        "max_total_group_conns": max((sum(c[2]) for c in sending), default=0),
    }


def report(r: dict) -> str:
    args = r["args"]
    a = analyse(r)
    checks = r["checks"]
    lb = ", ".join(f"{x:.1f}" for x in r["load_before"])
    la = ", ".join(f"{x:.1f}" for x in r["load_after"])
    bound = args["connections"] * 2
    sent = checks["statuses"].get("sent", 0)
    lines = [
        "# Soak: continuous sending, a worker group restarted on a schedule",
        "",
        f"Run {r['finished']} UTC by `bench/bench_soak.py --minutes "
        f"{args['minutes']:g} --restart-minutes {args['restart_minutes']:g}` on "
        f"{platform.node()}: {os.cpu_count()} CPU cores shared with other work (load average "
        f"{lb} when it started, {la} at the end), Python {platform.python_version()}, code at "
        f"{r.get('commit', 'unknown')}. "
        "PostgreSQL 15 (throw-away, fsync off), Redis, Postfix's `smtp-sink -v`, two worker "
        f"groups `python -m dramatiq webapp.worker_entry -p 1 -t {args['threads']}` with "
        f"CRIEUR_SEND_RATE={args['rate']:g} (messages/s per process) and "
        f"CRIEUR_SMTP_CONNECTIONS={args['connections']}; campaigns of {args['recipients']:,} "
        "recipients (the 12-block newsletter) started one after another; every "
        f"{args['restart_minutes']:g} min one group (alternately) stopped with SIGTERM and a "
        "new one started. Samples every "
        f"{args['sample_seconds']:g} s.",
        "",
        *([r["note"], ""] if r.get("note") else []),
        f"Sent {sent:,} messages in {len(r['campaigns'])} campaigns over "
        f"{r['seconds'] / 60:.1f} min ({sent / r['seconds']:.1f} msg/s, against "
        f"{2 * args['rate']:g} msg/s configured for 2 processes: see the CPU column below); "
        f"{len(r['restarts'])} restarts, graceful stops taking "
        + ", ".join(f"{x['stop_s']:.1f} s" for x in r["restarts"])
        + (" (and " + ", ".join(f"{s:.1f} s" for s in r["final_stop_s"]) + " at the end)."),
        "",
        "## Memory (RSS of each worker process)",
        "",
        f"Per process life: RSS {args['warm_seconds']:g} s after its first sample (warm), "
        "at its last sample, its peak, the least-squares slope over the second half of its "
        "life, and the share of a core it used (CPU seconds over its life).",
        "",
        "| worker process | group | from | to | warm | last | peak | slope, 2nd half | CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for life in a["lives"]:
        busy = "–" if life.get("busy") is None else f"{life['busy'] * 100:.0f} %"
        lines.append(
            f"| {life['pid']} | {life['slot']} | {life['from'] / 60:.1f} min | "
            f"{life['to'] / 60:.1f} min | {life['warm'] / MB:.0f} MB | {life['last'] / MB:.0f} MB "
            f"| {life['peak'] / MB:.0f} MB | {life['slope']:+.2f} MB/min | {busy} |"
        )
    lines += [
        "",
        "Per restart cycle (both groups' worker processes):",
        "",
        "| cycle | minutes | peak RSS | mean RSS |",
        "| ---: | --- | ---: | ---: |",
    ]
    cyc = args["restart_minutes"]
    for c in a["cycles"]:
        lines.append(
            f"| {c['k'] + 1} | {c['k'] * cyc:g}–{(c['k'] + 1) * cyc:g} | {c['peak'] / MB:.0f} MB "
            f"| {c['mean'] / MB:.0f} MB |"
        )
    first, last = a["cycles"][0], a["cycles"][-1]
    growth = round((last["peak"] - first["peak"]) / MB) or 0
    lines += [
        "",
        f"First vs last cycle peak: {first['peak'] / MB:.0f} MB → {last['peak'] / MB:.0f} MB "
        f"({growth:+.0f} MB).",
        "",
        "## SMTP connections",
        "",
        f"- While sending: the relay held at most **{a['max_sink_conns']}** established "
        f"connections (bound: {args['connections']} per process × 2 processes = {bound}); "
        f"one group at most {a['max_group_conns']} sockets to it, both together "
        f"{a['max_total_group_conns']}.",
        f"- Idle at the end, workers still up: relay {r['idle_conns'][1]}, groups "
        f"{r['idle_conns'][2]} (the pool keeps its connections between campaigns).",
        f"- After both groups stopped: relay **{r['after_stop_conns'][1]}**, groups "
        f"{r['after_stop_conns'][2]}.",
        f"- Connections opened in all (smtp-sink log): {checks['relay_connections_opened']} "
        f"for {len(r['restarts']) + 2} worker process lives.",
        "",
        "## Redis at the end",
        "",
        "- Ack sets: "
        + (", ".join(f"`{k}` {v}" for k, v in sorted(r["redis"]["acks"].items())) or "none left")
        + ".",
        "- Other dramatiq keys: "
        + (
            ", ".join(
                f"`{k}` ({v['type']}) {v['size']}" for k, v in sorted(r["redis"]["queues"].items())
            )
            or "none"
        )
        + ".",
        "",
        "## Deliveries",
        "",
        f"- Final statuses: {checks['statuses']}.",
        f"- The relay saw {checks['relay_rcpts']:,} RCPTs ({checks['relay_dots']:,} completed "
        f"messages); the database says {checks['db_sent']:,} sent. Extra copies: "
        f"**{checks['extra_copies']}** (not flagged: {len(checks['extra_unflagged'])}); "
        f"sent rows the relay never saw: **{checks['missing']}**; rows flagged "
        f"`possible_duplicate`: {checks['flagged']}.",
    ]
    if r["errors"]:
        lines += ["- Errors in the worker log:", ""] + [f"      {e[:200]}" for e in r["errors"]]
    lines += ["", "## Against the targets", ""] + verdicts(r, a, growth)
    return "\n".join(lines) + "\n"


def verdicts(r: dict, a: dict, growth: float) -> list[str]:
    def mark(ok: bool) -> str:
        return "met" if ok else "**not met**"

    args, checks = r["args"], r["checks"]
    acks = sum(v for v in r["redis"]["acks"].values() if v > 0)
    long_lives = [life for life in a["lives"] if life["to"] - life["from"] >= 600]
    worst = max((life["slope"] for life in long_lives), default=None)
    first_peak = a["cycles"][0]["peak"] / MB
    flat = abs(growth) <= max(10.0, 0.05 * first_peak) and (worst is None or worst < 0.5)
    final = {k: v for k, v in checks["statuses"].items() if k not in ("sent", "skipped")}
    conns_ok = a["max_sink_conns"] <= args["connections"] * 2 and r["after_stop_conns"][1] == 0
    out = [
        f"- Memory flat: last cycle's peak {growth:+.0f} MB against the first; "
        + (
            f"steepest second-half slope of a process living 10 min or more {worst:+.2f} MB/min"
            if worst is not None
            else "no process lived 10 min (slopes of shorter lives are mostly warm-up)"
        )
        + f" — {mark(flat)} (thresholds: within max(10 MB, 5 %) between cycles, < 0.5 MB/min).",
        f"- No leaked SMTP connections: at most {a['max_sink_conns']} open while sending "
        f"(bound {args['connections'] * 2}), {r['after_stop_conns'][1]} after the stop — "
        f"{mark(conns_ok)}.",
        f"- Redis ack sets empty at the end: {acks} messages left in them — {mark(acks == 0)}.",
        f"- Every delivery sent exactly once or flagged: {checks['extra_copies']} extra, "
        f"{len(checks['extra_unflagged'])} unflagged, {checks['missing']} missing, rows not "
        f"final {final or 0} — "
        f"{mark(not checks['extra_unflagged'] and not checks['missing'] and not final)}.",
    ]
    if args["minutes"] < 60:
        out.append(
            f"- This run lasted {args['minutes']:g} min with a restart every "
            f"{args['restart_minutes']:g}; the target is 1 h with a restart every 10 min: "
            "`.venv/bin/python bench/bench_soak.py --minutes 60 --restart-minutes 10`."
        )
    return out


def previous_summary(r: dict) -> str:
    """Another run's headline figures and verdicts, appended to a report."""
    args = r["args"]
    full = report(r).splitlines()
    lb = ", ".join(f"{x:.1f}" for x in r["load_before"])
    keep = [
        "",
        f"### `--minutes {args['minutes']:g} --restart-minutes {args['restart_minutes']:g} "
        f"--recipients {args['recipients']} --rate {args['rate']:g}`",
        "",
        f"Run {r['finished']} UTC, code at {r.get('commit', 'unknown')}, load average {lb} "
        "at the start." + (f" {r['note']}" if r.get("note") else ""),
        "",
    ]
    keep += [x for x in full if x.startswith(("Sent ", "First vs last cycle peak"))]
    target = full.index("## Against the targets")
    keep += [""] + [
        x for x in full[target + 2 :] if x.startswith("- ") and "This run lasted" not in x
    ]
    return "\n".join(keep) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--restart-minutes", type=float, default=2.0)
    parser.add_argument("--recipients", type=int, default=2000, help="per campaign")
    parser.add_argument("--rate", type=float, default=20.0, help="CRIEUR_SEND_RATE per process")
    parser.add_argument("--connections", type=int, default=4, help="CRIEUR_SMTP_CONNECTIONS")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--sample-seconds", type=float, default=3.0)
    parser.add_argument("--warm-seconds", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="keep the logs in the work folder")
    parser.add_argument("--report", type=Path, default=ROOT / "bench" / "reports" / "soak.md")
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
    raise SystemExit(main())
