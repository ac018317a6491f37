"""RSVP and poll pages: scanners never answer, people confirm, change, and meet limits."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from analytics.models import Answer
from analytics.tokens import sign
from contacts.db import db
from tests.factories import make_list
from tests.factories_analytics import (
    BROWSER_UA,
    flush_tracking,
    path_of,
    quiet_tracking_buffer,  # noqa: F401 - autouse fixture
    recipient_links,
    sent_campaign,
)
from tests.factories_campaigns import make_event
from tests.factories_contacts import make_contact

SECRET = "test-secret-key-not-for-production"
POLL = {"type": "poll", "question": "Quel horaire ?", "options": ["Le matin", "Le soir"]}
BLOCKS = [{"type": "heading", "text": "Invitation"}, {"type": "event"}, {"type": "rsvp"}, POLL]


def _invitation(org, n: int = 2, **event):
    lst = make_list(org, purpose="invitations")
    contacts = [make_contact(org, lst) for _ in range(n)]
    campaign, links, deliveries = sent_campaign(
        org, lst, contacts, kind="invitation", event=make_event(**event), blocks=BLOCKS
    )
    db.session.commit()
    builder = recipient_links(org, campaign, links)
    urls = [builder.values(d.id, c.id, lst.id) for d, c in zip(deliveries, contacts, strict=True)]
    return campaign, deliveries, urls


def _answers(kind: str = "rsvp") -> list[tuple[int, str]]:
    db.session.expire_all()
    return [
        (a.delivery_id, a.value)
        for a in db.session.scalars(select(Answer).where(Answer.kind == kind).order_by(Answer.id))
    ]


def test_opening_an_rsvp_link_records_nothing_by_itself(client, org):
    campaign, deliveries, urls = _invitation(org)
    response = client.get(path_of(urls[0]["rsvp_yes_url"]), headers={"User-Agent": BROWSER_UA})
    assert response.status_code == 200
    assert _answers() == []


def test_the_rsvp_page_preselects_the_answer_of_the_link(client, org):
    _, _, urls = _invitation(org)
    page = client.get(path_of(urls[0]["rsvp_maybe_url"])).get_data(as_text=True)
    assert 'value="maybe" checked' in page
    assert 'method="post"' in page
    assert "Confirmer ma réponse" in page


def test_a_link_scanner_following_every_rsvp_link_answers_nothing(client, org):
    _, _, urls = _invitation(org)
    for name in ("rsvp_yes_url", "rsvp_no_url", "rsvp_maybe_url", "poll_url_1", "poll_url_2"):
        client.get(path_of(urls[0][name]), headers={"User-Agent": "Mozilla/5.0 (SafeLinks)"})
        client.head(path_of(urls[0][name]))
    assert _answers("rsvp") == [] and _answers("poll") == []


def test_confirming_records_the_answer_and_sets_no_cookie(client, org):
    _, deliveries, urls = _invitation(org)
    response = client.post(path_of(urls[0]["rsvp_yes_url"]), data={"answer": "yes"})
    assert response.status_code == 200
    assert "Merci, votre réponse est enregistrée" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert _answers() == [(deliveries[0].id, "yes")]


def test_the_confirmation_is_accepted_without_a_csrf_token(app_csrf_client, org):
    _, deliveries, urls = _invitation(org)
    response = app_csrf_client.post(path_of(urls[0]["rsvp_no_url"]), data={"answer": "no"})
    assert response.status_code == 200
    assert _answers() == [(deliveries[0].id, "no")]


@pytest.fixture
def app_csrf_client(app):
    app.config["WTF_CSRF_ENABLED"] = True
    yield app.test_client()
    app.config["WTF_CSRF_ENABLED"] = False


def test_an_answer_can_be_changed_and_stays_one_row(client, org):
    _, deliveries, urls = _invitation(org)
    client.post(path_of(urls[0]["rsvp_yes_url"]), data={"answer": "yes"})
    page = client.get(path_of(urls[0]["rsvp_yes_url"])).get_data(as_text=True)
    assert "Modifier ma réponse" in page and "Votre réponse actuelle" in page
    client.post(path_of(urls[0]["rsvp_yes_url"]), data={"answer": "maybe"})
    assert _answers() == [(deliveries[0].id, "maybe")]


def test_after_the_deadline_answers_are_frozen(client, org):
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    _, _, urls = _invitation(org, rsvp_deadline=past)
    response = client.post(path_of(urls[0]["rsvp_yes_url"]), data={"answer": "yes"})
    assert response.status_code == 409
    assert "date limite de réponse est passée" in response.get_data(as_text=True)
    assert _answers() == []


def test_when_the_event_is_full_a_new_yes_is_refused_and_the_page_says_so(client, org):
    _, deliveries, urls = _invitation(org, n=3, capacity=1)
    assert client.post(path_of(urls[0]["rsvp_yes_url"])).status_code == 200
    response = client.post(path_of(urls[1]["rsvp_yes_url"]), data={"answer": "yes"})
    assert response.status_code == 409
    assert "complet" in response.get_data(as_text=True)
    assert client.post(path_of(urls[2]["rsvp_no_url"])).status_code == 200
    page = client.get(path_of(urls[1]["rsvp_yes_url"])).get_data(as_text=True)
    assert "L&#39;événement est complet" in page or "L'événement est complet" in page
    assert _answers() == [(deliveries[0].id, "yes"), (deliveries[2].id, "no")]


def test_the_person_holding_the_last_seat_can_confirm_again(client, org):
    _, deliveries, urls = _invitation(org, n=2, capacity=1)
    client.post(path_of(urls[0]["rsvp_yes_url"]))
    assert client.post(path_of(urls[0]["rsvp_yes_url"])).status_code == 200
    assert _answers() == [(deliveries[0].id, "yes")]


def test_an_unknown_answer_is_refused(client, org):
    _, _, urls = _invitation(org)
    response = client.post(path_of(urls[0]["rsvp_yes_url"]), data={"answer": "<script>"})
    assert response.status_code == 400
    assert "<script>" not in response.get_data(as_text=True)
    assert _answers() == []


def test_an_rsvp_token_for_a_delivery_of_another_campaign_is_a_404(client, org):
    campaign, _, _ = _invitation(org)
    _, other_deliveries, _ = _invitation(org)
    token = sign(SECRET, "rsvp", campaign.id, other_deliveries[0].id, "yes")
    assert client.get(f"/t/r/{token}").status_code == 404
    assert client.post(f"/t/r/{token}").status_code == 404
    assert _answers() == []


@pytest.mark.parametrize("answer", ["oui", "", "yes" * 60])
def test_an_rsvp_token_with_an_unknown_answer_is_a_404(client, org, answer):
    campaign, deliveries, _ = _invitation(org)
    token = sign(SECRET, "rsvp", campaign.id, deliveries[0].id, answer)
    assert client.get(f"/t/r/{token}").status_code == 404


def test_a_tampered_rsvp_token_is_a_404(client, org):
    _, _, urls = _invitation(org)
    path = path_of(urls[0]["rsvp_yes_url"])
    assert client.post(path[:-3] + "abc").status_code == 404
    assert _answers() == []


def test_rsvp_answers_are_tallied_in_the_stats(client, org, api):
    campaign, _, urls = _invitation(org, n=2)
    client.post(path_of(urls[0]["rsvp_yes_url"]))
    client.post(path_of(urls[1]["rsvp_no_url"]))
    stats = api("director").get(f"/campaigns/{campaign.id}/stats").get_json()
    assert stats["rsvp"] == {"yes": 1, "no": 1, "maybe": 0}


# ---------------------------------------------------------------------------- polls


def test_a_poll_answer_is_recorded_only_when_confirmed(client, org):
    _, deliveries, urls = _invitation(org)
    page = client.get(path_of(urls[0]["poll_url_2"])).get_data(as_text=True)
    assert 'value="2" checked' in page and "Quel horaire ?" in page
    assert _answers("poll") == []
    client.post(path_of(urls[0]["poll_url_2"]), data={"option": "2"})
    assert _answers("poll") == [(deliveries[0].id, "Le soir")]


def test_a_poll_answer_can_be_changed(client, org):
    _, deliveries, urls = _invitation(org)
    client.post(path_of(urls[0]["poll_url_2"]))
    client.post(path_of(urls[0]["poll_url_2"]), data={"option": "1"})
    assert _answers("poll") == [(deliveries[0].id, "Le matin")]


@pytest.mark.parametrize("option", ["0", "3", "-1", "x", "1e9"])
def test_an_unknown_poll_option_is_refused(client, org, option):
    _, _, urls = _invitation(org)
    response = client.post(path_of(urls[0]["poll_url_1"]), data={"option": option})
    assert response.status_code == 400
    assert _answers("poll") == []


def test_poll_answers_are_tallied_per_option_in_the_stats(client, org, api):
    campaign, _, urls = _invitation(org, n=2)
    client.post(path_of(urls[0]["poll_url_2"]))
    client.post(path_of(urls[1]["poll_url_2"]))
    stats = api("director").get(f"/campaigns/{campaign.id}/stats").get_json()
    assert stats["poll"] == {"Le matin": 0, "Le soir": 2}


def test_confirmed_answers_are_also_tracking_events_under_the_policy(client, org):
    from analytics.models import TrackingEvent

    _, _, urls = _invitation(org)
    client.post(path_of(urls[0]["rsvp_yes_url"]), headers={"User-Agent": BROWSER_UA})
    flush_tracking()
    [event] = db.session.scalars(select(TrackingEvent)).all()
    assert (event.kind, event.value, event.is_machine) == ("rsvp", "yes", False)
    assert event.delivery_id is None  # the default policy is anonymous aggregates
