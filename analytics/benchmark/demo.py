"""Demo data for the benchmark: two editions answered by ~40 fictitious bodies.

``make run`` seeds one demo body; alone, it would have no peers to compare with and the
analyst no sector to look at. :func:`seed_benchmark_demo` adds, with the core's synthetic
answers (:mod:`analytics.benchmark.synthetic`):

- a closed edition of last year, answered by the fictitious bodies and by the demo body,
  with one published release, so the demo body's page shows its peers;
- this year's edition, open, answered by the fictitious bodies only, so the demo users
  can answer it themselves and the analyst sees answers arrive and trends.

About a third of the fictitious bodies share the demo body's kind and population band,
so its "bodies like you" comparison usually has the k bodies it needs (disclosure control
may still hide it, when subtracting it from a total would isolate one other body). Every
name says it is fictitious; the bodies have no users, lists or contacts. The lead's demo seeding
(``webapp.demo_content``) calls it once the demo body exists.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from analytics.benchmark import service
from analytics.benchmark.aggregate import POPULATION_BANDS, population_band
from analytics.benchmark.anonymise import Policy
from analytics.benchmark.baselines import ensure_shipped_baseline
from analytics.benchmark.indicators import response_indicators
from analytics.benchmark.models import (
    EditionStatus,
    Respondent,
    ResponseStatus,
    SurveyEdition,
    SurveyResponse,
)
from analytics.benchmark.survey import clean_answers
from analytics.benchmark.synthetic import synthetic_records
from contacts.db import db, utcnow
from contacts.models import Organisation
from contacts.organisations import create_organisation

DEMO_BODIES = 40
LIKE_DEMO = 14  # fictitious bodies of the demo body's kind and band
SEED = 2026


def seed_benchmark_demo(
    org: Organisation, *, now: dt.datetime | None = None, bodies: int = DEMO_BODIES
) -> SurveyEdition:
    """Seed the benchmark demo beside ``org`` and return the open edition.

    Safe to call twice: when any edition exists already, nothing is added and the most
    recent edition is returned. Flushes only: the caller commits with the rest of the demo.
    """
    ensure_shipped_baseline()
    existing = service.latest_edition()
    if existing is not None:
        return existing
    now = now or utcnow()
    year = now.year
    previous = service.open_edition(
        str(year - 1),
        f"Pratiques de communication par e-mail — édition {year - 1}",
        now - dt.timedelta(days=400),
        now - dt.timedelta(days=300),
    )
    current = service.open_edition(
        str(year),
        f"Pratiques de communication par e-mail — édition {year}",
        now - dt.timedelta(days=20),
        now + dt.timedelta(days=70),
    )
    records = list(synthetic_records(previous.questions, bodies * 2 + 1, seed=SEED))
    band = population_band(org.population)
    low, high = next(((lo, hi) for code, _, lo, hi in POPULATION_BANDS if code == band), (0, None))
    rng = random.Random(SEED)
    orgs = []
    for i in range(bodies):
        rec = records[i]
        kind, population = rec["kind"], rec["population"]
        if i < LIKE_DEMO:
            kind = org.kind
            population = rng.randint(low, (high or low * 3 or 10_000) - 1)
        orgs.append(
            create_organisation(
                f"Organisme fictif n° {i + 1} (démo du baromètre)",
                kind,
                rec["region"],
                population,
            )
        )
    for edition, offset in ((previous, 0), (current, bodies)):
        submitted_at = min(now, edition.closes_at) - dt.timedelta(days=5)
        for body, rec in zip(orgs, records[offset : offset + bodies], strict=True):
            _submitted(body.id, edition, rec, submitted_at)
    _submitted(org.id, previous, records[-1], previous.closes_at - dt.timedelta(days=3))
    previous.status = EditionStatus.CLOSED
    db.session.flush()
    service.export_edition(previous.id, "json", policy=Policy(), now=previous.closes_at)
    return current


def _submitted(
    org_id: int, edition: SurveyEdition, record: dict[str, Any], at: dt.datetime
) -> SurveyResponse:
    people = [
        {"role": person["role"], "answers": clean_answers(edition.questions, person["answers"])}
        for person in record["respondents"]
    ]
    response = SurveyResponse(
        organisation_id=org_id,
        edition_id=edition.id,
        status=ResponseStatus.SUBMITTED,
        indicators=response_indicators(edition.questions, people),
        observed=record["observed"],
        observed_at=at,
        submitted_at=at,
    )
    db.session.add(response)
    db.session.flush()
    for person in people:
        db.session.add(
            Respondent(
                organisation_id=org_id,
                response_id=response.id,
                role=person["role"],
                answers=person["answers"],
            )
        )
    db.session.flush()
    return response
