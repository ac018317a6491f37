"""Campaign pages: list, new from a model, editor and its JSON save, review, test send."""

from __future__ import annotations

import json
import re

import pytest

from campaigns import workflow
from campaigns.models import Campaign, OutboxMessage
from contacts.db import db
from tests.factories import make_list, make_org
from tests.factories_campaigns import make_campaign


def _editor_data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="editor-data">(.*?)</script>', page, re.S)
    assert m, "editor data block missing"
    return json.loads(m.group(1))


def test_the_list_shows_the_bodys_campaigns_with_their_status(login_as, client, org):
    make_campaign(org, name="Lettre de juin", status="in_review")
    make_campaign(make_org(), name="Lettre d'ailleurs")
    db.session.commit()
    login_as("director")
    page = client.get("/campaigns/").get_data(as_text=True)
    assert "Lettre de juin" in page and "en relecture" in page
    assert "Lettre d&#39;ailleurs" not in page and "Lettre d'ailleurs" not in page


def test_an_officer_creates_a_campaign_from_a_model(login_as, client, org):
    login_as("officer")
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert "Invitation à une inauguration" in page
    response = client.post("/campaigns/new", data={"template": "inauguration"})
    assert response.status_code == 302
    campaign = db.session.query(Campaign).one()
    assert response.headers["Location"].endswith(f"/campaigns/{campaign.id}/edit")
    assert campaign.kind == "invitation" and campaign.event["capacity"] == 150


def test_the_editor_page_carries_the_blocks_and_loads_its_script(login_as, client, org):
    campaign = make_campaign(org)
    db.session.commit()
    login_as("officer")
    response = client.get(f"/campaigns/{campaign.id}/edit")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert _editor_data(page)["blocks"] == campaign.blocks
    assert '<script src="/static/campaign-editor.js"></script>' in page
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("role", ["director", "admin"])
def test_only_officers_open_the_editor(login_as, client, org, role):
    campaign = make_campaign(org)
    db.session.commit()
    login_as(role)
    assert client.get(f"/campaigns/{campaign.id}/edit").status_code == 403
    assert client.post(f"/campaigns/{campaign.id}/content", json={}).status_code == 403


