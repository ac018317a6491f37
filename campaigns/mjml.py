"""MJML → HTML through one long-lived node process, with a one-process-per-call fallback.

A fresh ``mjml`` process costs ~0.3 s of start-up, too slow for a preview that re-renders
as the officer types, so :class:`MjmlServer` keeps ``mjml_server.js`` running and talks to
it in JSON lines. It is started lazily, restarted when it dies, and killed (and reaped:
no zombie) when a call exceeds its timeout, so a hung compile becomes an error, never a
stuck worker. Calls are serialised by a lock; the process compiles one document at a time
anyway. File-system includes are disabled in the node script (``ignoreIncludes``), and
officer text never reaches MJML as markup in the first place (see :mod:`campaigns.blocks`).

``node_modules`` is found at the repository root (``CRIEUR_NODE_MODULES`` overrides it).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from contacts.db import DomainError
from contacts.i18n import N_, Message

SERVER_SCRIPT = Path(__file__).resolve().with_name("mjml_server.js")
DEFAULT_TIMEOUT = 10.0
START_TIMEOUT = 15.0


class MjmlError(DomainError):
    """The e-mail could not be laid out; ``code`` says why (unavailable, timeout, …)."""

    def __init__(
        self, code: str, message: str, *, params: dict | None = None, **details: object
    ) -> None:
        status = 503 if code != "mjml_invalid" else 400
        super().__init__(code, message, status, params=params, **details)


@dataclass(frozen=True)
class MjmlResult:
    """Compiled HTML and MJML's validation messages, translated into French."""

    html: str
    errors: list[str] = field(default_factory=list)
    raw_errors: list[dict] = field(default_factory=list)


def node_modules_dir() -> Path:
    """The ``node_modules`` holding mjml: ``$CRIEUR_NODE_MODULES`` or the repo root's."""
    env = os.environ.get("CRIEUR_NODE_MODULES")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "node_modules"
        if (candidate / "mjml").is_dir():
            return candidate
    return here.parents[1] / "node_modules"


def node_binary() -> str | None:
    """Path of ``node``, or None when Node.js is not installed."""
    return shutil.which("node")


def is_available() -> bool:
    """Whether node and the mjml package are both present (tests use it to skip)."""
    return node_binary() is not None and (node_modules_dir() / "mjml" / "package.json").is_file()


# ------------------------------------------------------------------ French error messages

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"Attribute (?P<attribute>\S+) is illegal"),
        N_("l'attribut « %(attribute)s » n'est pas permis sur cet élément"),
    ),
    (
        re.compile(r"Attribute (?P<attribute>\S+) has invalid value: (?P<value>.*?) for type"),
        N_("la valeur « %(value)s » de l'attribut « %(attribute)s » n'est pas valide"),
    ),
    (
        re.compile(r"(?P<element>\S+) cannot be used inside (?P<parent>\S+), only inside: (.*)"),
        N_("l'élément « %(element)s » ne peut pas être placé dans « %(parent)s »"),
    ),
    (
        re.compile(r"Element (?P<element>\S+) doesn't exist or is not registered"),
        N_("l'élément « %(element)s » est inconnu"),
    ),
]


def translate_error(error: dict) -> Message:
    """One MJML validation error in plain French (with its line when known), as a ``Message``
    the web edge can translate."""
    message = str(error.get("message") or "")
    text = None
    for pattern, template in _PATTERNS:
        m = pattern.search(message)
        if m:
            text = Message(template, {k: v.strip() for k, v in m.groupdict().items()})
            break
    if text is None:
        text = N_("mise en page incorrecte (%(detail)s)", detail=message[:200])
    line = error.get("line")
    tag = error.get("tagName")
    if line and tag:
        where = N_("ligne %(line)s, <%(tag)s>", line=line, tag=tag)
    elif line:
        where = N_("ligne %(line)s", line=line)
    elif tag:
        where = Message("<%(tag)s>", {"tag": tag})
    else:
        return N_("Mise en page : %(reason)s.", reason=text)
    return N_("Mise en page (%(where)s) : %(reason)s.", where=where, reason=text)


