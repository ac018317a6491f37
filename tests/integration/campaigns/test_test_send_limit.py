"""Test sends are rate-limited per user, so the form cannot be used as an open relay."""

from __future__ import annotations

import pytest

from contacts.db import db
from tests.factories_campaigns import make_campaign


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": True}


@pytest.mark.backends("sqlite")
def test_the_eleventh_test_send_in_a_minute_is_refused(api, org):
    campaign = make_campaign(org)
    db.session.commit()
    officer = api("officer")
    statuses = [
        officer.post(f"/campaigns/{campaign.id}/test-send", json={"emails": ["x"]}).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [400] * 10  # refused addresses still count: probing costs too
    assert statuses[10] == 429
