"""How fast can Python push 14 KB messages into Postfix's smtp-sink, bare and through Crieur?

Runs, each with N messages over C connections (one thread per connection):

1. ``bare``: a bare smtplib loop (``SMTP.sendmail``) of one pre-built message: the ceiling
   DESIGN.md quotes (~6,000 messages/s on 2 cores).
2. ``transport``: the same pre-built message through :class:`campaigns.smtp.SmtpTransport`
   (pool, pipelining, outcome classification).
3. ``render+transport``: :meth:`MessageTemplate.render` per recipient, then the transport:
   what the delivery engine does per message, minus the database.

plus single-thread microbenchmarks of ``render`` (with and without DKIM).

Usage: ``python bench/bench_bare_smtp.py [--messages 20000] [--connections 4]
[--report bench/reports/smtp.md]``. The pieces (``start_sink``, ``bare_loop``,
``threaded_sends``, ``sample_template``) are importable by the end-to-end sending bench.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from campaigns.message import MessageTemplate, ics_attachment  # noqa: E402
from campaigns.smtp import Outcome, SmtpTransport  # noqa: E402
from tests.smtp_servers import SinkProcess, start_smtp_sink, stop_process  # noqa: E402

SENDER = "communication@mairie-exemple.fr"
UNSUB = "https://crieur.mairie-exemple.fr/u/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-"

_PARAGRAPH = (
    '<tr><td style="padding:0 24px;font-family:Marianne,Arial,sans-serif;font-size:16px;'
    'line-height:24px;color:#161616">La commune organise samedi la fête de quartier : '
    "animations, marché des producteurs et concert sur la place de la mairie. "
    '<a href="https://crieur.mairie-exemple.fr/c/Xy12AbCd" style="color:#000091">'
    "Voir le programme</a></td></tr>\n"
)
_TEXT_LINE = (
    "La commune organise samedi la fête de quartier : animations, marché des producteurs "
    "et concert sur la place de la mairie.\n"
)


def sample_bodies(size: int = 14_000) -> tuple[str, str]:
    """An HTML and a text body whose encoded message is about ``size`` bytes."""
    html_bytes = int(size * 0.62)  # base64 adds a third; the text part takes ~15 %
    text_bytes = int(size * 0.13)
    html = _PARAGRAPH * max(1, html_bytes // len(_PARAGRAPH.encode()))
    text = _TEXT_LINE * max(1, text_bytes // len(_TEXT_LINE.encode()))
    return f"<html><body><table>\n{html}</table></body></html>", "Bonjour Zoé,\n\n" + text


def sample_template(dkim: object | None = None, attachment: bool = False) -> MessageTemplate:
    return MessageTemplate(
        sender_email=SENDER,
        sender_name="Mairie d'Exemple-sur-Loire",
        subject="Lettre d'information de février : fêtes, travaux et conseil municipal",
        org_domain="mairie-exemple.fr",
        reply_to="accueil@mairie-exemple.fr",
        list_id="lettre.mairie-exemple.fr",
        list_name="Lettre d'information",
        feedback_id="c1:o1:newsletter:crieur",
        attachment=ics_attachment(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n") if attachment else None,
        dkim=dkim,  # type: ignore[arg-type]
    )


def sample_message(size: int = 14_000) -> bytes:
    """One pre-built message of about ``size`` bytes, as the bare loop sends it."""
    html, text = sample_bodies(size)
    t = sample_template()
    return t.render(
        "zoe@exemple.fr", "Zoé Lefèvre", t.message_id_for(1, "bench"), html, text, UNSUB
    )


@contextlib.contextmanager
def start_sink() -> Iterator[SinkProcess]:
    """smtp-sink without dumps (the fast mode) on a free loopback port: ``(host, port, proc)``."""
    sink = start_smtp_sink(args=("-m", "64"))
    try:
        yield sink
    finally:
        stop_process(sink.proc)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def measured(results: dict[str, float], name: str, n: int, sink_pid: int) -> Iterator[None]:
    """Record wall seconds, and client and sink CPU microseconds a message, under ``name``."""
    cpu, sink_cpu, wall = time.process_time(), process_cpu_seconds(sink_pid), time.perf_counter()
    yield
    results[f"{name}_s"] = time.perf_counter() - wall
    results[f"{name}_cpu_us"] = (time.process_time() - cpu) / n * 1e6
    results[f"{name}_sink_cpu_us"] = (process_cpu_seconds(sink_pid) - sink_cpu) / n * 1e6


def threaded_sends(n: int, threads: int, send_one: Callable[[int], None]) -> float:
    """Run ``send_one(i)`` for i in range(n) over ``threads`` threads; wall seconds."""
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        barrier.wait()
        try:
            for i in range(k, n, threads):
                send_one(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def bare_loop(host: str, port: int, raw: bytes, n: int, connections: int = 4) -> float:
    """``n`` sends of ``raw`` with plain smtplib over ``connections`` threads; wall seconds."""
    local = threading.local()
    clients: list[smtplib.SMTP] = []
    lock = threading.Lock()

    def send_one(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = smtplib.SMTP(host, port, "bench.local", timeout=30)
            with lock:
                clients.append(client)
        client.sendmail(SENDER, [f"r{i}@exemple.fr"], raw)

    try:
        return threaded_sends(n, connections, send_one)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.quit()


def transport_loop(
    transport: SmtpTransport, n: int, connections: int, make: Callable[[int], bytes]
) -> float:
    """``n`` sends of ``make(i)`` through ``transport``; wall seconds. Fails on non-sent."""

    def send_one(i: int) -> None:
        result = transport.send(SENDER, [f"r{i}@exemple.fr"], make(i))
        if result.outcome is not Outcome.SENT:
            raise RuntimeError(f"message {i}: {result}")

    return threaded_sends(n, connections, send_one)


def micro(fn: Callable[[], object], n: int) -> float:
    """Microseconds per call of ``fn`` in one thread."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def dkim_signer() -> object | None:
    """A DkimSigner with a throw-away 2048-bit key, or None without openssl."""
    from campaigns.dkim import DkimSigner

    if not shutil.which("openssl"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "k.pem"
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
        return DkimSigner("mairie-exemple.fr", "bench", key.read_bytes())


def run(n: int, connections: int, size: int) -> dict[str, float]:
    html, text = sample_bodies(size)
    template = sample_template()
    raw = sample_message(size)
    results: dict[str, float] = {"size": len(raw)}

    def render(i: int) -> bytes:
        return template.render(
            f"r{i}@exemple.fr",
            "Zoé Lefèvre",
            template.message_id_for(i, "bench"),
            html,
            text,
            UNSUB,
        )

    results["render_us"] = micro(lambda: render(7), 5000)
    signer = dkim_signer()
    if signer is not None:
        signed = sample_template(dkim=signer)
        results["render_dkim_us"] = micro(
            lambda: signed.render("z@exemple.fr", "Zoé", "<1@x.fr>", html, text, UNSUB), 300
        )
    with start_sink() as (host, port, proc):
        with measured(results, "bare", n, proc.pid):
            bare_loop(host, port, raw, n, connections)
        with SmtpTransport(f"smtp://{host}:{port}", connections) as transport:
            with measured(results, "transport", n, proc.pid):
                transport_loop(transport, n, connections, lambda i: raw)
            with measured(results, "pipeline", n, proc.pid):
                transport_loop(transport, n, connections, render)
            results["connections_opened"] = transport.connections_opened
    results["load"] = os.getloadavg()[0]
    return results


def idle_estimate(client_cpu_us: float, sink_cpu_us: float, cores: int = 2) -> float:
    """Messages/s on an otherwise idle machine: the client is bound by one core (the GIL),
    client and sink together by all cores."""
    return min(1e6 / client_cpu_us, cores * 1e6 / (client_cpu_us + sink_cpu_us))


def report(results: dict[str, float], n: int, connections: int) -> str:
    bare = n / results["bare_s"]
    transport = n / results["transport_s"]
    pipeline = n / results["pipeline_s"]
    lines = [
        "# SMTP throughput: bare loop vs Crieur's render + transport",
        "",
        f"Measured by `bench/bench_bare_smtp.py --messages {n} --connections {connections}` "
        f"on {platform.node() or 'this machine'} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}), against Postfix's `smtp-sink` on loopback. "
        f"Message size {int(results['size'])} bytes (multipart/alternative, "
        "QP text + base64 HTML).",
        "",
        "| run | messages/s | vs bare | client CPU µs/msg | smtp-sink CPU µs/msg "
        "| idle 2-core estimate, msg/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label, rate in (
        ("bare", "bare smtplib loop, pre-built message", bare),
        ("transport", "SmtpTransport, pre-built message", transport),
        ("pipeline", "MessageTemplate.render + SmtpTransport", pipeline),
    ):
        client, sink = results[key + "_cpu_us"], results[key + "_sink_cpu_us"]
        lines.append(
            f"| {label} | {rate:,.0f} | {rate / bare:.2f} | {client:.0f} | {sink:.0f} "
            f"| {idle_estimate(client, sink):,.0f} |"
        )
    lines += [
        "",
        f"- 1-minute load average at the end: {results['load']:.1f} (other work shares the "
        "machine; absolute rates move with it, CPU per message much less).",
        f"- `render` alone, one thread: {results['render_us']:.1f} µs a message.",
    ]
    if "render_dkim_us" in results:
        lines.append(
            f"- `render` with a DKIM signature (RSA-2048): {results['render_dkim_us']:.0f} µs."
        )
    lines.append(
        f"- Connections opened by the transport pool: {int(results['connections_opened'])}."
    )
    lines += [
        "",
        "## Reading it",
        "",
        "- The machine is shared: messages/s is what this run got, the CPU columns are what",
        "  each message costs. The estimate column turns them into the rate of an idle 2-core",
        "  machine: the Python client is bound to one core by the GIL, client and smtp-sink",
        "  share both (an upper bound: it ignores scheduling and the loopback's own cost).",
        "  DESIGN.md's ~6,000 messages/s for the bare loop is of that order.",
        "- `SmtpTransport` costs less CPU than `smtplib.sendmail`: MAIL, RCPT and DATA go in",
        "  one write when the relay offers PIPELINING (2 round trips a message instead of 4),",
        "  and messages built by `MessageTemplate` (`MessageBytes`) skip the line-end and",
        "  dot-stuffing scans that smtplib does with regular expressions on every message.",
        "- `render` (base64 of the HTML, quoted-printable of the text, per-recipient headers)",
        "  adds its own CPU on top, still leaving render + send at or above the bare loop:",
        "  DESIGN's target for the whole pipeline (half the bare loop) leaves the other half",
        "  for personalisation, the database and Dramatiq.",
        "- DKIM costs one RSA-2048 signature a message (with the `cryptography` package;",
        "  ~6.7 ms in pure Python without it). At that price a body that signs in Crieur is",
        "  limited to roughly 1,000-1,500 messages/s per core; bodies sending large volumes",
        "  should have their relay (OpenDKIM on Postfix) sign instead.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--size", type=int, default=14_000)
    parser.add_argument("--report", type=Path, help="write the Markdown table there too")
    args = parser.parse_args(argv)
    results = run(args.messages, args.connections, args.size)
    text = report(results, args.messages, args.connections)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
