"""Who sees what: the analyst never reaches a body's data; a body sees others only as
aggregates."""

from __future__ import annotations

import html
import re

import pytest

from analytics.benchmark import service
from contacts.db import db
from contacts.models import ImportBatch, Segment
from tests.factories import make_list
from tests.factories_benchmark import answered_body, make_edition, sector
from tests.factories_campaigns import make_campaign
from tests.factories_contacts import make_contact

PAGE_PREFIXES = ("/contacts", "/campaigns", "/analytics", "/sending", "/outbox", "/admin")
API_PREFIXES = (
    "/api/v1/lists",
    "/api/v1/contacts",
    "/api/v1/campaigns",
    "/api/v1/imports",
    "/api/v1/site",
    "/api/v1/stats",
)
SAMPLE_VALUES = {"fmt": "csv", "which": "sent"}


@pytest.fixture
def body_data(org):
    """A body with a list, a contact, a campaign, an import and a segment (ids to try)."""
    lst = make_list(org, name="Liste-Privée-Du-Corps")
    contact = make_contact(org, lst, email="habitante.privee@example.fr")
    campaign = make_campaign(org, list_ids=[lst.id], subject="Objet-Privé-De-Campagne")
    batch = ImportBatch(organisation_id=org.id, list_id=lst.id, source="web_form",
                        legal_basis="consent")  # fmt: skip
    segment = Segment(organisation_id=org.id, name="Segment-Privé", filter={})
    db.session.add_all([batch, segment])
    db.session.commit()
    return {
        "list_id": lst.id,
        "contact_id": contact.id,
        "campaign_id": campaign.id,
        "batch_id": batch.id,
        "segment_id": segment.id,
        "message_id": 1,
        "user_id": 1,
        "token_id": 1,
        "secrets": ["Liste-Privée-Du-Corps", "habitante.privee@example.fr",
                    "Objet-Privé-De-Campagne", "Segment-Privé", org.name],
    }  # fmt: skip


def _routes(app, prefixes):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(prefixes):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def _url(rule, values) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(2)
        return str(values.get(name, SAMPLE_VALUES.get(name, 1)))

    return re.sub(r"<(?:(\w+):)?(\w+)>", fill, rule.rule)


def test_an_analyst_reaches_no_page_of_a_body(app, client, login_as, body_data):
    login_as("analyst")
    tried = 0
    for rule, method in _routes(app, PAGE_PREFIXES):
        url = _url(rule, body_data)
        response = client.open(url, method=method, data={})
        assert response.status_code in (403, 404), f"{method} {url}: {response.status_code}"
        text = html.unescape(response.get_data(as_text=True))
        for secret in body_data["secrets"]:
            assert secret not in text, f"{method} {url} shows {secret}"
        tried += 1
    assert tried >= 40  # every area was really tried


def test_an_analyst_token_reaches_no_body_api(app, api, body_data):
    analyst = api("analyst")
    tried = 0
    for rule, method in _routes(app, API_PREFIXES):
        url = _url(rule, body_data).removeprefix("/api/v1")
        response = getattr(analyst, method.lower())(url, json={})
        assert response.status_code in (403, 404), f"{method} {url}: {response.status_code}"
        assert response.get_json()["error"]["code"] in ("forbidden", "not_found")
        for secret in body_data["secrets"]:
            assert secret not in response.get_data(as_text=True)
        tried += 1
    assert tried >= 25


def test_a_body_page_names_no_other_body(client, login_as, org):
    edition = make_edition("2026")
    others = sector(edition, 12)
    answered_body(edition, kind=org.kind, population=org.population)  # one more, same as org
    mine = service.add_respondent(org.id, edition.id, "agent")
    service.save_answers(org.id, mine.id, {"usages": ["lettres"], "efficacite": 5})
    db.session.commit()
    # results are published once the analyst exports them
    service.export_edition(edition.id, "json")
    db.session.commit()
    login_as("director")
    response = client.get("/benchmark/")
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    assert "Vos pairs" in page and "ensemble des organismes répondants" in page
    for body in others:
        assert body.name not in page
        for secret in (*body.emails, *body.free_texts):
            assert secret not in page
    assert org.name in page  # its own name is in the header, as on every page


def test_a_body_sees_no_peer_figures_before_results_are_published(client, login_as, org):
    edition = make_edition("2026")
    sector(edition, 12)
    db.session.commit()
    login_as("officer")
    page = html.unescape(client.get("/benchmark/").get_data(as_text=True))
    assert "seront affichées à la publication des résultats" in page
    assert "ensemble des organismes répondants" not in page


def test_a_body_cannot_read_the_page_of_an_edition_it_does_not_know(client, login_as):
    make_edition("2026")
    db.session.commit()
    login_as("officer")
    assert client.get("/benchmark/?edition=nope").status_code == 404
