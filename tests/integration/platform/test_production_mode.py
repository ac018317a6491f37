"""Production topology: web and worker as separate processes, Dramatiq over a real Redis,
PostgreSQL as the database, the JSON API as the client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from contacts.db import db
from tests.services import free_port, wait_for_port

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.backends("postgres")]


def _env(app, redis_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    env.update(
        CRIEUR_DATABASE_URL=app.config["CRIEUR_DATABASE_URL"],
        CRIEUR_BROKER_URL=redis_url,
        CRIEUR_SECRET_KEY=app.config["CRIEUR_SECRET_KEY"],
        CRIEUR_INSTANCE_PATH=str(tmp_path / "shared-instance"),
        CRIEUR_PUBLIC_URL="https://crieur.test",
    )
    return env


def _call(base: str, token: str, method: str, path: str, body: bytes | None = None,
          content_type: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(base + "/api/v1" + path, data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode() + content
                 + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_an_import_travels_through_redis_to_a_separate_worker_process(
    app, redis_url, tmp_path, api
):
    officer = api("officer")
    db.session.commit()
    env = _env(app, redis_url, tmp_path)
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "webapp.cli", "run", "--port", str(port)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    worker = subprocess.Popen([sys.executable, "-m", "dramatiq", "webapp.worker_entry", "-p", "1",
                               "-t", "2", "-Q", "imports"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            wait_for_port(port, timeout=60, proc=web)
        except RuntimeError as exc:  # show why the web process did not start
            raise AssertionError(web.stderr.read().decode(errors="replace")[-3000:]) from exc
        base = f"http://127.0.0.1:{port}"
        status, created = _call(base, officer.token, "POST", "/lists",
                                json.dumps({"name": "Lettre", "purpose": "newsletter",
                                            "double_opt_in": False}).encode(),
                                "application/json")
        assert status == 201, created
        csv = "Courriel;Prénom;Nom\r\nmarie@example.fr;Marie;Curie\r\npas-une-adresse;X;Y\r\n"
        body, ctype = _multipart(
            {"source": "internal_file", "legal_basis": "public_task",
             "attestation": "Fichier des abonnés du service culture"},
            "abonnes.csv", csv.encode("cp1252"))
        status, job = _call(base, officer.token, "POST", f"/lists/{created['id']}/imports",
                            body, ctype)
        assert status == 202, job
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status, report = _call(base, officer.token, "GET", f"/imports/{job['id']}")
            if report.get("status") in ("done", "failed"):
                break
            time.sleep(0.5)
        assert report["status"] == "done", report
        assert report["imported"] == 1
        assert [r["row"] for r in report["rejected"]] == [3]
    finally:
        for proc in (web, worker):
            proc.send_signal(signal.SIGTERM)
        for proc in (web, worker):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
