"""Sign-in, sessions that can be revoked, CSRF and throttling."""

from __future__ import annotations

import pytest

from contacts.db import db
from tests.factories import PASSWORD, make_user


def test_signing_in_with_the_right_password_opens_the_dashboard(client, org):
    user = make_user(org, role="officer")
    db.session.commit()
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Tableau de bord" in page
    assert org.name in page


def test_a_wrong_password_and_an_unknown_account_get_the_same_answer(client, org):
    user = make_user(org)
    db.session.commit()
    wrong = client.post("/auth/login", data={"email": user.email, "password": "nope"})
    unknown = client.post("/auth/login", data={"email": "ghost@example.org", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "incorrect" in wrong.get_data(as_text=True)
    # Identical but for the e-mail echoed back into the form.
    assert wrong.get_data(as_text=True).replace(user.email, "X") == unknown.get_data(
        as_text=True
    ).replace("ghost@example.org", "X")


def test_pages_need_a_signed_in_user(client):
    response = client.get("/contacts/")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_signing_out_ends_every_session_of_that_user(app, org):
    user = make_user(org)
    db.session.commit()
    first, second = app.test_client(), app.test_client()
    for c in (first, second):
        assert (
            c.post("/auth/login", data={"email": user.email, "password": PASSWORD}).status_code
            == 302
        )
    assert second.get("/").status_code == 200
    first.post("/auth/logout")
    # The other browser's cookie is still there, but its session version is stale.
    assert second.get("/contacts/").status_code == 302


def test_a_password_change_or_disabling_ends_existing_sessions(app, org):
    from webapp.accounts import set_disabled, set_password

    user = make_user(org)
    db.session.commit()
    c = app.test_client()
    c.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert c.get("/contacts/").status_code == 200
    set_password(user, "a brand new passphrase")
    db.session.commit()
    assert c.get("/contacts/").status_code == 302

    c.post("/auth/login", data={"email": user.email, "password": "a brand new passphrase"})
    assert c.get("/contacts/").status_code == 200
    set_disabled(user, True)
    db.session.commit()
    assert c.get("/contacts/").status_code == 302
    again = c.post("/auth/login", data={"email": user.email, "password": "a brand new passphrase"})
    assert again.status_code == 401


def test_open_redirects_are_refused_after_sign_in(client, org):
    user = make_user(org)
    db.session.commit()
    for target in ("https://evil.example", "//evil.example", "/\\evil.example"):
        response = client.post(
            f"/auth/login?next={target}", data={"email": user.email, "password": PASSWORD}
        )
        assert response.headers["Location"] == "/"
        client.post("/auth/logout")


def test_session_cookie_is_http_only_and_same_site(client, org):
    user = make_user(org)
    db.session.commit()
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


class TestWithCsrf:
    @pytest.fixture
    def app_config(self):
        return {"WTF_CSRF_ENABLED": True}

    def test_a_post_without_csrf_token_is_refused(self, client, org):
        user = make_user(org)
        db.session.commit()
        response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 403
        assert "Jeton de sécurité" in response.get_data(as_text=True)

    def test_a_post_with_the_page_token_is_accepted(self, client, org):
        import re

        user = make_user(org)
        db.session.commit()
        page = client.get("/auth/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = client.post(
            "/auth/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 302

    def test_a_foreign_origin_is_refused_even_with_a_token(self, client, org):
        import re

        user = make_user(org)
        db.session.commit()
        page = client.get("/auth/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = client.post(
            "/auth/login",
            data={"email": user.email, "password": PASSWORD, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403


class TestRateLimit:
    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True}

    @pytest.fixture(autouse=True)
    def fresh_limits(self, app):
        from webapp.extensions import limiter

        limiter.reset()

    def test_repeated_wrong_passwords_on_one_account_are_throttled(self, client, org):
        user = make_user(org)
        db.session.commit()
        codes = [
            client.post(
                "/auth/login",
                data={"email": user.email, "password": f"wrong{i}"},
                environ_base={"REMOTE_ADDR": f"10.0.0.{i}"},
            ).status_code
            for i in range(8)
        ]
        assert codes[:5] == [401] * 5
        assert 429 in codes[5:]
        # Even the right password waits until the window passes.
        right = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
        assert right.status_code == 429

    def test_one_client_spraying_many_accounts_is_throttled(self, client, org):
        codes = [
            client.post(
                "/auth/login", data={"email": f"user{i}@example.org", "password": "x"}
            ).status_code
            for i in range(12)
        ]
        assert codes[:10] == [401] * 10
        assert codes[10:] == [429, 429]