def test_the_editor_save_stores_the_blocks_and_answers_the_checks(login_as, client, org):
    lst = make_list(org)
    campaign = make_campaign(org)
    db.session.commit()
    login_as("officer")
    blocks = [*campaign.blocks, {"type": "divider"}]
    response = client.post(
        f"/campaigns/{campaign.id}/content",
        json={"subject": "Objet", "blocks": blocks, "list_ids": [lst.id]},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    assert data["saved"] and data["version"] == 2
    assert isinstance(data["checks"], list)
    db.session.expire_all()
    fresh = db.session.get(Campaign, campaign.id)
    assert fresh.blocks[-1] == {"type": "divider"} and fresh.list_ids == [lst.id]


def test_the_editor_save_names_the_bad_block(login_as, client, org):
    campaign = make_campaign(org)
    db.session.commit()
    login_as("officer")
    bad = [
        {"type": "heading", "text": "Titre"},
        {"type": "image", "src": "https://x.example/a.png"},
    ]
    response = client.post(
        f"/campaigns/{campaign.id}/content",
        json={"blocks": bad},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["message"].startswith("Bloc 2 (image)")
    assert error["details"] == {"block": 1, "field": "alt"}
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).version == 1


def test_saving_an_approved_campaign_in_the_editor_sends_it_back_to_review(login_as, client, org):
    campaign = make_campaign(org, status="approved")
    db.session.commit()
    login_as("officer")
    data = client.post(f"/campaigns/{campaign.id}/content", json={"subject": "Autre"}).get_json()
    assert data["status"] == "in_review"
    assert "relecture" in data["notice"]


@pytest.mark.mjml
def test_the_preview_frame_is_served_under_a_csp_that_runs_no_script(login_as, client, org, mjml):
    campaign = make_campaign(org)
    db.session.commit()
    login_as("director")
    response = client.get(f"/campaigns/{campaign.id}/preview.html")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script" not in csp
    assert "Bonjour Camille" in response.get_data(as_text=True)
    text = client.get(f"/campaigns/{campaign.id}/preview.json").get_json()["text"]
    assert "Bonjour Camille" in text


@pytest.mark.mjml
def test_the_campaign_page_shows_preview_frames_checks_and_history(login_as, client, org, mjml):
    officer = login_as("officer")
    campaign = make_campaign(org, status="draft", subject="")
    db.session.commit()
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert page.count("<iframe sandbox ") == 2
    assert "Le message n&#39;a pas d&#39;objet." in page
    assert "Soumettre pour relecture" in page
    assert "Historique" in page
    assert officer  # the officer sees the submit form; directors the approve form (below)


@pytest.mark.mjml
def test_review_through_the_pages_submit_then_approve(login_as, client, app, org, mjml):
    lst = make_list(org)
    campaign = make_campaign(org, list_ids=[lst.id])
    db.session.commit()
    login_as("officer")
    response = client.post(f"/campaigns/{campaign.id}/submit", data={"comment": "Prête"})
    assert response.status_code == 302
    director_client = app.test_client()
    login_as("director", test_client=director_client)
    page = director_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Approuver" in page and "Renvoyer en brouillon" in page
    director_client.post(
        f"/campaigns/{campaign.id}/approve", data={"version": campaign.version, "comment": "OK"}
    )
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "approved"
    trail = workflow.transitions_of(org.id, campaign.id)
    assert [(t.to_status, t.comment) for t in trail][-2:] == [
        ("in_review", "Prête"),
        ("approved", "OK"),
    ]


def test_sending_back_from_the_page_needs_a_comment(login_as, client, org):
    campaign = make_campaign(org, status="in_review")
    db.session.commit()
    login_as("director")
    client.post(f"/campaigns/{campaign.id}/send-back", data={"comment": ""})
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "in_review"
    client.post(f"/campaigns/{campaign.id}/send-back", data={"comment": "Le lieu manque."})
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "draft"


def test_an_officer_cannot_approve_from_the_page(login_as, client, org):
    campaign = make_campaign(org, status="in_review")
    db.session.commit()
    login_as("officer")
    assert client.post(f"/campaigns/{campaign.id}/approve").status_code == 403


@pytest.mark.mjml
def test_the_test_send_form_sends_to_the_outbox(login_as, client, org, mjml):
    campaign = make_campaign(org, subject="Objet")
    db.session.commit()
    login_as("officer")
    response = client.post(
        f"/campaigns/{campaign.id}/test-send", data={"emails": "a@example.org, b@example.org"}
    )
    assert response.status_code == 302
    assert sorted(m.recipients for m in db.session.query(OutboxMessage)) == [
        "a@example.org",
        "b@example.org",
    ]


def test_duplicate_from_the_page_opens_the_copy_in_the_editor(login_as, client, org):
    campaign = make_campaign(org, status="sent")
    db.session.commit()
    login_as("officer")
    response = client.post(f"/campaigns/{campaign.id}/duplicate")
    copy = db.session.query(Campaign).filter(Campaign.id != campaign.id).one()
    assert response.headers["Location"].endswith(f"/campaigns/{copy.id}/edit")


PAGES = [
    ("get", "/campaigns/{id}", "director"),
    ("get", "/campaigns/{id}/edit", "officer"),
    ("post", "/campaigns/{id}/content", "officer"),
    ("get", "/campaigns/{id}/preview.html", "officer"),
    ("get", "/campaigns/{id}/preview.json", "officer"),
    ("post", "/campaigns/{id}/test-send", "officer"),
    ("post", "/campaigns/{id}/submit", "officer"),
    ("post", "/campaigns/{id}/approve", "director"),
    ("post", "/campaigns/{id}/send-back", "director"),
    ("post", "/campaigns/{id}/duplicate", "officer"),
]


@pytest.mark.parametrize(("method", "path", "role"), PAGES)
def test_another_bodys_campaign_is_a_404_on_every_page(login_as, client, method, path, role):
    foreign = make_campaign(make_org(), status="in_review")
    db.session.commit()
    login_as(role)
    kwargs = {"json": {"subject": "x"}} if path.endswith("content") else {"data": {"comment": "x"}}
    response = getattr(client, method)(path.format(id=foreign.id), **kwargs)
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "path", "role"), PAGES)
def test_an_analyst_sees_no_campaign_page(login_as, client, org, method, path, role):
    campaign = make_campaign(org)
    db.session.commit()
    login_as("analyst")
    response = getattr(client, method)(path.format(id=campaign.id))
    assert response.status_code == 403


@pytest.mark.mjml
def test_the_review_page_offers_to_preview_with_a_subscribed_contact(login_as, client, org, mjml):
    from contacts.models import Contact, Subscription

    lst = make_list(org)
    contact = Contact(organisation_id=org.id, email="lea@example.org", first_name="Léa",
                      fields={"quartier": "Centre"})  # fmt: skip
    db.session.add(contact)
    db.session.flush()
    db.session.add(
        Subscription(organisation_id=org.id, list_id=lst.id, contact_id=contact.id,
                     status="active", source="web_form", legal_basis="consent")
    )  # fmt: skip
    campaign = make_campaign(org, list_ids=[lst.id])
    db.session.commit()
    login_as("officer")
    page = client.get(f"/campaigns/{campaign.id}?contact_id={contact.id}").get_data(as_text=True)
    assert f'<option value="{contact.id}" selected>lea@example.org</option>' in page
    assert "Bonjour Léa" in page  # the text part, personalised
    frame = client.get(f"/campaigns/{campaign.id}/preview.html?contact_id={contact.id}")
    assert "vous vous êtes inscrit·e sur notre site internet" in frame.get_data(as_text=True)
