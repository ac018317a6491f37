"""What the benchmark pages need beyond :mod:`analytics.benchmark.service`.

:mod:`service` holds the database operations (editions, responses, frames, exports, page
data). This module adds the few things the web pages ask for and the core does not:

- where an edition stands in time (:func:`edition_state`) and which one is answerable now
  (:func:`current_edition`);
- the editions a body took part in (:func:`body_editions`);
- the analyst's aggregates kept per process (:func:`analyst_overview`): turning 1,000
  bodies' answers into protected tables takes over a second, while the data behind them
  changes far less often than the page is read. The cache key is a fingerprint of every
  row the tables come from, so a new answer, a submission, a closing, a new release or a
  changed body shows at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import OrderedDict
from typing import Any

from sqlalchemy import func, select

from analytics.benchmark import service
from analytics.benchmark.anonymise import Policy
from analytics.benchmark.models import (
    BaselineEdition,
    BenchmarkRelease,
    EditionStatus,
    Respondent,
    SurveyEdition,
    SurveyResponse,
)
from contacts.db import db, utcnow
from contacts.models import Organisation

CACHE_SIZE = 8


def edition_state(edition: SurveyEdition, now: dt.datetime | None = None) -> str:
    """``upcoming``, ``open`` (answers accepted), ``ended`` (past its dates) or ``closed``."""
    now = now or utcnow()
    if edition.status == EditionStatus.CLOSED:
        return "closed"
    if edition.status == EditionStatus.DRAFT or now < edition.opens_at:
        return "upcoming"
    return "open" if now < edition.closes_at else "ended"


def current_edition(now: dt.datetime | None = None) -> SurveyEdition | None:
    """The edition accepting answers now (the most recently opened one if several)."""
    now = now or utcnow()
    return db.session.scalars(
        select(SurveyEdition)
        .where(
            SurveyEdition.status == EditionStatus.OPEN,
            SurveyEdition.opens_at <= now,
            SurveyEdition.closes_at > now,
        )
        .order_by(SurveyEdition.opens_at.desc(), SurveyEdition.id.desc())
    ).first()


def get_edition_by_code(code: str) -> SurveyEdition | None:
    return db.session.scalars(select(SurveyEdition).where(SurveyEdition.code == code)).first()


def body_editions(org_id: int) -> list[tuple[SurveyEdition, SurveyResponse]]:
    """The editions a body has a response to (draft or submitted), most recent first."""
    rows = db.session.execute(
        select(SurveyEdition, SurveyResponse)
        .join(SurveyResponse, SurveyResponse.edition_id == SurveyEdition.id)
        .where(SurveyResponse.organisation_id == org_id)
        .order_by(SurveyEdition.opens_at.desc(), SurveyEdition.id.desc())
    ).all()
    return [(edition, response) for edition, response in rows]


# --- the analyst's aggregates, kept per process ------------------------------------------


class _Lru(OrderedDict):
    def get_or(self, key: Any, build: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = build()
        self[key] = value
        while len(self) > CACHE_SIZE:
            self.popitem(last=False)
        return value


_OVERVIEWS = _Lru()


def data_fingerprint(edition_id: int) -> str:
    """A digest of every row the analyst's tables of an edition are computed from.

    Responses and respondents of this edition and of earlier ones (trends), the bodies'
    kind, region and population, the releases and the baselines. Aggregate queries only:
    a few milliseconds for 1,000 bodies.
    """
    edition = db.session.get(SurveyEdition, edition_id)
    editions = [
        e
        for e in db.session.scalars(select(SurveyEdition).order_by(SurveyEdition.id))
        if e.id == edition_id or (edition is not None and e.opens_at < edition.opens_at)
    ]
    ids = [e.id for e in editions]
    parts: list[Any] = [
        [(e.id, e.code, e.status, str(e.opens_at), str(e.closes_at)) for e in editions]
    ]
    parts.append(
        db.session.execute(
            select(
                SurveyResponse.edition_id,
                SurveyResponse.status,
                func.count(),
                func.sum(SurveyResponse.id),
                func.max(SurveyResponse.updated_at),
                func.max(SurveyResponse.observed_at),
                func.max(SurveyResponse.submitted_at),
            )
            .where(SurveyResponse.edition_id.in_(ids))
            .group_by(SurveyResponse.edition_id, SurveyResponse.status)
            .order_by(SurveyResponse.edition_id, SurveyResponse.status)
        ).all()
    )
    parts.append(
        db.session.execute(
            select(
                SurveyResponse.edition_id,
                Respondent.role,
                func.count(),
                func.sum(Respondent.id),
                func.max(Respondent.updated_at),
            )
            .join(SurveyResponse, SurveyResponse.id == Respondent.response_id)
            .where(SurveyResponse.edition_id.in_(ids))
            .group_by(SurveyResponse.edition_id, Respondent.role)
            .order_by(SurveyResponse.edition_id, Respondent.role)
        ).all()
    )
    bodies = hashlib.sha256()
    for row in db.session.execute(
        select(
            Organisation.id, Organisation.kind, Organisation.region, Organisation.population
        ).order_by(Organisation.id)
    ):
        bodies.update(repr(tuple(row)).encode())
    parts.append(bodies.hexdigest())
    parts.append(
        db.session.execute(
            select(func.count(), func.max(BenchmarkRelease.id)).where(
                BenchmarkRelease.edition_id == edition_id
            )
        ).one()
    )
    parts.append(db.session.execute(select(func.count(), func.max(BaselineEdition.id))).one())
    raw = json.dumps(parts, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def analyst_overview(edition_id: int, policy: Policy) -> dict[str, Any]:
    """:func:`service.analyst_overview`, computed once per state of the data and thresholds."""
    key = (edition_id, data_fingerprint(edition_id), policy.k, policy.dominance, policy.rounding)
    return _OVERVIEWS.get_or(key, lambda: service.analyst_overview(edition_id, policy=policy))


def forget_cached() -> None:
    """Drop what this process keeps (tests, and after bulk changes made outside the app)."""
    _OVERVIEWS.clear()


def edition_counts() -> dict[int, dict[str, int]]:
    """Per edition: responses submitted and in progress, for the analyst's list."""
    out: dict[int, dict[str, int]] = {}
    for edition_id, status, count in db.session.execute(
        select(SurveyResponse.edition_id, SurveyResponse.status, func.count()).group_by(
            SurveyResponse.edition_id, SurveyResponse.status
        )
    ):
        out.setdefault(edition_id, {"draft": 0, "submitted": 0})[status] = int(count)
    return out


def bodies_count() -> int:
    """Every body is invited to every edition."""
    return int(db.session.scalar(select(func.count(Organisation.id))) or 0)
