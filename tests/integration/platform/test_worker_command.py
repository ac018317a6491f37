"""``crieur worker`` becomes a Dramatiq worker whose lanes spread over its processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.redis, pytest.mark.backends("sqlite")]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_crieur_worker_execs_dramatiq_with_one_prefetched_message_per_thread(
    app, redis_url, tmp_path
):
    env = {
        **os.environ,
        "CRIEUR_BROKER_URL": redis_url,
        "CRIEUR_DATABASE_URL": app.config["CRIEUR_DATABASE_URL"],
        "CRIEUR_SECRET_KEY": app.config["CRIEUR_SECRET_KEY"],
        "CRIEUR_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    env.pop("dramatiq_queue_prefetch", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "webapp.cli", "worker", "--processes", "1", "--threads", "3"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        cmdline = b""
        while time.monotonic() < deadline and b"dramatiq" not in cmdline:
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            time.sleep(0.05)
        assert b"dramatiq\0webapp.worker_entry" in cmdline
        assert b"-t\x003" in cmdline
        assert _environ(proc.pid)["dramatiq_queue_prefetch"] == "3"
    finally:  # nothing was queued: no need for a graceful stop
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
