"""Real SMTP servers on loopback for tests and benchmarks.

- :func:`start_smtp_sink`: Postfix's ``smtp-sink``, the fast server used for throughput,
  optionally dumping every message to files (:func:`sink_messages` reads them back).
- :class:`RecordingSMTPServer`: an aiosmtpd server in a thread that records messages and
  can be scripted: 4xx/5xx for chosen recipients, a connection dropped at DATA or after
  the final dot, a slow final reply, STARTTLS/implicit TLS, AUTH, PIPELINING.

Both speak SMTP over TCP on 127.0.0.1. The pytest fixtures ``smtp_sink`` and
``recording_smtp`` at the bottom can be imported into a conftest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.services import need

SMTP_SINK = "/usr/sbin/smtp-sink"


def have_smtp_sink() -> bool:
    return os.access(SMTP_SINK, os.X_OK)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free at the time of the call (the caller binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


# ------------------------------------------------------------------------------ smtp-sink


class SinkProcess(NamedTuple):
    host: str
    port: int
    proc: subprocess.Popen[bytes]


def sink_dump_dir(tmpdir: str | os.PathLike[str]) -> Path:
    return Path(tmpdir) / "smtp-sink"


def start_smtp_sink(
    tmpdir: str | os.PathLike[str] | None = None,
    *,
    args: tuple[str, ...] = (),
    host: str = "127.0.0.1",
    backlog: int = 256,
) -> SinkProcess:
    """Start ``smtp-sink`` on a free port; ``(host, port, proc)``.

    With ``tmpdir``, each message is dumped to a file under ``tmpdir/smtp-sink/`` (slow:
    for correctness tests, not benchmarks). ``args`` adds smtp-sink options, e.g.
    ``("-r", "RCPT")`` to answer 4xx to every RCPT. Stop it with :func:`stop_process`.
    """
    if not have_smtp_sink():
        raise FileNotFoundError(SMTP_SINK)
    command = [SMTP_SINK, "-4"]
    if os.geteuid() == 0:
        command += ["-u", "root"]  # required when started as root; root keeps the dumps readable
    if tmpdir is not None:
        dump = sink_dump_dir(tmpdir)
        dump.mkdir(parents=True, exist_ok=True)
        command += ["-d", f"{dump}/msg."]
    last_error: Exception | None = None
    for _ in range(5):  # another process may take the port between the probe and the bind
        port = free_port(host)
        proc = subprocess.Popen(
            [*command, *args, f"{host}:{port}", str(backlog)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(host, port)
        except OSError as exc:
            last_error = exc
            stop_process(proc)
            continue
        if proc.poll() is None:
            return SinkProcess(host, port, proc)
    raise RuntimeError(f"smtp-sink did not start: {last_error}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stderr:
        proc.stderr.close()


def sink_messages(tmpdir: str | os.PathLike[str]) -> list[bytes]:
    """The messages smtp-sink dumped, oldest first, without its own X-*/Received lines.

    smtp-sink writes LF line ends and undoes dot-stuffing; the result uses CRLF again so
    it compares with what was sent.
    """
    files = sorted(sink_dump_dir(tmpdir).glob("msg.*"), key=lambda p: p.stat().st_mtime_ns)
    out = []
    for path in files:
        lines = path.read_bytes().split(b"\n")
        # skip X-Client-Addr ... X-Rcpt-Args, then the 3-line Received header
        i = next(n for n, line in enumerate(lines) if line.startswith(b"Received:")) + 1
        while i < len(lines) and lines[i].startswith((b"\t", b" ")):
            i += 1
        body = lines[i:]
        if body and body[-1] == b"":
            body = body[:-1]  # the newline ending the last line
        if body and body[-1] == b"":
            body = body[:-1]  # the empty line smtp-sink adds after each message
        out.append(b"\r\n".join(body) + b"\r\n")
    return out


# -------------------------------------------------------------------------------- TLS


def make_self_signed_cert(directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 and localhost: ``(certfile, keyfile)``."""
    directory = Path(directory)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            shutil.which("openssl") or "openssl",
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def client_tls_context(cert: Path) -> ssl.SSLContext:
    """A client context trusting only the throw-away certificate (hostname checked)."""
    return ssl.create_default_context(cafile=str(cert))


