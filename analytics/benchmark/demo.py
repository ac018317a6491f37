"""Demo data for the benchmark: the 2010 baseline stored, an open edition, the body's answers.

Called by ``webapp.demo_content`` when seeding the demo body; safe to call twice.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select

from analytics.benchmark import service
from analytics.benchmark.baselines import ensure_shipped_baseline
from analytics.benchmark.models import SurveyEdition
from analytics.benchmark.survey import load_survey_definition
from analytics.benchmark.synthetic import synthetic_answers
from contacts.db import db, utcnow
from contacts.models import Organisation

DEMO_EDITION = "pratiques-email-2026"


def seed_benchmark_demo(org: Organisation, *, now: dt.datetime | None = None) -> SurveyEdition:
    """Store the baseline, open the demo edition if needed, and answer it for ``org``."""
    now = now or utcnow()
    ensure_shipped_baseline()
    edition = db.session.scalars(
        select(SurveyEdition).where(SurveyEdition.code == DEMO_EDITION)
    ).first()
    if edition is None:
        defn = load_survey_definition()
        edition = service.open_edition(
            DEMO_EDITION, defn["title"], now - dt.timedelta(days=30), now + dt.timedelta(days=60)
        )
    if service.get_response(org.id, edition.id) is not None:
        return edition
    rng = random.Random(org.id)
    for role in ("agent", "elected"):
        person = service.add_respondent(org.id, edition.id, role, now=now)
        answers = {
            k: v for k, v in synthetic_answers(edition.questions, rng).items() if k != "commentaire"
        }
        service.save_answers(org.id, person.id, answers, now=now)
    service.submit_response(org.id, edition.id, now=now)
    return edition
