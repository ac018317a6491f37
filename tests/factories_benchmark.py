"""Builders for the benchmark tests: editions, and bodies that answered them.

Every body built here has a recognisable name, sender address and free-text answer, so
that tests can search exports and pages for them byte by byte.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from analytics.benchmark import service
from analytics.benchmark.synthetic import synthetic_answers
from contacts.db import db, utcnow
from tests.factories import make_org

_n = itertools.count(1)


def make_edition(code: str | None = None, *, days_open: int = 10, days_left: int = 30, **kw: Any):
    now = utcnow()
    return service.open_edition(
        code or f"ed{next(_n)}",
        kw.pop("title", "Pratiques de communication par e-mail — test"),
        now - dt.timedelta(days=days_open),
        now + dt.timedelta(days=days_left),
        **kw,
    )


def complete_answers(defn: dict, seed: int, free_text: str | None = None) -> dict[str, Any]:
    """Answers to every question (the free-text one set to ``free_text`` when given)."""
    answers = synthetic_answers(defn, random.Random(seed))
    answers.pop("commentaire", None)
    if free_text:
        answers["commentaire"] = free_text
    return answers


@dataclass
class AnsweredBody:
    org: Any
    name: str
    emails: list[str]
    free_texts: list[str] = field(default_factory=list)


def answered_body(
    edition,
    *,
    kind: str = "commune",
    region: str = "Bretagne",
    population: int | None = 5000,
    roles: tuple[str, ...] = ("agent",),
    submit: bool = True,
    seed: int | None = None,
) -> AnsweredBody:
    """A body whose respondents answered every question (and, by default, submitted)."""
    n = next(_n)
    name = f"Organisme-Secret-{n:04d}"
    org = make_org(
        name,
        kind=kind,
        region=region,
        population=population,
        from_address=f"communication@secret{n:04d}.example.fr",
        dpo_contact=f"dpo@secret{n:04d}.example.fr",
    )
    body = AnsweredBody(org, name, [org.from_address, org.dpo_contact])
    for i, role in enumerate(roles):
        text = f"Confidentiel-{n:04d}-{i} : réponse libre avec e-mail maire{n}@secret.example.fr"
        body.free_texts.append(text)
        body.emails.append(f"maire{n}@secret.example.fr")
        person = service.add_respondent(org.id, edition.id, role)
        service.save_answers(
            org.id, person.id, complete_answers(edition.questions, (seed or n) * 10 + i, text)
        )
    if submit:
        service.submit_response(org.id, edition.id)
    db.session.flush()
    return body


def sector(edition, count: int = 12, **kw: Any) -> list[AnsweredBody]:
    """``count`` bodies of a few kinds and regions that answered the edition."""
    kinds = ("commune", "commune", "intercommunalite", "association")
    regions = ("Bretagne", "Normandie", "Occitanie")
    bodies = [
        answered_body(
            edition,
            kind=kinds[i % len(kinds)],
            region=regions[i % len(regions)],
            population=3000 + 1000 * i,
            roles=("agent", "elected") if i % 3 == 0 else ("agent",),
            **kw,
        )
        for i in range(count)
    ]
    db.session.commit()
    return bodies
