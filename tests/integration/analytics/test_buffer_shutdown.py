"""Events waiting in the tracking buffer are written when the process stops cleanly.

The pixel answers before its event is inserted; these tests stop the process while the
events are still queued (the flush interval is an hour) and count the rows afterwards:
a plain interpreter exit (atexit), and a gunicorn worker stopped by SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.services import free_port, need, wait_for_port

ROOT = Path(__file__).resolve().parents[3]
N = 300

SETUP = """
import sys
from webapp import create_app
from contacts.db import db
from tests.factories import make_org, make_list
from tests.factories_analytics import sent_campaign, recipient_links

app = create_app({
    "CRIEUR_DATABASE_URL": "sqlite:///%(db)s",
    "CRIEUR_SECRET_KEY": "shutdown-test",
    "CRIEUR_PUBLIC_URL": "https://crieur.test",
    "CRIEUR_TRACKING_FLUSH_SECONDS": 3600,
    "CRIEUR_TRACKING_BATCH": 100000,
}, instance_path="%(instance)s")
with app.app_context():
    db.create_all()
    org = make_org()
    lst = make_list(org)
    campaign, links, deliveries = sent_campaign(org, lst, [])
    db.session.commit()
    pixel = recipient_links(org, campaign, links).values(1, 1, lst.id)["open_pixel_url"]
    with open("%(out)s", "w") as fh:
        fh.write(pixel.removeprefix("https://crieur.test"))
"""


def _setup(tmp_path: Path) -> str:
    values = {
        "db": tmp_path / "crieur.db",
        "instance": tmp_path / "instance",
        "out": tmp_path / "pixel",
    }
    subprocess.run(
        [sys.executable, "-c", SETUP % values], cwd=ROOT, check=True, capture_output=True
    )
    return (tmp_path / "pixel").read_text()


def _opens(tmp_path: Path) -> int:
    engine = create_engine(f"sqlite:///{tmp_path / 'crieur.db'}")
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM tracking_events WHERE kind='open'")).scalar()
    engine.dispose()
    return int(n)


def test_a_clean_exit_writes_every_queued_event(tmp_path):
    pixel = _setup(tmp_path)
    script = textwrap.dedent(
        f"""
        from webapp import create_app
        from webapp.views.tracking import state
        app = create_app({{
            "CRIEUR_DATABASE_URL": "sqlite:///{tmp_path / "crieur.db"}",
            "CRIEUR_SECRET_KEY": "shutdown-test",
            "CRIEUR_TRACKING_FLUSH_SECONDS": 3600,
            "CRIEUR_TRACKING_BATCH": 100000,
        }}, instance_path="{tmp_path / "instance"}")
        client = app.test_client()
        ua = {{"User-Agent": "Thunderbird/115"}}
        for _ in range({N}):
            assert client.get("{pixel}", headers=ua).status_code == 200
        print(len(state(app).buffer))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True, text=True
    )
    assert int(done.stdout.strip().splitlines()[-1]) == N  # all still queued at exit
    assert _opens(tmp_path) == N


def test_a_gunicorn_worker_stopped_by_sigterm_writes_every_queued_event(tmp_path):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    need("gunicorn", gunicorn.exists() or shutil.which("gunicorn") is not None, "not installed")
    pixel = _setup(tmp_path)
    (tmp_path / "wsgi_app.py").write_text(
        textwrap.dedent(
            f"""
            from webapp import create_app
            app = create_app({{
                "CRIEUR_DATABASE_URL": "sqlite:///{tmp_path / "crieur.db"}",
                "CRIEUR_SECRET_KEY": "shutdown-test",
                "CRIEUR_TRACKING_FLUSH_SECONDS": 3600,
                "CRIEUR_TRACKING_BATCH": 100000,
            }}, instance_path="{tmp_path / "instance"}")
            """
        )
    )
    port = free_port()
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    proc = subprocess.Popen(
        [str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "20",
         "wsgi_app:app"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=30, proc=proc)
        url = f"http://127.0.0.1:{port}{pixel}"
        for _ in range(N):
            request = urllib.request.Request(url, headers={"User-Agent": "Thunderbird/115"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
        assert _opens(tmp_path) == 0  # nothing written yet: the flush interval is an hour
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 5
    while _opens(tmp_path) < N and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _opens(tmp_path) == N
