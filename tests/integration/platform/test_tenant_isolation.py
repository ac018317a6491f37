"""Every route that takes an object id answers 404 (or 403) for another body's object,
through the pages and the API, and changes nothing of that body's data."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from contacts.db import db
from tests.factories import make_list, make_org, make_user

# Blueprints reached without signing in, through signed tokens: tested in their areas.
PUBLIC_BLUEPRINTS = {"public", "tracking", "archive", "auth", "static", "main"}
BODY_ROLES = ("officer", "director", "admin")


def _foreign_objects(other) -> dict[str, int]:
    """One object of each kind in body ``other``, by the URL parameter names that carry them."""
    from campaigns.models import CampaignLink, Delivery, OutboxMessage
    from contacts.models import ImportBatch, Segment
    from tests.factories_campaigns import make_campaign
    from tests.factories_contacts import make_contact
    from webapp.auth import create_token
    from webapp.models import ApiToken

    lst = make_list(other)
    contact = make_contact(other, lst, email="secret.person@other.example")
    campaign = make_campaign(other, list_ids=[lst.id])
    batch = ImportBatch(
        organisation_id=other.id,
        list_id=lst.id,
        source="internal_file",
        legal_basis="consent",
        status="done",
        filename="other.csv",
    )
    segment = Segment(organisation_id=other.id, name="Autre", filter={})
    link = CampaignLink(
        organisation_id=other.id, campaign_id=campaign.id, url="https://other.example/"
    )
    delivery = Delivery(organisation_id=other.id, campaign_id=campaign.id, contact_id=contact.id)
    message = OutboxMessage(
        organisation_id=other.id,
        sender="a@other.example",
        recipients="b@other.example",
        subject="x",
        raw=b"x",
    )
    user = make_user(other, role="officer")
    db.session.add_all([batch, segment, link, delivery, message])
    create_token(user)
    db.session.flush()
    token = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    ids = {
        "campaign_id": campaign.id,
        "list_id": lst.id,
        "contact_id": contact.id,
        "import_id": batch.id,
        "batch_id": batch.id,
        "segment_id": segment.id,
        "link_id": link.id,
        "delivery_id": delivery.id,
        "message_id": message.id,
        "user_id": user.id,
        "token_id": token.id,
    }
    ids.update(_benchmark_objects(other))
    return ids


def _benchmark_objects(other) -> dict[str, int]:
    """A survey edition (the association's: body users may not manage it) and a respondent
    of ``other``'s answer to it."""
    import datetime as dt

    from analytics.benchmark.models import Respondent, SurveyEdition, SurveyResponse
    from contacts.db import utcnow

    edition = SurveyEdition(
        code=f"iso-{other.id}",
        title="Édition test",
        opens_at=utcnow(),
        closes_at=utcnow() + dt.timedelta(days=30),
        questions={},
    )
    db.session.add(edition)
    db.session.flush()
    response = SurveyResponse(organisation_id=other.id, edition_id=edition.id)
    db.session.add(response)
    db.session.flush()
    respondent = Respondent(organisation_id=other.id, response_id=response.id, role="agent")
    db.session.add(respondent)
    db.session.flush()
    return {"edition_id": edition.id, "response_id": response.id, "respondent_id": respondent.id}


def _snapshot(org_id: int) -> dict[str, list]:
    rows = {}
    for table in db.metadata.sorted_tables:
        if "organisation_id" not in table.c:
            continue
        result = db.session.execute(
            text(f'SELECT * FROM "{table.name}" WHERE organisation_id = :o ORDER BY 1'),
            {"o": org_id},
        )
        rows[table.name] = [tuple(str(v) for v in row) for row in result]
    return rows


def _id_routes(app):
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.split(".", 1)[0]
        if blueprint in PUBLIC_BLUEPRINTS:
            continue
        int_args = [
            a for a, conv in rule._converters.items() if type(conv).__name__ == "IntegerConverter"
        ]
        if not int_args:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method, int_args


def test_another_bodys_objects_are_404_for_pages_and_api(app, client, org, login_as, api):
    other = make_org()
    foreign = _foreign_objects(other)
    db.session.commit()
    before = _snapshot(other.id)

    problems: list[str] = []
    checked = 0
    for role in BODY_ROLES:
        login_as(role)
        caller = api(role)
        for rule, method, int_args in _id_routes(app):
            missing = [a for a in int_args if foreign.get(a) is None]
            if missing:
                problems.append(f"{rule.rule}: no foreign object for {missing}; add a builder")
                continue
            url = _build(rule, foreign)
            if url.startswith("/api/v1"):
                response = getattr(caller, method.lower())(url[len("/api/v1") :], json={})
            else:
                response = client.open(url, method=method, data={})
            checked += 1
            if response.status_code not in (403, 404):
                problems.append(f"{role} {method} {url} -> {response.status_code}")
        client.post("/auth/logout")
    assert checked > 0
    assert not problems, "\n".join(problems)
    db.session.expire_all()
    assert _snapshot(other.id) == before, "a foreign body's data changed"


def _build(rule, values: dict[str, int]) -> str:
    url = rule.rule
    for arg in rule.arguments:
        url = re.sub(rf"<(?:[a-z]+:)?{arg}>", str(values.get(arg, 1)), url)
    return url


def test_an_analyst_reaches_no_bodys_contacts_or_campaigns(app, client, org, login_as, api):
    foreign = _foreign_objects(org)
    db.session.commit()
    login_as("analyst")
    analyst = api("analyst")
    problems = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.split(".", 1)[0]
        if blueprint in PUBLIC_BLUEPRINTS or "GET" not in rule.methods:
            continue
        if not rule.rule.startswith(
            (
                "/contacts",
                "/campaigns",
                "/analytics",
                "/sending",
                "/api/v1/lists",
                "/api/v1/contacts",
                "/api/v1/campaigns",
                "/api/v1/imports",
                "/api/v1/site",
                "/outbox",
                "/admin",
            )
        ):
            continue
        url = _build(rule, foreign)
        if url.startswith("/api/v1"):
            response = analyst.get(url[len("/api/v1") :])
        else:
            response = client.get(url)
        if response.status_code not in (403, 404):
            problems.append(f"GET {url} -> {response.status_code}")
        body = response.get_data(as_text=True)
        if "secret.person@other.example" in body:
            problems.append(f"GET {url} shows a contact's address")
    assert not problems, "\n".join(problems)


@pytest.mark.backends("sqlite")
def test_every_org_scoped_route_family_is_covered(app):
    names = {a for _, _, args in _id_routes(app) for a in args}
    assert names, "no route takes an object id?"
