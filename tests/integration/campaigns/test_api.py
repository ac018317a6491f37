"""Contract tests of the campaigns API (CONTRACT.md, JSON API)."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign, OutboxMessage
from contacts.db import db
from contacts.models import Contact
from tests.factories import make_list, make_org
from tests.factories_campaigns import ALL_BLOCKS, NEWSLETTER_BLOCKS, make_campaign, make_event


def _newsletter(lst=None, **extra):
    body = {
        "kind": "newsletter",
        "subject": "Les nouvelles de juin",
        "preheader": "Travaux, agenda, services.",
        "list_ids": [lst.id] if lst else [],
        "blocks": NEWSLETTER_BLOCKS,
    }
    body.update(extra)
    return body


def test_post_campaigns_creates_a_draft_and_get_returns_it(api, org):
    officer = api("officer")
    lst = make_list(org)
    db.session.commit()
    created = officer.post("/campaigns", json=_newsletter(lst))
    assert created.status_code == 201, created.get_json()
    data = created.get_json()
    assert data["status"] == "draft"
    assert data["kind"] == "newsletter"
    assert data["list_ids"] == [lst.id]
    assert data["blocks"][0] == {"type": "heading", "text": "Les nouvelles du mois"}
    assert data["transitions"][0]["to"] == "draft"
    fetched = officer.get(f"/campaigns/{data['id']}")
    assert fetched.status_code == 200
    assert fetched.get_json()["subject"] == "Les nouvelles de juin"


def test_post_an_invitation_with_every_block_type_stores_the_event_in_utc_offsets(api, org):
    officer = api("officer")
    body = _newsletter(kind="invitation", blocks=ALL_BLOCKS, event=make_event())
    response = officer.post("/campaigns", json=body)
    assert response.status_code == 201, response.get_json()
    event = response.get_json()["event"]
    assert event["starts_at"].endswith(("+02:00", "+01:00"))
    assert [b["type"] for b in response.get_json()["blocks"]] == [b["type"] for b in ALL_BLOCKS]


@pytest.mark.parametrize(
    ("blocks", "code"),
    [
        ([{"type": "image", "src": "https://x.example/a.png", "alt": ""}], "invalid_block"),
        ([{"type": "marquee"}], "invalid_block"),
        ([{"type": "button", "label": "Go", "url": "javascript:alert(1)"}], "invalid_block"),
        ([{"type": "poll", "question": "?", "options": ["seule"]}], "invalid_block"),
        ([], "invalid_blocks"),
        ("pas une liste", "invalid_blocks"),
    ],
)
def test_post_campaigns_refuses_invalid_blocks_with_a_400(api, blocks, code):
    response = api("officer").post("/campaigns", json=_newsletter(blocks=blocks))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_an_invitation_without_its_event_is_refused(api):
    response = api("officer").post("/campaigns", json=_newsletter(kind="invitation"))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "event_required"


def test_post_campaigns_with_another_bodys_list_is_a_404(api):
    foreign = make_list(make_org())
    db.session.commit()
    response = api("officer").post("/campaigns", json=_newsletter(foreign))
    assert response.status_code == 404
    assert db.session.query(Campaign).count() == 0


def test_post_campaigns_from_a_ready_made_model(api):
    officer = api("officer")
    templates = officer.get("/campaign-templates").get_json()["templates"]
    key = next(t["key"] for t in templates if t["kind"] == "invitation")
    response = officer.post("/campaigns", json={"template": key})
    assert response.status_code == 201
    assert response.get_json()["event"]["starts_at"]


def test_get_campaigns_lists_only_the_bodys_campaigns(api, org):
    mine = make_campaign(org, subject="La nôtre")
    make_campaign(make_org(), subject="Celle d'à côté")
    db.session.commit()
    listed = api("director").get("/campaigns").get_json()["campaigns"]
    assert [c["id"] for c in listed] == [mine.id]


def test_put_changes_only_the_keys_given(api, org):
    campaign = make_campaign(org)
    db.session.commit()
    response = api("officer").put(f"/campaigns/{campaign.id}", json={"subject": "Nouvel objet"})
    assert response.status_code == 200
    data = response.get_json()
    assert data["subject"] == "Nouvel objet"
    assert data["blocks"] == campaign.blocks
    assert data["version"] == 2


def test_put_on_an_approved_campaign_sends_it_back_to_review(api, org):
    campaign = make_campaign(org, status="approved")
    db.session.commit()
    data = api("officer").put(f"/campaigns/{campaign.id}", json={"preheader": "Autre"}).get_json()
    assert data["status"] == "in_review"
    assert data["transitions"][-1]["from"] == "approved"


@pytest.mark.parametrize("role", ["director", "admin"])
def test_only_officers_create_or_edit(api, org, role):
    campaign = make_campaign(org)
    db.session.commit()
    client = api(role)
    assert client.post("/campaigns", json=_newsletter()).status_code == 403
    assert client.put(f"/campaigns/{campaign.id}", json={"subject": "x"}).status_code == 403
    assert client.post(f"/campaigns/{campaign.id}/submit").status_code == 403


def test_review_round_trip_submit_send_back_resubmit_approve(api, org):
    lst = make_list(org)
    db.session.commit()
    officer, director = api("officer"), api("director")
    campaign_id = officer.post("/campaigns", json=_newsletter(lst)).get_json()["id"]
    submitted = officer.post(f"/campaigns/{campaign_id}/submit", json={"comment": "Prête"})
    assert submitted.status_code == 200, submitted.get_json()
    assert submitted.get_json()["status"] == "in_review"
    back = director.post(f"/campaigns/{campaign_id}/send-back", json={"comment": "Le lieu ?"})
    assert back.get_json()["status"] == "draft"
    assert officer.post(f"/campaigns/{campaign_id}/submit").get_json()["status"] == "in_review"
    version = officer.get(f"/campaigns/{campaign_id}").get_json()["version"]
    approved = director.post(f"/campaigns/{campaign_id}/approve", json={"version": version})
    assert approved.status_code == 200
    data = approved.get_json()
    assert data["status"] == "approved"
    assert data["approved_by_id"] == director.user.id
    trail = [(t["from"], t["to"], t["user"], t["comment"]) for t in data["transitions"]]
    assert trail[1:] == [
        ("draft", "in_review", officer.user.email, "Prête"),
        ("in_review", "draft", director.user.email, "Le lieu ?"),
        ("draft", "in_review", officer.user.email, ""),
        ("in_review", "approved", director.user.email, ""),
    ]


def test_an_officer_may_not_approve(api, org):
    campaign = make_campaign(org, status="in_review")
    db.session.commit()
    response = api("officer").post(f"/campaigns/{campaign.id}/approve")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "in_review"


def test_approving_a_draft_is_a_conflict(api, org):
    campaign = make_campaign(org, status="draft")
    db.session.commit()
    response = api("director").post(f"/campaigns/{campaign.id}/approve")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "invalid_transition"


def test_sending_back_without_a_comment_is_refused(api, org):
    campaign = make_campaign(org, status="in_review")
    db.session.commit()
    response = api("director").post(f"/campaigns/{campaign.id}/send-back", json={})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "comment_required"


def test_submit_with_failing_checks_lists_them(api, org):
    campaign = make_campaign(org, subject="")
    db.session.commit()
    response = api("officer").post(f"/campaigns/{campaign.id}/submit")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "checks_failed"
    assert {"missing_subject", "no_audience"} <= {c["code"] for c in error["details"]["checks"]}


@pytest.mark.mjml
def test_get_preview_returns_html_text_and_mjml(api, org, mjml):
    campaign = make_campaign(org)
    db.session.commit()
    response = api("director").get(f"/campaigns/{campaign.id}/preview")
    assert response.status_code == 200
    data = response.get_json()
    assert {"html", "text", "mjml"} <= set(data)
    assert "<mjml" in data["mjml"]
    assert "Bonjour Camille" in data["text"]
    assert "{{" not in data["html"]


@pytest.mark.mjml
def test_preview_with_a_contact_uses_their_values(api, org, mjml):
    contact = Contact(organisation_id=org.id, email="lea@example.org", first_name="Léa")
    db.session.add(contact)
    campaign = make_campaign(org)
    db.session.commit()
    data = api("officer").get(f"/campaigns/{campaign.id}/preview?contact_id={contact.id}")
    assert "Bonjour Léa" in data.get_json()["text"]


def test_preview_with_another_bodys_contact_is_a_404(api, org):
    other = make_org()
    contact = Contact(organisation_id=other.id, email="x@example.org", first_name="Secret")
    db.session.add(contact)
    campaign = make_campaign(org)
    db.session.commit()
    response = api("officer").get(f"/campaigns/{campaign.id}/preview?contact_id={contact.id}")
    assert response.status_code == 404


@pytest.mark.mjml
def test_test_send_lands_in_the_outbox_with_the_test_prefix(api, org, mjml):
    campaign = make_campaign(org, subject="Objet")
    db.session.commit()
    response = api("officer").post(
        f"/campaigns/{campaign.id}/test-send", json={"emails": ["a@example.org", "b@example.org"]}
    )
    assert response.status_code == 200, response.get_json()
    assert [r["outcome"] for r in response.get_json()["results"]] == ["sent", "sent"]
    subjects = [m.subject for m in db.session.query(OutboxMessage).all()]
    assert subjects == ["[TEST] Objet", "[TEST] Objet"]


@pytest.mark.parametrize(
    "emails", [[], ["pas-une-adresse"], [f"p{i}@example.org" for i in range(6)], "x", None]
)
def test_test_send_refuses_bad_or_too_many_addresses(api, org, emails):
    campaign = make_campaign(org)
    db.session.commit()
    response = api("officer").post(f"/campaigns/{campaign.id}/test-send", json={"emails": emails})
    assert response.status_code == 400
    assert db.session.query(OutboxMessage).count() == 0


def test_duplicate_gives_a_new_draft(api, org):
    campaign = make_campaign(org, status="sent")
    db.session.commit()
    response = api("officer").post(f"/campaigns/{campaign.id}/duplicate")
    assert response.status_code == 201
    data = response.get_json()
    assert data["status"] == "draft" and data["parent_campaign_id"] == campaign.id


ROUTES = [
    ("get", "/campaigns/{id}", None),
    ("put", "/campaigns/{id}", {"subject": "x"}),
    ("get", "/campaigns/{id}/preview", None),
    ("get", "/campaigns/{id}/checks", None),
    ("post", "/campaigns/{id}/test-send", {"emails": ["a@example.org"]}),
    ("post", "/campaigns/{id}/submit", {}),
    ("post", "/campaigns/{id}/approve", {}),
    ("post", "/campaigns/{id}/send-back", {"comment": "x"}),
    ("post", "/campaigns/{id}/duplicate", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_another_bodys_campaign_is_a_404_on_every_route(api, method, path, body):
    foreign = make_campaign(make_org(), status="in_review")
    db.session.commit()
    role = "director" if path.endswith(("approve", "send-back")) else "officer"
    client = api(role)
    response = getattr(client, method)(path.format(id=foreign.id), json=body)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [*ROUTES, ("get", "/campaigns", None), ("post", "/campaigns", {"kind": "newsletter"})],
)
def test_an_analyst_gets_403_on_every_campaign_route(api, org, method, path, body):
    campaign = make_campaign(org)
    db.session.commit()
    response = getattr(api("analyst"), method)(path.format(id=campaign.id), json=body)
    assert response.status_code == 403


def test_the_openapi_document_describes_the_campaign_routes(app):
    from webapp.api import build_spec

    paths = build_spec(app)["paths"]
    for path in ("/campaigns", "/campaigns/{campaign_id}", "/campaigns/{campaign_id}/preview",
                 "/campaigns/{campaign_id}/test-send", "/campaigns/{campaign_id}/submit",
                 "/campaigns/{campaign_id}/approve"):  # fmt: skip
        assert path in paths, path
