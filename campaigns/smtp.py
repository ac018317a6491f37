"""SMTP transports: hand a finished message to a relay and say exactly what happened.

The delivery engine records one of four outcomes per message (RELIABILITY.md, step 5):

- ``sent``: the relay answered 2xx to the final dot;
- ``deferred``: a 4xx, or the connection failed *before* the final dot was sent, so the
  relay cannot have accepted the message: retry later;
- ``failed``: a 5xx; :attr:`SendResult.bad_mailbox` says whether the address itself is
  bad (5.1.x), so the contact should be suppressed;
- ``unknown``: the final dot was sent but no reply came (connection lost, timeout): the
  message may have been delivered. Never retried blindly; listed as a possible duplicate.

To know on which side of the dot a failure happened, :class:`SmtpTransport` runs the
transaction itself (MAIL, RCPT, DATA pipelined when the relay offers PIPELINING, then the
data, then the reply read with a long timeout) over a pool of reused connections, instead
of ``smtplib.SMTP.sendmail`` which hides that distinction.

:class:`OutboxTransport` stores messages instead (the embedded default). Rate limiting is
not done here.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import logging
import re
import select
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from campaigns.message import HeaderValueError, MessageBytes, check_address

log = logging.getLogger(__name__)

DEFAULT_CONNECTIONS = 4
DEFAULT_TIMEOUT = 30.0  # connect and each command
DEFAULT_DATA_TIMEOUT = 600.0  # the reply to the final dot (RFC 5321 §4.5.3.2.6: 10 min)
DEFAULT_MAX_IDLE = 60.0  # an idle pooled connection older than this is replaced

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
_SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class Outcome(enum.StrEnum):
    """What became of one message; the values are ``DeliveryStatus`` values."""

    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Stage(enum.StrEnum):
    """Where the transaction stopped: ``connect`` failures are the relay's, not the address's."""

    ENVELOPE = "envelope"  # an address we refuse to put in an SMTP command
    CONNECT = "connect"  # connect, greeting, EHLO, STARTTLS, AUTH
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # the DATA command or sending the content
    DOT = "dot"  # waiting for the reply to the final dot
    OUTBOX = "outbox"


_EMPTY: Mapping[str, tuple[int, str]] = MappingProxyType({})

_reply_hook = threading.local()


@contextlib.contextmanager
def while_awaiting_reply(callback: Callable[[], None], after: float):
    """Call ``callback`` in this thread when the relay is slow to answer a final dot.

    A relay may take minutes to answer the dot; the sender keeps the outcomes of the
    messages before it in memory until its next group commit. With this hook, a reply
    not there after ``after`` seconds lets the sender commit them first, so they are not
    held (nor re-sent after a crash) for as long as the relay takes. ``callback`` runs at
    most once per message; an exception from it is logged and the reply still awaited.
    """
    previous = getattr(_reply_hook, "value", None)
    _reply_hook.value = (callback, after)
    try:
        yield
    finally:
        _reply_hook.value = previous


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one :meth:`Transport.send`, with the relay's reply when there was one."""

    outcome: Outcome
    code: int | None = None
    message: str = ""
    stage: Stage = Stage.DOT
    # recipients refused while others were accepted: {address: (code, message)}
    refused: Mapping[str, tuple[int, str]] = field(default_factory=lambda: _EMPTY)

    @property
    def enhanced_code(self) -> str:
        """The RFC 3463 status (``"5.1.1"``) at the start of the reply text, or ``""``."""
        m = _ENHANCED.match(self.message)
        return m.group(0) if m else ""

    @property
    def bad_mailbox(self) -> bool:
        """A permanent failure of the address itself (5.1.x): suppress the contact."""
        if self.outcome is not Outcome.FAILED:
            return False
        enhanced = self.enhanced_code
        if enhanced:
            return enhanced.startswith("5.1.")
        return self.stage is Stage.RCPT and self.code in (550, 551, 553)


