"""One address flooding the website counter is throttled, and never gets a 500."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from analytics.models import SiteHit
from contacts.db import db
from tests.factories_analytics import flush_tracking, quiet_tracking_buffer  # noqa: F401


@pytest.fixture
def app_config() -> dict:
    return {"RATELIMIT_ENABLED": True}


@pytest.mark.backends("sqlite")
def test_a_thousand_hits_from_one_address_are_throttled_without_errors(client, org):
    db.session.commit()
    codes = Counter()
    cookies = 0
    for i in range(1000):
        response = client.post(
            f"/s/{org.site_key}/hit",
            data=f"p=/page{i}&e=1",
            content_type="text/plain",
            environ_base={"REMOTE_ADDR": "198.51.100.20"},
        )
        codes[response.status_code] += 1
        cookies += "Set-Cookie" in response.headers
    assert set(codes) == {204, 429}
    assert codes[204] == 600
    assert cookies == 0
    other = client.post(
        f"/s/{org.site_key}/hit",
        data="p=/&e=1",
        content_type="text/plain",
        environ_base={"REMOTE_ADDR": "192.0.2.1"},
    )
    assert other.status_code == 204  # another address is not affected
    flush_tracking()
    assert db.session.scalar(select(func.count()).select_from(SiteHit)) == 601