# ----------------------------------------------------------------------- aiosmtpd server


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Script:
    """How the recording server misbehaves; change it between sends."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> "550 5.1.1 ..."
    data_replies: dict[str, str] = field(default_factory=dict)  # address -> final-dot reply
    drop_on_data: set[str] = field(default_factory=set)  # close at DATA, before 354
    drop_after_dot: set[str] = field(default_factory=set)  # close instead of replying
    reply_delay: float = 0.0  # seconds before answering the final dot


class RecordingSMTPServer:
    """An aiosmtpd server on 127.0.0.1 that records and can be scripted to fail."""

    def __init__(
        self,
        *,
        starttls_context: ssl.SSLContext | None = None,
        implicit_tls_context: ssl.SSLContext | None = None,
        credentials: dict[str, str] | None = None,
        pipelining: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

        self.host = host
        self.port = free_port(host)
        self.script = Script()
        self.messages: list[ReceivedMessage] = []
        self.connections = 0
        self._protocols: set[Any] = set()
        self._lock = threading.Lock()
        server = self

        class Handler:
            async def handle_EHLO(self, smtp, session, envelope, hostname, responses):  # noqa: N802
                session.host_name = hostname
                if pipelining:
                    responses.insert(-1, "250-PIPELINING")
                return responses

            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):  # noqa: N802
                reply = server.script.rcpt_replies.get(address)
                if reply:
                    return reply
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 OK"

            async def handle_DATA(self, smtp, session, envelope):  # noqa: N802
                script = server.script
                if script.reply_delay:
                    await asyncio.sleep(script.reply_delay)
                if any(r in script.drop_after_dot for r in envelope.rcpt_tos):
                    with server._lock:  # it did arrive: the client just never hears so
                        server.messages.append(
                            ReceivedMessage(
                                envelope.mail_from,
                                list(envelope.rcpt_tos),
                                envelope.original_content,
                            )
                        )
                    smtp.transport.abort()
                    return "250 OK (never seen)"
                for r in envelope.rcpt_tos:
                    if r in script.data_replies:
                        return script.data_replies[r]
                with server._lock:
                    server.messages.append(
                        ReceivedMessage(
                            envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                        )
                    )
                return "250 2.0.0 OK queued"

        class ScriptedSMTP(SMTP):
            def connection_made(self, transport):
                if self.transport is None:  # not the second call after STARTTLS
                    with server._lock:
                        server.connections += 1
                        server._protocols.add(self)
                super().connection_made(transport)

            def connection_lost(self, error):
                with server._lock:
                    server._protocols.discard(self)
                super().connection_lost(error)

            async def smtp_DATA(self, arg):  # noqa: N802
                if self.envelope and any(
                    r in server.script.drop_on_data for r in self.envelope.rcpt_tos
                ):
                    self.transport.abort()
                    return
                await super().smtp_DATA(arg)

        def authenticator(smtp, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and credentials is not None
                and credentials.get(auth_data.login.decode()) == auth_data.password.decode()
            )
            return AuthResult(success=ok, handled=False)  # False: the server answers 535

        kwargs: dict[str, Any] = {"enable_SMTPUTF8": False}
        if starttls_context is not None:
            kwargs.update(tls_context=starttls_context, require_starttls=True)
        if credentials is not None:
            # aiosmtpd only counts STARTTLS as TLS; over implicit TLS it must not wait for it
            kwargs.update(
                authenticator=authenticator, auth_require_tls=implicit_tls_context is None
            )
        else:
            kwargs.update(auth_require_tls=False)

        class ScriptedController(Controller):
            def factory(self):
                return ScriptedSMTP(self.handler, **self.SMTP_kwargs)

        self._controller = ScriptedController(
            Handler(),
            hostname=host,
            port=self.port,
            ssl_context=implicit_tls_context,
            **kwargs,
        )

    @property
    def url_hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> RecordingSMTPServer:
        self._controller.start()
        with self._lock:
            self.connections = 0  # the controller's own readiness probe
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> RecordingSMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def drop_idle_connections(self) -> None:
        """Close every open session, as a relay does with idle ones (stale pool test)."""
        loop = self._controller.loop
        done = threading.Event()

        def close_all() -> None:
            for proto in list(self._protocols):
                if proto.transport is not None:
                    proto.transport.abort()
            done.set()

        loop.call_soon_threadsafe(close_all)
        done.wait(5)
        time.sleep(0.05)  # let the FIN reach the client's socket

    def recipients(self) -> list[str]:
        with self._lock:
            return [r for m in self.messages for r in m.rcpt_tos]


# ------------------------------------------------------------------------------ fixtures


@dataclass
class SinkHandle:
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    tmpdir: Path

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def messages(self, count: int | None = None, timeout: float = 5.0) -> list[bytes]:
        """The dumped messages; waits until ``count`` are there (files are written async)."""
        deadline = time.monotonic() + timeout
        while True:
            found = sink_messages(self.tmpdir)
            if count is None or len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SinkHandle]:
    """smtp-sink dumping messages under tmp_path (skipped locally if not installed)."""
    need("smtp-sink", have_smtp_sink(), f"{SMTP_SINK} not found")
    host, port, proc = start_smtp_sink(tmp_path)
    try:
        yield SinkHandle(host, port, proc, tmp_path)
    finally:
        stop_process(proc)


@pytest.fixture
def recording_smtp() -> Iterator[RecordingSMTPServer]:
    """A plain scriptable aiosmtpd server (no TLS, no AUTH)."""
    need("aiosmtpd", _have_aiosmtpd(), "pip install aiosmtpd")
    with RecordingSMTPServer() as server:
        yield server


def _have_aiosmtpd() -> bool:
    with contextlib.suppress(ImportError):
        import aiosmtpd  # noqa: F401

        return True
    return False
