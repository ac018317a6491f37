"""The embedded mode for real: ``crieur run`` (SQLite, in-process worker) Ctrl-C'd mid-send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from campaigns import sending
from campaigns.models import Campaign
from contacts.db import db
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import received_by_address, statuses
from tests.services import free_port, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.smtp, pytest.mark.backends("sqlite")]
ROOT = Path(__file__).resolve().parents[3]


def _run(app, tmp_path: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        CRIEUR_BROKER_URL="",
        CRIEUR_DATABASE_URL=app.config["CRIEUR_DATABASE_URL"],
        CRIEUR_SECRET_KEY=app.config["CRIEUR_SECRET_KEY"],
        CRIEUR_PUBLIC_URL=app.config["CRIEUR_PUBLIC_URL"],
        CRIEUR_SMTP_URL="",
        CRIEUR_INSTANCE_PATH=str(tmp_path / "run-instance"),
    )
    log = open(tmp_path / "run.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-c", "from webapp.cli import main; raise SystemExit(main())",
         "run", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    wait_for_port(port, 60, proc)
    return proc


def _status(campaign_id: int) -> str:
    db.session.expire_all()
    status = db.session.get(Campaign, campaign_id).status
    db.session.commit()
    return status


def test_crieur_run_stopped_with_ctrl_c_mid_send_finishes_on_restart_without_duplicates(
    app, body, newsletter_list, relay, tmp_path
):
    make_contacts(body, newsletter_list, 600)
    campaign = make_ready_campaign(body, [newsletter_list])
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()
    relay.script.reply_delay = 0.005
    port = free_port()

    first = _run(app, tmp_path, port)  # its start-up reconciler finds the campaign
    deadline = time.monotonic() + 60
    while len(relay.messages) < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)  # Ctrl-C
    first.wait(60)
    before = len(relay.messages)
    assert 100 <= before < 600, (tmp_path / "run.log").read_text()[-2000:]
    assert _status(campaign.id) == "sending"

    second = _run(app, tmp_path, port)
    try:
        deadline = time.monotonic() + 60
        while _status(campaign.id) != "sent" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(60)

    got = received_by_address(relay)
    assert len(got) == 600 and max(got.values()) == 1
    assert statuses(campaign.id) == {"sent": 600}
