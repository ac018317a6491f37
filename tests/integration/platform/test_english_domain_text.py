"""English readers get English for the text the domain packages produce, French stays the default.

The domain packages keep French message ids (refusals with ``params``, label tables marked
with ``N_``); the web edge translates them. Each test reads a real page or API answer.
"""

from __future__ import annotations

import pytest

from contacts.db import db
from tests.factories import make_list
from tests.factories_benchmark import answered_body, make_edition
from tests.factories_campaigns import make_campaign
from tests.factories_contacts import make_contact

IMAGE_ONLY = [{"type": "image", "src": "https://www.exemple.fr/affiche.png", "alt": "Affiche"}]


def _english(client) -> None:
    response = client.post("/auth/lang", data={"lang": "en", "next": "/"})
    assert response.status_code == 302


def test_a_refusal_page_is_translated_then_filled_in(client, login_as):
    login_as("officer")
    _english(client)
    response = client.post("/campaigns/new", data={"template": "blank", "list_id": "987654"})
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "List not found (no. 987654)." in page
    assert "introuvable" not in page


def test_a_refusal_page_stays_french_by_default(client, login_as):
    login_as("officer")
    response = client.post("/campaigns/new", data={"template": "blank", "list_id": "987654"})
    assert response.status_code == 404
    assert "Liste introuvable (n° 987654)." in response.get_data(as_text=True)


def test_an_api_refusal_follows_the_language_of_the_tokens_user(api, org):
    campaign = make_campaign(org)
    db.session.commit()
    english, french = api("officer"), api("officer")
    english.user.locale = "en"
    db.session.commit()
    body = {"blocks": [{"type": "heading", "text": ""}]}

    response = english.put(f"/campaigns/{campaign.id}", json=body)
    error = response.get_json()["error"]
    assert response.status_code == 400
    assert error["code"] == "invalid_block"
    # The block's label and the reason are messages of their own, translated too.
    assert error["message"] == "Block 1 (heading): the heading text is required."

    response = french.put(f"/campaigns/{campaign.id}", json=body)
    assert response.get_json()["error"]["message"] == (
        "Bloc 1 (titre) : le texte du titre est obligatoire."
    )


def test_a_refused_transition_names_both_statuses_in_english(client, login_as, org):
    campaign = make_campaign(org)
    db.session.commit()
    login_as("director")
    _english(client)
    response = client.post(f"/campaigns/{campaign.id}/approve", follow_redirects=True)
    assert "A “draft” campaign cannot move to “approved”." in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Block 1 (image): the image has no text with it"),
        ("fr", "Bloc 1 (image) : l&#39;image n&#39;est accompagnée d&#39;aucun texte"),
    ],
)
def test_pre_review_checks_are_shown_in_the_readers_language(client, login_as, org, lang, expected):
    campaign = make_campaign(org, blocks=IMAGE_ONLY, list_ids=[make_list(org).id])
    db.session.commit()
    login_as("officer")
    if lang == "en":
        _english(client)
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert expected in page


def test_the_contact_page_names_the_consent_source_in_english(client, login_as, org):
    mlist = make_list(org)
    contact = make_contact(org, mlist, source="purchased")
    db.session.commit()
    login_as("officer")
    assert "fichier acheté" in client.get(f"/contacts/people/{contact.id}").get_data(as_text=True)
    _english(client)
    page = client.get(f"/contacts/people/{contact.id}").get_data(as_text=True)
    assert "purchased file" in page
    assert "fichier acheté" not in page


def test_the_benchmark_page_names_the_population_band_in_english(client, login_as):
    edition = make_edition()
    body = answered_body(edition, population=5000)
    db.session.commit()
    login_as("officer", organisation=body.org)
    assert "de 2 000 à 9 999 habitants" in client.get("/benchmark/").get_data(as_text=True)
    _english(client)
    page = client.get("/benchmark/").get_data(as_text=True)
    assert "2,000 to 9,999 inhabitants" in page
    assert "municipalities" in page


def test_the_campaign_list_shows_statuses_in_english(client, login_as, org):
    make_campaign(org, subject="Lettre du maire", status="in_review")
    db.session.commit()
    login_as("officer")
    assert "en relecture" in client.get("/campaigns/").get_data(as_text=True)
    _english(client)
    page = client.get("/campaigns/").get_data(as_text=True)
    assert "in review" in page
    assert "en relecture" not in page


def test_the_send_confirmation_explains_who_is_left_out_in_english(client, login_as, org):
    mlist = make_list(org)
    make_contact(org, mlist)
    make_contact(org, mlist, source="purchased", confirmed=False)
    campaign = make_campaign(org, list_ids=[mlist.id], status="approved")
    db.session.commit()
    login_as("officer")
    _english(client)
    page = client.get(f"/sending/{campaign.id}/confirm").get_data(as_text=True)
    assert 'data-reason="risky"' in page
    assert "risky source awaiting new permission" in page
    assert "source à risque" not in page


def test_the_segment_editor_offers_english_fields_and_operators(client, login_as):
    login_as("officer")
    _english(client)
    page = client.get("/contacts/segments/new").get_data(as_text=True)
    assert "Consent source" in page and "in the last N days" in page
    assert "Origine du consentement" not in page
