"""The UI shell: French by default, English on request, accessible landmarks, headers."""

from __future__ import annotations

import pytest

from contacts.db import db


def test_pages_are_french_by_default_with_a_skip_link_and_landmarks(client, login_as):
    login_as("officer")
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert 'href="#contenu"' in page and 'id="contenu"' in page
    for landmark in ('role="banner"', 'role="main"', 'role="contentinfo"', "<nav"):
        assert landmark in page
    for label in ("Contacts", "Campagnes", "Statistiques", "Baromètre"):
        assert label in page


def test_the_language_switch_turns_the_interface_to_english(client, login_as):
    login_as("admin")
    response = client.post("/auth/lang", data={"lang": "en", "next": "/"})
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Campaigns" in page and "Settings" in page


def test_admins_alone_see_settings(client, login_as):
    login_as("officer")
    assert "Paramètres" not in client.get("/").get_data(as_text=True)
    assert client.get("/admin/").status_code == 403


def test_security_headers_forbid_third_party_scripts_and_framing(client):
    response = client.get("/auth/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_no_page_loads_anything_from_another_site(client, login_as):
    login_as("admin")
    for path in ("/", "/admin/", "/admin/users", "/admin/tokens", "/outbox/", "/accessibilite"):
        page = client.get(path).get_data(as_text=True)
        assert 'src="http' not in page and 'href="http' not in page.replace(
            'href="https://www.belcombe', ""
        ), path


def test_the_accessibility_statement_is_public(client):
    page = client.get("/accessibilite").get_data(as_text=True)
    assert "RGAA" in page


def test_admin_settings_validate_input_with_clear_messages(client, login_as, org):
    login_as("admin")
    response = client.post("/admin/", data={"name": org.name, "brand_color": "red"})
    assert response.status_code == 400
    assert "#1a2b3c" in response.get_data(as_text=True)
    response = client.post(
        "/admin/",
        data={"name": org.name, "brand_color": "#112233", "tracking_policy": "per_contact"},
    )
    assert response.status_code == 302
    db.session.refresh(org)
    assert org.brand_color == "#112233" and org.tracking_policy == "per_contact"


def test_an_admin_cannot_touch_another_bodys_users_or_tokens(client, login_as):
    from tests.factories import make_org, make_user
    from webapp.auth import create_token
    from webapp.models import ApiToken

    other = make_org()
    stranger = make_user(other, role="officer")
    create_token(stranger)
    db.session.commit()
    token = db.session.scalars(db.select(ApiToken).where(ApiToken.user_id == stranger.id)).one()
    login_as("admin")
    assert client.post(f"/admin/users/{stranger.id}/toggle").status_code == 404
    assert client.post(f"/admin/tokens/{token.id}/revoke").status_code == 404
    db.session.refresh(stranger)
    db.session.refresh(token)
    assert not stranger.is_disabled and token.revoked_at is None


@pytest.mark.backends("sqlite")
def test_sentry_events_are_scrubbed_of_personal_data():
    from webapp.sentry import scrub_event

    event = {
        "user": {"email": "a@b.fr", "ip_address": "1.2.3.4"},
        "request": {
            "cookies": {"s": "x"},
            "data": {"email": "a@b.fr"},
            "headers": {
                "Authorization": "Bearer x",
                "X-Forwarded-For": "1.2.3.4",
                "Accept": "text/html",
            },
        },
        "message": "failed for marie@example.fr from 192.168.1.20",
        "extra": {"password": "hunter2", "token": "abc"},
    }
    scrubbed = scrub_event(event)
    flat = repr(scrubbed)
    for secret in ("a@b.fr", "1.2.3.4", "marie@example.fr", "192.168.1.20", "hunter2", "Bearer"):
        assert secret not in flat
    assert scrubbed["request"]["headers"] == {"Accept": "text/html"}


def test_chart_library_is_served_by_the_app_from_npm(client):
    response = client.get("/vendor/chart.js")
    assert response.status_code == 200
    assert b"Chart" in response.data[:5000]
    assert client.get("/vendor/../../etc/passwd").status_code == 404
    assert client.get("/vendor/left-pad").status_code == 404


def test_error_pages_follow_the_chosen_language(client, login_as):
    login_as("officer")
    assert "Page introuvable." in client.get("/nulle-part").get_data(as_text=True)
    client.post("/auth/lang", data={"lang": "en", "next": "/"})
    assert "Page not found." in client.get("/nulle-part").get_data(as_text=True)