class Transport(abc.ABC):
    """Something that takes a finished message for delivery. Thread-safe."""

    @abc.abstractmethod
    def send(self, sender: str, recipients: list[str], raw: bytes) -> SendResult:
        """Hand ``raw`` (CRLF message bytes) over for ``recipients``; never raises for SMTP."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the transport must not be used afterwards."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------ outbox


class OutboxTransport(Transport):
    """Stores messages instead of sending them (the embedded default, and tests).

    ``store(sender, recipients, raw)`` is called for each message; without one, messages
    are kept in :attr:`messages`. An exception from ``store`` propagates: a failed database
    write is not an SMTP outcome.
    """

    def __init__(self, store: Callable[[str, list[str], bytes], None] | None = None) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self._lock = threading.Lock()
        self._store = store

    def send(self, sender: str, recipients: list[str], raw: bytes) -> SendResult:
        try:
            sender = check_address(sender)
            recipients = [check_address(r) for r in recipients]
        except HeaderValueError as exc:
            return SendResult(Outcome.FAILED, None, str(exc), Stage.ENVELOPE)
        if self._store is not None:
            self._store(sender, recipients, raw)
        else:
            with self._lock:
                self.messages.append((sender, recipients, raw))
        return SendResult(Outcome.SENT, 250, "2.0.0 stored in outbox", Stage.OUTBOX)


# -------------------------------------------------------------------------------- SMTP


def prepare_data(raw: bytes) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, ending with ``CRLF.CRLF``."""
    if type(raw) is MessageBytes:  # built by campaigns.message: already clean
        return raw + b".\r\n"
    n_crlf = raw.count(b"\r\n")
    if raw.count(b"\n") != n_crlf or raw.count(b"\r") != n_crlf:
        raw = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    if raw[:1] == b".":
        raw = b"." + raw
    raw = raw.replace(b"\r\n.", b"\r\n..")
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw + b".\r\n"


class _Dropped(Exception):  # noqa: N818 - internal signal, not an error for callers
    """The connection failed before the final dot was sent (so nothing was accepted)."""

    def __init__(self, stage: Stage, code: int | None, message: str) -> None:
        super().__init__(message)
        self.stage, self.code, self.message = stage, code, message


def _text(msg: bytes | str) -> str:
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


class _ConnectionMixin:
    """One SMTP session able to run a transaction and say where it failed."""

    pipelining: bool = False
    last_used: float = 0.0
    messages_sent: int = 0

    # provided by smtplib.SMTP
    sock: Any
    send: Callable[[bytes | str], None]
    getreply: Callable[[], tuple[int, bytes]]
    putcmd: Callable[..., None]
    close: Callable[[], None]

    def transact(
        self, sender: str, recipients: list[str], data: bytes, data_timeout: float
    ) -> SendResult:
        """MAIL, RCPT…, DATA, content, dot. Raises _Dropped before the dot; else a result."""
        commands = [f"MAIL FROM:<{sender}>\r\n".encode("ascii")] + [
            f"RCPT TO:<{r}>\r\n".encode("ascii") for r in recipients
        ]
        stage = Stage.MAIL
        try:
            if self.pipelining:
                self.send(b"".join(commands) + b"DATA\r\n")
                mail_reply = self.getreply()
                stage = Stage.RCPT
                rcpt_replies = [self.getreply() for _ in recipients]
                stage = Stage.DATA
                data_reply = self.getreply()
            else:
                self.send(commands[0])
                mail_reply = self.getreply()
                rcpt_replies = []
                data_reply = (0, b"")
                if mail_reply[0] == 250:
                    stage = Stage.RCPT
                    for command in commands[1:]:
                        self.send(command)
                        rcpt_replies.append(self.getreply())
                    if any(code in (250, 251) for code, _ in rcpt_replies):
                        stage = Stage.DATA
                        self.send(b"DATA\r\n")
                        data_reply = self.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Dropped(stage, None, str(exc)) from exc

        code, msg = mail_reply
        if code != 250:
            return self._refused(code, msg, Stage.MAIL, data_reply[0] == 354)
        accepted: list[str] = []
        refused: dict[str, tuple[int, str]] = {}
        for rcpt, (rcode, rmsg) in zip(recipients, rcpt_replies, strict=True):
            if rcode in (250, 251):
                accepted.append(rcpt)
            else:
                refused[rcpt] = (rcode, _text(rmsg))
        if not accepted:
            if any(c == 421 for c, _ in refused.values()):
                raise _Dropped(Stage.RCPT, 421, next(iter(refused.values()))[1])
            codes = [c for c, _ in refused.values()]
            worst = min(refused.values(), key=lambda cm: cm[0])  # a 4xx defers the lot
            outcome = Outcome.FAILED if all(c >= 500 for c in codes) else Outcome.DEFERRED
            self._reset(after_354=data_reply[0] == 354)
            return SendResult(outcome, worst[0], worst[1], Stage.RCPT, refused)
        code, msg = data_reply
        if code != 354:
            return self._refused(code, msg, Stage.DATA, False)

        try:
            self.send(data)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Dropped(Stage.DATA, None, str(exc)) from exc
        # From here on the relay may have the message: any failure is "unknown".
        try:
            self._while_slow(data_timeout)
            self.sock.settimeout(data_timeout)
            code, msg = self.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            return SendResult(Outcome.UNKNOWN, None, f"no reply to the final dot: {exc}")
        self.last_used = time.monotonic()
        with contextlib.suppress(OSError, AttributeError):
            self.sock.settimeout(self._command_timeout)  # type: ignore[attr-defined]
        text = _text(msg)
        if 200 <= code < 300:
            self.messages_sent += 1
            return SendResult(Outcome.SENT, code, text, Stage.DOT, MappingProxyType(refused))
        if code == 421:
            self.close()
        outcome = Outcome.FAILED if code >= 500 else Outcome.DEFERRED
        return SendResult(outcome, code, text, Stage.DOT, MappingProxyType(refused))

    def _while_slow(self, data_timeout: float) -> None:
        """Run the :func:`while_awaiting_reply` hook if the dot's reply is late."""
        hook = getattr(_reply_hook, "value", None)
        if hook is None or self.sock is None:
            return
        callback, after = hook
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return  # the reply is already here
        ready, _, _ = select.select([self.sock], [], [], min(after, data_timeout))
        if ready:
            return
        try:
            callback()
        except Exception:
            log.warning("callback while awaiting the relay's reply failed", exc_info=True)

    def _refused(self, code: int, msg: bytes, stage: Stage, after_354: bool) -> SendResult:
        if code == 421:  # the relay is closing this session: not about this message
            self.close()
            raise _Dropped(stage, code, _text(msg))
        self._reset(after_354)
        outcome = Outcome.FAILED if code >= 500 else Outcome.DEFERRED
        return SendResult(outcome, code, _text(msg), stage)

    def _reset(self, after_354: bool) -> None:
        """Leave the session clean for the next message, or close it if it cannot be."""
        try:
            if after_354:  # RFC 2920 §3.1: end the empty DATA the relay opened
                self.send(b".\r\n")
                self.getreply()
            self.putcmd("rset")
            if self.getreply()[0] != 250:
                self.close()
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()
        self.last_used = time.monotonic()

    @property
    def is_open(self) -> bool:
        return self.sock is not None


