"""Real services for the test suite, each started on a free loopback port for the session.

A missing service skips its tests on a developer's machine and fails them in CI
(``CI=true``), so a green CI run means PostgreSQL, Redis, SMTP and Chromium really ran.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_BIN = Path(os.environ.get("CRIEUR_PG_BIN", "/usr/lib/postgresql/15/bin"))


def need(what: str, ok: bool, why: str = "") -> None:
    """Skip (locally) or fail (in CI) when a real service is missing."""
    if ok:
        return
    message = f"{what} unavailable: {why}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


@dataclass
class PostgresServer:
    url: str
    port: int
    datadir: Path
    run_as: list[str]

    def stop(self) -> None:
        subprocess.run(
            [
                *self.run_as,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_postgres() -> PostgresServer | None:
    """A throw-away PostgreSQL cluster (as the ``postgres`` user when we are root)."""
    if not (PG_BIN / "initdb").exists():
        return None
    base = Path(tempfile.mkdtemp(prefix="crieur-pg-"))
    datadir = base / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            return None
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        os.chmod(base, 0o700)
    port = free_port()
    subprocess.run(
        [
            *run_as,
            str(PG_BIN / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "crieur",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        capture_output=True,
    )
    opts = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [
            *run_as,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(datadir),
            "-o",
            opts,
            "-l",
            str(base / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            str(PG_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "crieur",
            "crieur_test",
        ],
        check=True,
        capture_output=True,
    )
    url = f"postgresql+psycopg://crieur@127.0.0.1:{port}/crieur_test"
    return PostgresServer(url=url, port=port, datadir=datadir, run_as=run_as)


@dataclass
class RedisServer:
    url: str
    port: int
    proc: subprocess.Popen

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def restart(self) -> None:
        """Stop and start again on the same port (the fault tests' Redis restart)."""
        self.stop()
        self.proc = _spawn_redis(self.port)


def _spawn_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc=proc)
    return proc


def start_redis() -> RedisServer | None:
    if shutil.which("redis-server") is None:
        return None
    port = free_port()
    return RedisServer(url=f"redis://127.0.0.1:{port}/0", port=port, proc=_spawn_redis(port))


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def mjml_available() -> bool:
    root = Path(__file__).resolve().parents[1]
    return shutil.which("node") is not None and (root / "node_modules" / "mjml").exists()
