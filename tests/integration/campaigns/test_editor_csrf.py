"""The editor's JSON save is protected by CSRF like any form: the token rides in a header."""

from __future__ import annotations

import re

import pytest

from contacts.db import db
from tests.factories_campaigns import make_campaign


@pytest.fixture
def app_config():
    return {"WTF_CSRF_ENABLED": True}


def _signed_in_officer(client, org):
    from tests.factories import PASSWORD, make_user

    user = make_user(org, role="officer")
    db.session.commit()
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        "/auth/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    return user


def test_a_save_without_the_csrf_header_is_refused(client, org):
    _signed_in_officer(client, org)
    campaign = make_campaign(org)
    db.session.commit()
    response = client.post(f"/campaigns/{campaign.id}/content", json={"subject": "Piégé"})
    assert response.status_code == 403
    db.session.expire_all()
    assert campaign.subject != "Piégé"


def test_a_save_with_the_meta_tag_token_in_x_csrftoken_is_accepted(client, org):
    _signed_in_officer(client, org)
    campaign = make_campaign(org)
    db.session.commit()
    page = client.get(f"/campaigns/{campaign.id}/edit").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    response = client.post(
        f"/campaigns/{campaign.id}/content",
        json={"subject": "Accepté"},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.get_json()["saved"]
