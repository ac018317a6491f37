"""Fixtures of the sending tests: a body sending through a real (scriptable) SMTP server."""

from __future__ import annotations

import pytest

from tests.integration.sending.support import FAST_CONFIG
from tests.smtp_servers import RecordingSMTPServer, need, smtp_sink  # noqa: F401


@pytest.fixture
def app_config() -> dict:
    return dict(FAST_CONFIG)


@pytest.fixture
def relay():
    """A scriptable aiosmtpd relay (PIPELINING on, like Postfix)."""
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        need("aiosmtpd", False, "pip install aiosmtpd")
    server = RecordingSMTPServer(pipelining=True).start()
    yield server
    if server._controller._thread is not None:  # a test may have stopped it (relay down)
        server.stop()
    from campaigns import mailer

    mailer.close_all()


@pytest.fixture
def body(org, relay):
    """The test body, sending through ``relay`` with its own SMTP settings."""
    from contacts.db import db

    org.smtp_url = f"smtp://{relay.url_hostport}"
    org.website_url = "https://www.ville.example.fr"
    db.session.flush()
    return org


@pytest.fixture
def newsletter_list(body):
    from tests.factories import make_list

    return make_list(body, name="Lettre d'information", purpose="newsletter")