class _Connection(_ConnectionMixin, smtplib.SMTP):
    pass


class _SslConnection(_ConnectionMixin, smtplib.SMTP_SSL):
    pass


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """A parsed ``CRIEUR_SMTP_URL``: ``smtp://``, ``smtp+starttls://`` or ``smtps://``."""

    scheme: str
    host: str
    port: int
    username: str = ""
    password: str = ""

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """Parse the URL; user and password are percent-decoded (``p%40ss`` is ``p@ss``)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(
                "CRIEUR_SMTP_URL doit être smtp://hôte:port, smtp+starttls://… ou smtps://…"
            )
        return cls(
            scheme=scheme,
            host=parts.hostname,
            port=parts.port or _SCHEMES[scheme],
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )

    def __repr__(self) -> str:  # never print the password
        user = f"{self.username}:***@" if self.username else ""
        return f"SmtpSettings({self.scheme}://{user}{self.host}:{self.port})"


class SmtpTransport(Transport):
    """A pool of up to ``connections`` reused SMTP connections to one relay. Thread-safe.

    A thread calling :meth:`send` takes an idle connection (or opens one while fewer
    than ``connections`` exist, else waits), runs one transaction, and puts it back.
    A pooled connection found closed by the relay before the DATA phase is replaced
    and the message retried once on the fresh one; nothing after DATA is ever retried.
    """

    def __init__(
        self,
        url: str,
        connections: int = DEFAULT_CONNECTIONS,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        data_timeout: float = DEFAULT_DATA_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        max_idle: float = DEFAULT_MAX_IDLE,
    ) -> None:
        if connections < 1:
            raise ValueError("CRIEUR_SMTP_CONNECTIONS doit valoir au moins 1")
        self.settings = SmtpSettings.from_url(url)
        self.connections = connections
        self.timeout = timeout
        self.data_timeout = data_timeout
        self.max_idle = max_idle
        self.local_hostname = local_hostname or socket.gethostname() or "localhost"
        self._ssl_context = ssl_context
        self._slots = threading.BoundedSemaphore(connections)
        self._idle: list[_ConnectionMixin] = []
        self._lock = threading.Lock()
        self._closed = False
        self.connections_opened = 0  # for tests and benchmarks: pool reuse is visible

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _connect(self) -> _ConnectionMixin:
        """A ready session: greeted, EHLO'd, TLS and AUTH done. Raises _Dropped on failure."""
        s = self.settings
        conn: _ConnectionMixin | None = None
        try:
            if s.scheme == "smtps":
                conn = _SslConnection(
                    s.host, s.port, self.local_hostname, timeout=self.timeout,
                    context=self._context(),
                )  # fmt: skip
            else:
                conn = _Connection(s.host, s.port, self.local_hostname, timeout=self.timeout)
            conn._command_timeout = self.timeout  # type: ignore[attr-defined]
            conn.ehlo_or_helo_if_needed()  # type: ignore[attr-defined]
            if s.scheme == "smtp+starttls":
                conn.starttls(context=self._context())  # type: ignore[attr-defined]
                conn.ehlo()  # type: ignore[attr-defined]
            if s.username:
                conn.login(s.username, s.password)  # type: ignore[attr-defined]
            conn.pipelining = conn.has_extn("pipelining")  # type: ignore[attr-defined]
        except smtplib.SMTPResponseException as exc:
            self._discard(conn)
            raise _Dropped(Stage.CONNECT, exc.smtp_code, _text(exc.smtp_error)) from exc
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            self._discard(conn)
            raise _Dropped(Stage.CONNECT, None, f"{type(exc).__name__}: {exc}") from exc
        # Each command group and each message goes out in one write: never wait for an ACK
        # (Nagle + delayed ACK stall the tail of a message by up to 40 ms on real links).
        with contextlib.suppress(OSError, AttributeError):
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.last_used = time.monotonic()
        with self._lock:
            self.connections_opened += 1
        return conn

    @staticmethod
    def _discard(conn: _ConnectionMixin | None) -> None:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _checkout(self) -> _ConnectionMixin | None:
        """An idle open connection, freshest first, or None (the caller opens one)."""
        now = time.monotonic()
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if conn.is_open and now - conn.last_used < self.max_idle:
                    return conn
                self._discard(conn)
        return None

    def _checkin(self, conn: _ConnectionMixin) -> None:
        with self._lock:
            if conn.is_open and not self._closed:
                self._idle.append(conn)
                return
        self._discard(conn)

    def send(self, sender: str, recipients: list[str], raw: bytes) -> SendResult:
        """Send one message; see the module docstring for what each outcome means."""
        if self._closed:
            raise RuntimeError("SmtpTransport is closed")
        try:
            sender = check_address(sender)
            recipients = [check_address(r) for r in recipients]
        except HeaderValueError as exc:
            return SendResult(Outcome.FAILED, None, str(exc), Stage.ENVELOPE)
        if not recipients:
            return SendResult(Outcome.FAILED, None, "no recipient", Stage.ENVELOPE)
        data = prepare_data(raw)
        with self._slots:
            conn = self._checkout()
            for attempt in (1, 2):
                reused = conn is not None
                try:
                    if conn is None:
                        conn = self._connect()
                    result = conn.transact(sender, recipients, data, self.data_timeout)
                except _Dropped as drop:
                    self._discard(conn)
                    conn = None
                    if reused and attempt == 1:
                        continue  # a stale pooled connection: once more on a fresh one
                    return SendResult(Outcome.DEFERRED, drop.code, drop.message, drop.stage)
                self._checkin(conn)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """QUIT every idle connection; connections in use are closed when handed back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.sock.settimeout(2)
                conn.quit()  # type: ignore[attr-defined]
            self._discard(conn)


def transport_from_url(
    url: str | None,
    connections: int = DEFAULT_CONNECTIONS,
    store: Callable[[str, list[str], bytes], None] | None = None,
    **options: Any,
) -> Transport:
    """The transport for ``CRIEUR_SMTP_URL``: empty means the outbox (with ``store``).

    ``options`` go to :class:`SmtpTransport` (``timeout``, ``data_timeout``,
    ``ssl_context``, ``local_hostname``, ``max_idle``).
    """
    if not url or not url.strip():
        return OutboxTransport(store)
    return SmtpTransport(url.strip(), connections, **options)
