"""The benchmark demo: something to see for the demo body and for the analyst."""

from __future__ import annotations

from sqlalchemy import func, select

from analytics.benchmark import service, services
from analytics.benchmark.anonymise import Policy
from analytics.benchmark.demo import DEMO_BODIES, seed_benchmark_demo
from analytics.benchmark.models import SurveyEdition, SurveyResponse
from contacts.db import db
from tests.factories import make_org


def test_the_demo_gives_the_body_its_peers_and_the_analyst_a_sector(app):
    org = make_org("Ville de Belcombe-sur-Loire", population=12400)  # as webapp.demo seeds it
    current = seed_benchmark_demo(org)
    db.session.commit()
    assert services.current_edition().id == current.id
    assert service.get_response(org.id, current.id) is None  # left for the demo users
    previous = next(e for e in service.list_editions() if e.id != current.id)
    page = service.body_benchmark(org.id, previous.id)
    assert page["response_status"] == "submitted"
    groups = {r["peer_group"] for r in page["rows"] if r["peer_value"] is not None}
    assert "organismes du même type et de même taille" in groups
    overview = services.analyst_overview(current.id, Policy())
    assert overview["response_rates"]["total"][0]["submitted"] == DEMO_BODIES


def test_seeding_the_demo_twice_adds_nothing(org):
    first = seed_benchmark_demo(org)
    db.session.commit()
    responses = db.session.scalar(select(func.count(SurveyResponse.id)))
    assert seed_benchmark_demo(org).id == first.id
    assert db.session.scalar(select(func.count(SurveyEdition.id))) == 2
    assert db.session.scalar(select(func.count(SurveyResponse.id))) == responses
