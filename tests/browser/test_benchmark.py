"""The benchmark page in a real Chromium: charts drawn (CSP intact) beside their tables."""

from __future__ import annotations

import pytest

from analytics.benchmark import service
from contacts.db import db
from tests.factories import PASSWORD, make_user
from tests.factories_benchmark import answered_body, make_edition, sector
from tests.live_server import browser_page, live_server
from tests.services import chromium_path, need

pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]


@pytest.fixture
def server(app):
    need("chromium", chromium_path() is not None, "install Debian's chromium")
    with live_server(app) as srv:
        yield srv


def test_a_director_sees_the_charts_and_their_tables(server, org):
    edition = make_edition("2026")
    sector(edition, 10)
    answered_body(edition, kind=org.kind, population=org.population)
    person = service.add_respondent(org.id, edition.id, "agent")
    service.save_answers(org.id, person.id, {"usages": ["lettres"], "efficacite": 4})
    db.session.commit()
    service.export_edition(edition.id, "json")  # results published: peers shown
    user = make_user(org, role="director")
    db.session.commit()
    errors: list[str] = []
    with browser_page() as page:
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(server.url + "/auth/login")
        page.get_by_label("Adresse e-mail").fill(user.email)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url(server.url + "/")
        page.goto(server.url + "/benchmark/")
        assert page.locator("main h1").inner_text() == "Baromètre des pratiques"

        usage = page.locator('canvas[data-chart="theme-usage"]')
        usage.scroll_into_view_if_needed()
        page.wait_for_selector('canvas[data-chart="theme-usage"][data-rendered="true"]')
        box = usage.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100
        table_id = usage.get_attribute("aria-describedby")
        table = page.locator(f"table#{table_id}")
        assert table.is_visible()
        assert "Lettres d'information" in table.inner_text()
        assert page.locator('canvas[data-chart="score"][data-rendered="true"]').count() == 1
        assert page.locator("#table-score").is_visible()
        assert not [e for e in errors if "Content Security Policy" in e], errors
