"""The list page's « Lancer une campagne de reconsentement » form works with CSRF on."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from campaigns.models import Campaign
from contacts.db import db
from tests.factories import make_list
from tests.factories_contacts import make_contact


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


def _repermission_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the page's re-permission form."""
    forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', page, re.S)
    found = [(action, body) for action, body in forms if "demande-reconsentement" in body]
    assert len(found) == 1, page[:2000]
    action, body = found[0]
    return action, dict(re.findall(r'name="([^"]+)" value="([^"]*)"', body))


def test_the_list_page_form_creates_the_repermission_campaign(client, org):
    lst = make_list(org)
    make_contact(org, lst, source="purchased", confirmed=False)
    _signed_in_officer(client, org)

    page = client.get(f"/contacts/lists/{lst.id}").get_data(as_text=True)
    action, fields = _repermission_form(page)
    response = client.post(action, data=fields)

    assert response.status_code == 302
    campaign = db.session.scalars(select(Campaign).where(Campaign.organisation_id == org.id)).one()
    assert campaign.is_repermission and campaign.list_ids == [lst.id]


def test_the_form_without_its_csrf_token_creates_nothing(client, org):
    lst = make_list(org)
    make_contact(org, lst, source="purchased", confirmed=False)
    _signed_in_officer(client, org)

    response = client.post(
        "/campaigns/new", data={"template": "demande-reconsentement", "list_id": lst.id}
    )

    assert response.status_code in (400, 403)
    assert db.session.scalar(select(Campaign.id).where(Campaign.organisation_id == org.id)) is None
