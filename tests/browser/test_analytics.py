"""The Statistiques pages in a real Chromium: charts drawn under the CSP, tables beside them."""

from __future__ import annotations

import pytest

from contacts.db import db
from tests.factories import PASSWORD, make_list, make_user
from tests.factories_analytics import (
    PHONE_UA,
    flush_tracking,
    path_of,
    quiet_tracking_buffer,  # noqa: F401 - autouse fixture
    recipient_links,
    sent_campaign,
)
from tests.factories_contacts import make_contact
from tests.live_server import browser_page, live_server
from tests.services import chromium_path, need

pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]


@pytest.fixture
def server(app):
    need("chromium", chromium_path() is not None, "install Debian's chromium")
    with live_server(app) as srv:
        yield srv


def _sign_in(page, server, user) -> None:
    page.goto(server.url + "/auth/login")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(server.url + "/")


def test_a_director_sees_the_campaign_charts_and_their_tables(server, client, org):
    lst = make_list(org)
    contacts = [make_contact(org, lst) for _ in range(3)]
    campaign, links, deliveries = sent_campaign(org, lst, contacts)
    db.session.commit()
    builder = recipient_links(org, campaign, links)
    for d, c in zip(deliveries, contacts, strict=True):
        values = builder.values(d.id, c.id, lst.id)
        client.get(path_of(values["open_pixel_url"]), headers={"User-Agent": PHONE_UA})
        client.get(path_of(values["link_1"]), headers={"User-Agent": PHONE_UA})
    flush_tracking()
    user = make_user(org, role="director")
    db.session.commit()
    errors: list[str] = []
    with browser_page() as page:
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        _sign_in(page, server, user)
        page.goto(f"{server.url}/analytics/campaigns/{campaign.id}")
        for kind in ("timeline", "links", "devices"):
            canvas = page.locator(f'canvas[data-chart="{kind}"]')
            canvas.scroll_into_view_if_needed()
            page.wait_for_selector(f'canvas[data-chart="{kind}"][data-rendered="true"]')
            box = canvas.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 100
            table = page.locator("table#" + canvas.get_attribute("aria-describedby"))
            assert table.count() == 1
        assert page.locator("#table-devices").is_visible()
        assert "téléphone" in page.locator("#table-devices").inner_text()
        page.goto(f"{server.url}/analytics/")
        page.wait_for_selector('canvas[data-chart="rates"][data-rendered="true"]')
        assert page.locator("#table-campaigns").is_visible()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    # (the browser's own /favicon.ico request is the app's 404, not a page error)
    assert not [e for e in errors if "Failed to load resource" not in e], errors
