"""Re-permission campaigns: sent only to pending members, and their link makes them sendable.

One list (double opt-in) holds a clean contact, a risky one awaiting re-permission, one
awaiting double opt-in, and pending people who must never be asked (suppressed address,
withdrawn membership). A normal campaign goes to the clean one only; a re-permission
campaign to the two pending ones only; following its link confirms the person.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from campaigns import actors, audience, editing, sending
from campaigns.models import Campaign, Delivery, OutboxMessage
from contacts import consent, memberships
from contacts.db import db
from contacts.models import ConsentEvent
from tests.factories import make_list
from tests.factories_contacts import make_contact
from tests.factories_sending import make_ready_campaign

CONFIRM_HTML = (
    "<!doctype html><html><body><p>Bonjour {{ first_name }},</p>"
    '<p><a href="{{ confirm_url }}">Je confirme mon inscription</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Se désinscrire</a></p></body></html>'
)
CONFIRM_TEXT = "Je confirme mon inscription : {{ confirm_url }}\n"
CONFIRM_LINK_RE = re.compile(r"https://crieur\.test/confirm/[A-Za-z0-9._~-]+")


@pytest.fixture
def people(org):
    """The list and its members, by role in the story."""
    lst = make_list(org, double_opt_in=True)
    found = {
        "list": lst,
        "clean": make_contact(org, lst, source="internal_file"),
        "risky": make_contact(org, lst, source="purchased", confirmed=False),
        "doi": make_contact(org, lst, source="web_form", confirmed=False),
        "suppressed": make_contact(org, lst, source="exchanged", confirmed=False),
        "withdrawn": make_contact(org, lst, source="unknown", confirmed=False),
    }
    from contacts import suppression
    from tests.factories_contacts import secret

    suppression.suppress(org.id, found["suppressed"].email, "complained", secret())
    consent.record_consent(org.id, found["withdrawn"].id, lst.id, "withdraw")
    db.session.commit()
    return found


def _frozen(campaign_id: int) -> set[int]:
    return set(
        db.session.scalars(select(Delivery.contact_id).where(Delivery.campaign_id == campaign_id))
    )


def _ready(org, lst, **kwargs) -> Campaign:
    campaign = make_ready_campaign(
        org, [lst], html=CONFIRM_HTML, text=CONFIRM_TEXT, links=(), **kwargs
    )
    db.session.commit()
    return campaign


def test_the_story_starts_with_only_the_clean_contact_sendable(org, people):
    lst = people["list"]
    sendable = {
        k
        for k in ("clean", "risky", "doi")
        if memberships.is_sendable(org.id, people[k].id, lst.id)
    }
    assert sendable == {"clean"}


def test_a_normal_campaign_freezes_only_the_sendable_contact(org, people):
    campaign = _ready(org, people["list"])

    assert sending.start_sending(org.id, campaign, None, "officer") == 1
    assert _frozen(campaign.id) == {people["clean"].id}


def test_a_repermission_campaign_freezes_only_the_pending_active_contacts(org, people):
    campaign = _ready(org, people["list"], is_repermission=True)

    assert sending.start_sending(org.id, campaign, None, "officer") == 2
    assert _frozen(campaign.id) == {people["risky"].id, people["doi"].id}


def test_the_audience_preview_of_a_repermission_campaign_counts_the_pending_ones(org, people):
    campaign = _ready(org, people["list"], is_repermission=True)

    preview = audience.preview_audience(org.id, campaign)

    assert preview.recipients == 2
    assert preview.left_out == {"confirmed": 1, "suppressed": 1, "unsubscribed": 1}


def test_the_audience_api_of_a_normal_campaign_is_unchanged(api, org, people):
    campaign = _ready(org, people["list"])

    body = api("officer").get(f"/campaigns/{campaign.id}/audience").json

    assert body["recipients"] == 1
    assert body["left_out"]["confirmed"] == 0
    assert body["left_out"]["pending"] + body["left_out"]["risky"] == 2


def _send(app, campaign: Campaign) -> None:
    from tests.integration.sending.support import drive

    sending.start_sending(campaign.organisation_id, campaign, None, "officer")
    db.session.commit()
    drive(app, campaign.id)


def _messages_to(email: str) -> list:
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipients.contains(email)))
    return [message_from_bytes(row.raw, policy=policy.default) for row in rows]


def _confirm_link(message) -> str:
    text = message.get_body(("plain",)).get_content()
    found = CONFIRM_LINK_RE.findall(text)
    assert found, text
    return found[0]


def test_each_pending_person_gets_their_own_confirm_link_and_no_one_else_gets_one(app, org, people):
    campaign = _ready(org, people["list"], is_repermission=True)

    _send(app, campaign)

    links = {key: _confirm_link(_messages_to(people[key].email)[0]) for key in ("risky", "doi")}
    assert links["risky"] != links["doi"]
    for key in ("clean", "suppressed", "withdrawn"):
        assert _messages_to(people[key].email) == []


def test_following_the_link_makes_the_person_sendable_and_records_the_confirmation(
    app, client, org, people
):
    lst, risky = people["list"], people["risky"]
    campaign = _ready(org, lst, is_repermission=True)
    _send(app, campaign)
    path = _confirm_link(_messages_to(risky.email)[0]).removeprefix("https://crieur.test")

    page = client.get(path)
    assert page.status_code == 200
    assert not memberships.is_sendable(org.id, risky.id, lst.id)  # a link scanner confirms nothing
    assert client.post(path).status_code == 200

    db.session.expire_all()
    assert memberships.is_sendable(org.id, risky.id, lst.id)
    actions = db.session.scalars(
        select(ConsentEvent.action)
        .where(ConsentEvent.contact_id == risky.id)
        .order_by(ConsentEvent.id)
    ).all()
    assert actions == ["grant", "confirm"]
    confirmation = db.session.scalars(
        select(ConsentEvent).where(
            ConsentEvent.contact_id == risky.id, ConsentEvent.action == "confirm"
        )
    ).one()
    assert confirmation.evidence["method"] == "repermission_link"  # provable: how they said yes


def test_someone_who_confirmed_after_the_freeze_is_skipped(app, org, people):
    from tests.factories_contacts import secret

    lst, doi = people["list"], people["doi"]
    campaign = _ready(org, lst, is_repermission=True)
    sending.start_sending(org.id, campaign, None, "officer")
    consent.confirm_subscription(org.id, doi.id, lst.id, secret())
    db.session.commit()

    from tests.integration.sending.support import drive, statuses

    drive(app, campaign.id)

    assert _messages_to(doi.email) == []
    assert statuses(campaign.id) == {"sent": 1, "skipped": 1}


def test_a_repermission_campaign_goes_through_the_queue_into_the_outbox(
    org, people, stub_broker, stub_worker
):
    campaign = _ready(org, people["list"], is_repermission=True)
    sending.start_sending(org.id, campaign, None, "officer")
    db.session.commit()

    actors.start_campaign.send(campaign.id)
    stub_broker.join("send", fail_fast=True)
    stub_worker.join()

    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "sent"
    assert len(_messages_to(people["risky"].email)) == 1
    assert _messages_to(people["clean"].email) == []


# ------------------------------------------------------------------ creation and roles


def test_the_api_creates_a_repermission_campaign_on_request(api, org, people):
    response = api("officer").post(
        "/campaigns",
        json={
            "kind": "newsletter",
            "subject": "Confirmez",
            "list_ids": [people["list"].id],
            "blocks": [{"type": "confirm", "label": "Je confirme"}],
            "repermission": True,
        },
    )

    assert response.status_code == 201, response.json
    assert response.json["repermission"] is True
    assert db.session.get(Campaign, response.json["id"]).is_repermission


def test_a_campaign_is_not_a_repermission_one_by_default(api, org, people):
    response = api("officer").post(
        "/campaigns",
        json={"kind": "newsletter", "subject": "Lettre", "blocks": [{"type": "divider"}]},
    )

    assert response.status_code == 201, response.json
    assert response.json["repermission"] is False


def test_a_non_boolean_repermission_flag_is_refused(api):
    response = api("officer").post(
        "/campaigns",
        json={
            "kind": "newsletter",
            "subject": "x",
            "blocks": [{"type": "divider"}],
            "repermission": "oui",
        },
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_repermission"


def test_the_repermission_model_makes_a_repermission_campaign_and_its_copy_too(org, people):
    campaign = editing.create_from_starter(
        org.id, "demande-reconsentement", user_id=None, list_ids=[people["list"].id]
    )
    copy = editing.duplicate_campaign(org.id, campaign, user_id=None)

    assert campaign.is_repermission and copy.is_repermission
    assert campaign.list_ids == [people["list"].id]
    assert {"type": "confirm", "label": "Je confirme mon inscription"} in campaign.blocks


def test_the_list_page_offers_the_repermission_campaign_to_an_officer(client, login_as, people):
    login_as("officer")

    page = client.get(f"/contacts/lists/{people['list'].id}").get_data(as_text=True)

    assert "Lancer une campagne de reconsentement" in page
    assert 'value="demande-reconsentement"' in page


def test_the_list_page_does_not_offer_it_to_a_director(client, login_as, people):
    login_as("director")

    page = client.get(f"/contacts/lists/{people['list'].id}").get_data(as_text=True)

    assert "Lancer une campagne de reconsentement" not in page


def test_the_list_page_button_creates_the_campaign_with_the_list_preselected(
    client, login_as, people
):
    login_as("officer")

    response = client.post(
        "/campaigns/new", data={"template": "demande-reconsentement", "list_id": people["list"].id}
    )

    assert response.status_code == 302
    campaign = db.session.scalars(select(Campaign).order_by(Campaign.id.desc())).first()
    assert campaign.is_repermission and campaign.list_ids == [people["list"].id]


def test_another_bodys_list_cannot_be_preselected(client, login_as, people):
    from tests.factories import make_org

    stranger = make_org()
    db.session.commit()
    login_as("officer", organisation=stranger)

    response = client.post(
        "/campaigns/new", data={"template": "demande-reconsentement", "list_id": people["list"].id}
    )

    assert response.status_code == 404
    assert (
        db.session.scalar(select(Campaign.id).where(Campaign.organisation_id == stranger.id))
        is None
    )


@pytest.mark.mjml
def test_officer_writes_director_approves_and_the_compiled_message_carries_the_link(
    app, api, org, people, mjml
):
    officer, director = api("officer"), api("director")
    created = officer.post(
        "/campaigns", json={"template": "demande-reconsentement", "list_ids": [people["list"].id]}
    )
    assert created.status_code == 201, created.json
    cid = created.json["id"]
    assert created.json["repermission"] is True

    assert officer.post(f"/campaigns/{cid}/approve").status_code == 403  # officers don't approve
    assert officer.post(f"/campaigns/{cid}/submit").status_code == 200
    assert director.post(f"/campaigns/{cid}/approve").status_code == 200
    sent = director.post(f"/campaigns/{cid}/send")
    assert sent.status_code == 202, sent.json
    assert sent.json["recipients"] == 2

    from tests.integration.sending.support import drive

    drive(app, cid)
    message = _messages_to(people["doi"].email)[0]
    html = message.get_body(("html",)).get_content()
    link = _confirm_link(message)
    assert link in html and "Je confirme mon inscription" in html


def test_a_repermission_campaign_without_the_confirm_button_cannot_be_submitted(org, people):
    campaign = make_ready_campaign(org, [people["list"]], status="draft", is_repermission=True)

    codes = {f["code"]: f["level"] for f in editing.campaign_checks(org.id, campaign)}

    assert codes.get("no_confirm_button") == "error"


def test_a_confirm_button_in_a_normal_campaign_is_flagged(org, people):
    campaign = make_ready_campaign(org, [people["list"]], status="draft")
    campaign.blocks = [{"type": "confirm", "label": "Je confirme"}]

    codes = {f["code"]: f["level"] for f in editing.campaign_checks(org.id, campaign)}

    assert codes.get("confirm_outside_repermission") == "warning"


def _repermission_path(app, org, contact, lst, age_days: float) -> str:
    import time

    from analytics import links

    url = links.repermission_url(
        "https://crieur.test",
        app.config["CRIEUR_SECRET_KEY"],
        org.id,
        contact.id,
        lst.id,
        now=int(time.time() - age_days * 24 * 3600),
    )
    return url.removeprefix("https://crieur.test")


def test_a_three_week_old_repermission_link_still_opens_the_page(app, client, org, people):
    path = _repermission_path(app, org, people["risky"], people["list"], 21)

    assert client.get(path).status_code == 200


def test_a_repermission_link_older_than_thirty_days_is_gone(app, client, org, people):
    path = _repermission_path(app, org, people["risky"], people["list"], 31)

    assert client.get(path).status_code == 410
    assert client.post(path).status_code == 410
    assert not memberships.is_sendable(org.id, people["risky"].id, people["list"].id)


def test_the_campaign_page_says_it_is_a_repermission_campaign(client, login_as, org, people):
    login_as("officer")
    campaign = _ready(org, people["list"], is_repermission=True)
    normal = _ready(org, people["list"])

    assert "campaign-repermission" in client.get(f"/campaigns/{campaign.id}").get_data(True)
    assert "campaign-repermission" not in client.get(f"/campaigns/{normal.id}").get_data(True)
