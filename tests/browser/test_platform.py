"""The shell in a real Chromium: sign in, switch language, walk the menu, keyboard use."""

from __future__ import annotations

import pytest

from contacts.db import db
from tests.factories import PASSWORD, make_user
from tests.live_server import browser_page, live_server
from tests.services import chromium_path, need

pytestmark = [pytest.mark.browser, pytest.mark.backends("sqlite")]


@pytest.fixture
def server(app):
    need("chromium", chromium_path() is not None, "install Debian's chromium")
    with live_server(app) as srv:
        yield srv


def test_an_admin_signs_in_switches_to_english_and_walks_the_menu(server, org):
    user = make_user(org, role="admin")
    db.session.commit()
    with browser_page() as page:
        page.goto(server.url + "/")
        assert page.locator("h1").inner_text() == "Connexion"
        page.get_by_label("Adresse e-mail").fill(user.email)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url(server.url + "/")
        assert page.locator("h1").inner_text() == "Tableau de bord"

        page.select_option("#lang-select", "en")
        page.get_by_role("button", name="Changer").click()
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == "en"
        nav = page.get_by_role("navigation", name="Main navigation")
        labels = [link.inner_text() for link in nav.get_by_role("link").all()]
        assert labels[:4] == ["Contacts", "Campaigns", "Statistics", "Benchmark"]
        for label in labels:
            page.get_by_role("navigation", name="Main navigation").get_by_role(
                "link", name=label, exact=True
            ).click()
            page.wait_for_load_state()
            assert page.locator("main h1").count() >= 1, label
            assert "Error" not in page.locator("main h1").first.inner_text(), label


def test_the_skip_link_is_the_first_stop_of_the_keyboard(server):
    with browser_page() as page:
        page.goto(server.url + "/auth/login")
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent")
        assert focused.strip() == "Aller au contenu"
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#contenu"


def test_a_wrong_password_is_announced_next_to_the_form(server, org):
    user = make_user(org)
    db.session.commit()
    with browser_page() as page:
        page.goto(server.url + "/auth/login")
        page.get_by_label("Adresse e-mail").fill(user.email)
        page.get_by_label("Mot de passe").fill("wrong")
        page.get_by_role("button", name="Se connecter").click()
        alert = page.get_by_role("alert")
        assert "incorrect" in alert.inner_text()