# ----------------------------------------------------------------------- the long process


class MjmlServer:
    """A thread-safe handle on one long-lived ``mjml_server.js`` process."""

    def __init__(
        self,
        *,
        modules_dir: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> None:
        self.modules_dir = modules_dir or node_modules_dir()
        self.timeout = timeout
        self._extra_env = dict(env or {})
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[bytes | None] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=50)
        self._ids = itertools.count(1)
        self.restarts = 0  # how many times a dead or hung process was replaced

    # -- lifecycle
    @property
    def pid(self) -> int | None:
        """The node process id while it runs (tests kill it to check the restart)."""
        proc = self._proc
        return proc.pid if proc and proc.poll() is None else None

    def _start(self) -> None:
        node = node_binary()
        if node is None:
            raise MjmlError(
                "mjml_unavailable",
                "Node.js est introuvable : impossible de mettre en page le message.",
            )
        if not (self.modules_dir / "mjml").is_dir():
            raise MjmlError(
                "mjml_unavailable",
                "Le module mjml est introuvable (node_modules) : lancez « npm install ».",
            )
        # Test hooks only when asked for explicitly, never inherited from the environment.
        env = {k: v for k, v in os.environ.items() if k != "CRIEUR_MJML_TEST_HOOKS"}
        env.update(self._extra_env)
        try:
            proc = subprocess.Popen(  # fixed argv, no shell
                [node, str(SERVER_SCRIPT), str(self.modules_dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=str(SERVER_SCRIPT.parent),
                close_fds=True,
            )
        except OSError as exc:
            raise MjmlError(
                "mjml_unavailable",
                "Le moteur de mise en page n'a pas pu démarrer.",
                detail=str(exc),
            ) from None
        lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(
            target=_pump_lines, args=(proc.stdout, lines), name="mjml-stdout", daemon=True
        ).start()
        threading.Thread(
            target=_pump_stderr, args=(proc.stderr, self._stderr), name="mjml-stderr", daemon=True
        ).start()
        self._proc, self._lines = proc, lines

    def _kill(self) -> None:
        """Kill and reap the process (no zombie); safe to call when it already died."""
        proc, self._proc, self._lines = self._proc, None, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL does not time out
            proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass

    def close(self) -> None:
        """Stop the node process."""
        with self._lock:
            self._kill()

    # -- calls
    def request(self, payload: dict, timeout: float | None = None) -> dict:
        """Send one JSON request and wait for its answer (used by :meth:`compile`, tests)."""
        limit = self.timeout if timeout is None else timeout
        with self._lock:
            if self._proc is not None and self._proc.poll() is not None:
                self._kill()  # died since the last call: reap it, start another
                self.restarts += 1
            if self._proc is None:
                self._start()
            assert self._proc is not None and self._lines is not None
            req_id = next(self._ids)
            data = json.dumps({**payload, "id": req_id}).encode() + b"\n"
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._kill()
                self.restarts += 1
                raise MjmlError(
                    "mjml_crashed", "Le moteur de mise en page s'est arrêté ; réessayez."
                ) from None
            deadline = time.monotonic() + limit
            while True:
                remaining = deadline - time.monotonic()
                try:
                    line = self._lines.get(timeout=max(remaining, 0))
                except queue.Empty:
                    self._kill()
                    self.restarts += 1
                    raise MjmlError(
                        "mjml_timeout",
                        "La mise en page du message a dépassé %(seconds)s s ; elle a été "
                        "interrompue. Réessayez ou simplifiez le message.",
                        params={"seconds": f"{limit:g}"},
                    ) from None
                if line is None:  # EOF: the process died mid-call
                    detail = " ".join(self._stderr)[-300:]
                    self._kill()
                    self.restarts += 1
                    raise MjmlError(
                        "mjml_crashed",
                        "Le moteur de mise en page s'est arrêté ; réessayez.",
                        detail=detail,
                    )
                try:
                    answer = json.loads(line)
                except ValueError:
                    continue  # stray output (a library's console.log): not an answer
                if answer.get("id") == req_id:
                    return answer

    def compile(self, mjml: str, timeout: float | None = None) -> MjmlResult:
        """Compile one MJML document; raises :class:`MjmlError` on crash or timeout."""
        answer = self.request({"mjml": mjml}, timeout)
        if "error" in answer:
            raise MjmlError(
                "mjml_invalid",
                "Mise en page impossible : %(error)s",
                params={"error": answer["error"][:300]},
            )
        raw = list(answer.get("errors") or [])
        return MjmlResult(answer.get("html", ""), [translate_error(e) for e in raw], raw)


def _pump_lines(stream, out: queue.Queue) -> None:  # type: ignore[no-untyped-def]
    try:
        for line in iter(stream.readline, b""):
            out.put(line)
    except (OSError, ValueError):
        pass
    finally:
        out.put(None)


def _pump_stderr(stream, out: collections.deque) -> None:  # type: ignore[no-untyped-def]
    try:
        for line in iter(stream.readline, b""):
            out.append(line.decode("utf-8", "replace").rstrip())
    except (OSError, ValueError):
        pass


# ----------------------------------------------------------------------------- CLI fallback

# "Line 1 of /path (mj-text) — Attribute foo is illegal"
_CLI_ERROR_RE = re.compile(r"^Line (\d+) of .*? \((\S+)\) \W+ (.*)$")


def compile_with_cli(
    mjml: str, *, timeout: float = DEFAULT_TIMEOUT, modules_dir: Path | None = None
) -> MjmlResult:
    """Compile with a fresh ``node_modules/.bin/mjml`` process (slow: for fallback and bench)."""
    modules = modules_dir or node_modules_dir()
    cli = modules / ".bin" / "mjml"
    if node_binary() is None or not cli.exists():
        raise MjmlError("mjml_unavailable", "Le compilateur mjml est introuvable (node_modules).")
    args = [
        str(cli),
        "-i",
        "-s",
        "--config.validationLevel=soft",
        "--config.ignoreIncludes=true",
        "--config.keepComments=false",
        "--config.fonts={}",
        "--noStdoutFileComment",
    ]
    try:
        done = subprocess.run(  # fixed argv, no shell; on timeout run() kills and reaps
            args, input=mjml.encode(), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise MjmlError(
            "mjml_timeout",
            "La mise en page du message a dépassé %(seconds)s s.",
            params={"seconds": f"{timeout:g}"},
        ) from None
    if done.returncode != 0 and not done.stdout:
        raise MjmlError(
            "mjml_invalid",
            "Mise en page impossible : %(error)s",
            params={"error": done.stderr.decode("utf-8", "replace")[:300]},
        )
    errors = []
    for line in done.stderr.decode("utf-8", "replace").splitlines():
        m = _CLI_ERROR_RE.match(line.strip())
        if m:
            errors.append({"line": int(m[1]), "tagName": m[2], "message": m[3]})
    return MjmlResult(done.stdout.decode(), [translate_error(e) for e in errors], errors)


# ------------------------------------------------------------------------ module interface

_default: MjmlServer | None = None
_default_lock = threading.Lock()


def get_server() -> MjmlServer:
    """The process-wide server (started on first use, stopped at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MjmlServer()
            atexit.register(_default.close)
        return _default


def compile_mjml(mjml: str, *, timeout: float | None = None) -> MjmlResult:
    """MJML → HTML through the long-lived process.

    When that process cannot start or dies during the call, one fresh ``mjml`` process is
    tried instead (slower, but the officer gets the preview); a timeout is not retried,
    since the same document would most likely hang again.
    """
    server = get_server()
    try:
        return server.compile(mjml, timeout)
    except MjmlError as exc:
        if exc.code not in ("mjml_unavailable", "mjml_crashed"):
            raise
        if not (server.modules_dir / ".bin" / "mjml").exists():
            raise
    limit = timeout or DEFAULT_TIMEOUT
    return compile_with_cli(mjml, timeout=limit, modules_dir=server.modules_dir)
