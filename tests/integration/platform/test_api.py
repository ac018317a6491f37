"""The API's envelope: bearer tokens, JSON errors, /me and the OpenAPI document."""

from __future__ import annotations

from contacts.db import db, utcnow


def test_me_returns_the_user_role_and_body_with_its_site_key(api, org):
    officer = api("officer")
    response = officer.get("/me")
    assert response.status_code == 200
    body = response.get_json()
    assert body["role"] == "officer"
    assert body["user"]["email"] == officer.user.email
    assert body["organisation"]["slug"] == org.slug
    assert body["organisation"]["site_key"] == org.site_key


def test_an_analyst_has_no_body(api):
    body = api("analyst").get("/me").get_json()
    assert body["role"] == "analyst"
    assert body["organisation"] is None


def test_missing_or_wrong_tokens_get_a_json_401(client):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_revoked_token_stops_working(api):
    from webapp.models import ApiToken

    officer = api("officer")
    assert officer.get("/me").status_code == 200
    token = db.session.scalars(db.select(ApiToken).where(ApiToken.user_id == officer.user.id)).one()
    assert token.last_used_at is not None
    token.revoked_at = utcnow()
    db.session.commit()
    assert officer.get("/me").status_code == 401


def test_tokens_are_stored_hashed(api):
    from webapp.models import ApiToken

    officer = api("officer")
    stored = db.session.scalars(db.select(ApiToken)).all()
    assert officer.token not in {t.token_hash for t in stored}
    assert ApiToken.hash(officer.token) in {t.token_hash for t in stored}


def test_unknown_api_routes_answer_json_404(api):
    response = api("officer").get("/no-such-thing")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_openapi_document_is_generated_from_the_routes(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    assert "/me" in doc["paths"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_api_ignores_session_cookies(client, login_as):
    login_as("officer")
    assert client.get("/api/v1/me").status_code == 401
