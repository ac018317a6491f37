"""Web versions and public list archives: signed, neutral, inert, and scoped to one body."""

from __future__ import annotations

import pytest

from analytics import tokens
from campaigns import preview
from contacts.db import db
from tests.factories import make_list, make_org
from tests.factories_campaigns import make_campaign
from tests.integration.campaigns.test_bad_inputs import PAYLOAD, assert_inert

pytestmark = pytest.mark.mjml

SECRET = "test-secret-key-not-for-production"  # the app fixture's CRIEUR_SECRET_KEY


def _sent(org, lst=None, **kw):
    blocks = kw.pop("blocks", None)
    campaign = make_campaign(
        org, status="sent", list_ids=[lst.id] if lst else [], blocks=blocks, compile=True, **kw
    )
    db.session.commit()
    return campaign


def test_the_web_version_shows_the_sent_message_with_neutral_values(client, org, mjml):
    campaign = _sent(org, subject="Bonjour {{ first_name }}, les nouvelles")
    response = client.get(f"/w/{preview.web_version_token(SECRET, campaign.id, 12)}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<title>Bonjour {{ first_name }}, les nouvelles</title>" not in page
    assert "Bonjour," in page  # "Bonjour {{ first_name }}," with no name
    assert "Camille" not in page and "{{" not in page
    assert 'lang="fr"' in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert org.name in page


def test_web_version_urls_match_the_senders_shape(app):
    url = preview.web_version_url("https://crieur.test/", SECRET, 5, 9)
    token = url.removeprefix("https://crieur.test/w/")
    assert tokens.verify(SECRET, "web", token) == (5, 9)


@pytest.mark.parametrize("status", ["draft", "in_review", "approved", "scheduled", "cancelled"])
def test_no_web_version_before_the_message_goes_out(client, org, status, mjml):
    campaign = make_campaign(org, status=status)
    db.session.commit()
    assert client.get(f"/w/{preview.web_version_token(SECRET, campaign.id)}").status_code == 404


def test_a_forged_or_foreign_purpose_token_is_a_404(client, org, mjml):
    campaign = _sent(org)
    good = preview.web_version_token(SECRET, campaign.id)
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    click = tokens.sign(SECRET, "click", campaign.id, 0)
    other_secret = tokens.sign("another-secret", "web", campaign.id, 0)
    for token in (forged, click, other_secret, "x", "a" * 2000):
        response = client.get(f"/w/{token}")
        assert response.status_code == 404, token
        assert "Location" not in response.headers


def test_hostile_text_is_inert_in_the_web_version(client, org, mjml):
    blocks = [{"type": "heading", "text": PAYLOAD[:200]}, {"type": "text", "markdown": PAYLOAD}]
    campaign = _sent(org, subject=PAYLOAD[:250], blocks=blocks)
    page = client.get(f"/w/{preview.web_version_token(SECRET, campaign.id)}").get_data(as_text=True)
    assert_inert(page, allow_style=True)
    assert "{{ &#39;&#39;.__class__ }}" in page or "{{ ''.__class__ }}" in page


def test_a_public_list_archive_lists_its_sent_newsletters(client, org, mjml):
    lst = make_list(org, name="La lettre", is_archive_public=True)
    sent = _sent(org, lst, subject="Numéro 1")
    make_campaign(org, status="draft", list_ids=[lst.id], subject="Brouillon secret")
    _sent(org, make_list(org), subject="Autre liste")
    db.session.commit()
    response = client.get(f"/archive/{org.slug}/listes/{lst.id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Numéro 1" in page
    assert "Brouillon secret" not in page and "Autre liste" not in page
    assert "<h1>" in page and 'lang="fr"' in page
    message = client.get(f"/archive/{org.slug}/listes/{lst.id}/{sent.id}")
    assert message.status_code == 200
    assert "Toutes les lettres « La lettre »" in message.get_data(as_text=True)


def test_hostile_text_is_inert_in_the_archive_pages(client, org, mjml):
    lst = make_list(org, name=PAYLOAD[:200], is_archive_public=True)
    blocks = [{"type": "heading", "text": PAYLOAD[:200]}]
    sent = _sent(org, lst, subject=PAYLOAD[:250], blocks=blocks)
    listing = client.get(f"/archive/{org.slug}/listes/{lst.id}").get_data(as_text=True)
    assert_inert(listing)
    message = client.get(f"/archive/{org.slug}/listes/{lst.id}/{sent.id}")
    assert_inert(message.get_data(as_text=True), allow_style=True)


def test_a_private_list_has_no_public_archive(client, org, mjml):
    lst = make_list(org, is_archive_public=False)
    sent = _sent(org, lst)
    assert client.get(f"/archive/{org.slug}/listes/{lst.id}").status_code == 404
    assert client.get(f"/archive/{org.slug}/listes/{lst.id}/{sent.id}").status_code == 404


def test_another_bodys_list_or_campaign_is_a_404_in_the_archive(client, org, mjml):
    lst = make_list(org, is_archive_public=True)
    other = make_org()
    their_list = make_list(other, is_archive_public=True)
    theirs = _sent(other, their_list)
    assert client.get(f"/archive/{org.slug}/listes/{their_list.id}").status_code == 404
    assert client.get(f"/archive/{org.slug}/listes/{lst.id}/{theirs.id}").status_code == 404
    assert client.get(f"/archive/{org.slug}/listes/{their_list.id}/{theirs.id}").status_code == 404


def test_the_neutral_links_lead_to_the_help_page(client, org, mjml):
    campaign = _sent(org)
    page = client.get(f"/w/{preview.web_version_token(SECRET, campaign.id)}").get_data(as_text=True)
    assert 'href="/archive/aide"' in page
    help_page = client.get("/archive/aide")
    assert help_page.status_code == 200
    assert "Se désinscrire" in help_page.get_data(as_text=True)


def test_opening_the_web_version_counts_a_web_view(app, client, org, mjml):
    from analytics.models import TrackingEvent
    from webapp.views.tracking import flush_events

    campaign = _sent(org)
    client.get(f"/w/{preview.web_version_token(SECRET, campaign.id, 0)}")
    flush_events(app)
    kinds = [e.kind for e in db.session.query(TrackingEvent).filter_by(campaign_id=campaign.id)]
    assert kinds == ["web_view"]
