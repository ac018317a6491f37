"""Database services of the benchmark: editions, answers with progress, frames, exports.

Thin on purpose: each function loads or stores rows and hands the work to the pure
modules (survey, indicators, aggregate, anonymise, export, pages). Functions ``flush``;
the edge (view, API, CLI) commits. :func:`export_edition` records a release, which must
be committed *before* the bytes are handed out, or the next export could not be checked
against it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from analytics.benchmark import export as export_mod
from analytics.benchmark.aggregate import build_frames, population_band
from analytics.benchmark.anonymise import Policy, Release
from analytics.benchmark.baselines import list_baseline_tables
from analytics.benchmark.indicators import (
    body_indicators,
    observed_indicators,
    response_indicators,
)
from analytics.benchmark.models import (
    BenchmarkRelease,
    EditionStatus,
    Respondent,
    RespondentRole,
    ResponseStatus,
    SurveyEdition,
    SurveyResponse,
)
from analytics.benchmark.pages import analyst_page, body_page
from analytics.benchmark.survey import (
    DEFAULT_SURVEY,
    Progress,
    answer_progress,
    clean_answers,
    load_survey_definition,
)
from contacts.db import DomainError, db, get_scoped, scoped, utcnow
from contacts.i18n import N_
from contacts.models import Organisation

# --- editions ----------------------------------------------------------------------------


def open_edition(
    code: str,
    title: str,
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    *,
    definition: str | Mapping[str, Any] = DEFAULT_SURVEY,
    user_id: int | None = None,
    baseline_code: str = "2010",
) -> SurveyEdition:
    """Open an edition of the survey with its dates; the questions are snapshotted."""
    if opens_at.tzinfo is None or closes_at.tzinfo is None:
        raise DomainError("edition_dates", "Les dates doivent préciser leur fuseau horaire.")
    if closes_at <= opens_at:
        raise DomainError("edition_dates", "La date de clôture doit suivre la date d'ouverture.")
    code = code.strip()
    if not code or not title.strip():
        raise DomainError("edition_invalid", "Le code et le titre de l'édition sont obligatoires.")
    if db.session.scalars(select(SurveyEdition.id).where(SurveyEdition.code == code)).first():
        raise DomainError(
            "edition_exists",
            "L'édition « %(code)s » existe déjà.",
            status=409,
            params={"code": code},
        )
    edition = SurveyEdition(
        code=code,
        title=title.strip(),
        opens_at=opens_at,
        closes_at=closes_at,
        questions=load_survey_definition(definition),
        status=EditionStatus.OPEN,
        baseline_code=baseline_code,
        created_by_id=user_id,
    )
    db.session.add(edition)
    db.session.flush()
    return edition


def get_edition(edition_id: int) -> SurveyEdition | None:
    return db.session.get(SurveyEdition, edition_id)


def list_editions() -> list[SurveyEdition]:
    return list(db.session.scalars(select(SurveyEdition).order_by(SurveyEdition.opens_at)))


def latest_edition() -> SurveyEdition | None:
    """The most recent edition that has opened (what ``crieur benchmark export`` exports)."""
    return db.session.scalars(
        select(SurveyEdition).order_by(SurveyEdition.opens_at.desc(), SurveyEdition.id.desc())
    ).first()


def close_edition(edition_id: int, *, now: dt.datetime | None = None) -> SurveyEdition:
    """Close an edition and refresh every submitted response's observed indicators."""
    edition = _edition_or_error(edition_id)
    now = now or utcnow()
    edition.status = EditionStatus.CLOSED
    end = min(now, edition.closes_at)
    responses = db.session.scalars(
        select(SurveyResponse).where(
            SurveyResponse.edition_id == edition.id,
            SurveyResponse.status == ResponseStatus.SUBMITTED,
        )
    ).all()
    for response in responses:
        response.observed = observed_indicators(response.organisation_id, edition.opens_at, end)
        response.observed_at = now
    db.session.flush()
    return edition


def _edition_or_error(edition_id: int) -> SurveyEdition:
    edition = get_edition(edition_id)
    if edition is None:
        raise DomainError("not_found", "Édition introuvable.", status=404)
    return edition


def _require_open(edition: SurveyEdition, now: dt.datetime) -> None:
    if edition.status != EditionStatus.OPEN or not edition.opens_at <= now < edition.closes_at:
        raise DomainError(
            "edition_closed", "Cette édition du questionnaire n'est pas ouverte.", status=409
        )


# --- a body's response --------------------------------------------------------------------


def get_response(org_id: int, edition_id: int) -> SurveyResponse | None:
    return db.session.scalars(
        scoped(SurveyResponse, org_id).where(SurveyResponse.edition_id == edition_id)
    ).first()


def start_response(
    org_id: int, edition_id: int, *, now: dt.datetime | None = None
) -> SurveyResponse:
    """The body's response to the edition, created on first use (one per body and edition)."""
    edition = _edition_or_error(edition_id)
    _require_open(edition, now or utcnow())
    response = get_response(org_id, edition_id)
    if response is not None:
        return response
    try:
        with db.session.begin_nested():
            response = SurveyResponse(organisation_id=org_id, edition_id=edition_id)
            db.session.add(response)
    except IntegrityError:  # another respondent of the same body got there first
        response = get_response(org_id, edition_id)
        if response is None:
            raise
    return response


def add_respondent(
    org_id: int,
    edition_id: int,
    role: str,
    *,
    user_id: int | None = None,
    now: dt.datetime | None = None,
) -> Respondent:
    """Add an agent or an elected official to the body's response."""
    try:
        role = RespondentRole(role)
    except ValueError as exc:
        raise DomainError(
            "respondent_role", "Le répondant doit être un agent ou un élu (agent, elected)."
        ) from exc
    response = start_response(org_id, edition_id, now=now)
    _require_draft(response)
    respondent = Respondent(
        organisation_id=org_id, response_id=response.id, role=role, user_id=user_id, answers={}
    )
    db.session.add(respondent)
    db.session.flush()
    return respondent


def list_respondents(org_id: int, edition_id: int) -> list[Respondent]:
    response = get_response(org_id, edition_id)
    if response is None:
        return []
    return list(
        db.session.scalars(
            scoped(Respondent, org_id)
            .where(Respondent.response_id == response.id)
            .order_by(Respondent.id)
        )
    )


def _require_draft(response: SurveyResponse) -> None:
    if response.status != ResponseStatus.DRAFT:
        raise DomainError(
            "response_submitted", "La réponse de votre organisme a déjà été validée.", status=409
        )


def _respondent_context(
    org_id: int, respondent_id: int, now: dt.datetime
) -> tuple[Respondent, SurveyResponse, SurveyEdition]:
    respondent = get_scoped(Respondent, org_id, respondent_id)
    if respondent is None:
        raise DomainError("not_found", "Répondant introuvable.", status=404)
    response = db.session.get(SurveyResponse, respondent.response_id)
    edition = _edition_or_error(response.edition_id)
    _require_open(edition, now)
    _require_draft(response)
    return respondent, response, edition


def save_answers(
    org_id: int,
    respondent_id: int,
    answers: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
) -> Progress:
    """Save some answers of one respondent (a page of the form); blanks clear an answer.

    Answers already saved are kept; invalid ones are refused all together, with a message
    per question, so the form can show them beside each field.
    """
    now = now or utcnow()
    respondent, response, edition = _respondent_context(org_id, respondent_id, now)
    cleaned = clean_answers(edition.questions, answers)
    merged = {**respondent.answers, **cleaned}
    for qid, value in answers.items():
        if qid not in cleaned and value in (None, "", [], ()):
            merged.pop(qid, None)
    respondent.answers = merged
    respondent.updated_at = now
    response.updated_at = now
    db.session.flush()
    return answer_progress(edition.questions, merged)


def remove_respondent(org_id: int, respondent_id: int, *, now: dt.datetime | None = None) -> None:
    respondent, _, _ = _respondent_context(org_id, respondent_id, now or utcnow())
    db.session.delete(respondent)
    db.session.flush()


def response_progress(org_id: int, edition_id: int) -> dict[str, Any]:
    """Per respondent and overall progress of the body's response."""
    edition = _edition_or_error(edition_id)
    response = get_response(org_id, edition_id)
    people = []
    for r in list_respondents(org_id, edition_id):
        progress = answer_progress(edition.questions, r.answers)
        people.append({"id": r.id, "role": r.role, "progress": progress})
    return {
        "status": response.status if response else None,
        "respondents": people,
        "complete": bool(people) and all(p["progress"].is_complete for p in people),
    }


def submit_response(
    org_id: int,
    edition_id: int,
    *,
    user_id: int | None = None,
    now: dt.datetime | None = None,
) -> SurveyResponse:
    """Validate the body's response: every respondent who started must have finished.

    Respondents with no answer at all are dropped. Observed indicators are computed over
    the edition's period so far (refreshed again at closing).
    """
    now = now or utcnow()
    edition = _edition_or_error(edition_id)
    _require_open(edition, now)
    response = get_response(org_id, edition_id)
    if response is None:
        raise DomainError("response_empty", "Aucune réponse à valider pour cette édition.")
    _require_draft(response)
    people = list_respondents(org_id, edition_id)
    for person in [p for p in people if not p.answers]:
        db.session.delete(person)
    people = [p for p in people if p.answers]
    if not people:
        raise DomainError("response_empty", "Aucune réponse à valider pour cette édition.")
    for person in people:
        clean_answers(edition.questions, person.answers, require_complete=True)
    response.indicators = response_indicators(
        edition.questions, [{"role": p.role, "answers": p.answers} for p in people]
    )
    response.observed = observed_indicators(org_id, edition.opens_at, min(now, edition.closes_at))
    response.observed_at = now
    response.status = ResponseStatus.SUBMITTED
    response.submitted_at = now
    response.submitted_by_id = user_id
    db.session.flush()
    return response


# --- sector data --------------------------------------------------------------------------


def edition_records(edition_id: int) -> list[dict[str, Any]]:
    """Submitted responses as records for :func:`aggregate.build_frames`.

    The record key is the response id: the frames never hold an organisation's id or
    name, and free-text answers are dropped by the indicator functions.
    """
    # Column queries, not entities: ORM instances for 3,000 rows cost more than the maths.
    rows = db.session.execute(
        select(
            SurveyResponse.id,
            SurveyResponse.observed,
            SurveyResponse.indicators,
            Organisation.kind,
            Organisation.region,
            Organisation.population,
        )
        .join(Organisation, Organisation.id == SurveyResponse.organisation_id)
        .where(
            SurveyResponse.edition_id == edition_id,
            SurveyResponse.status == ResponseStatus.SUBMITTED,
        )
        .order_by(SurveyResponse.id)
    ).all()
    # Answers are read only for responses stored without their indicators (older rows).
    people: dict[int, list[dict[str, Any]]] = {
        r.id: [] for r in rows if not (r.indicators or {}).get("body")
    }
    if people:
        for response_id, role, answers in db.session.execute(
            select(Respondent.response_id, Respondent.role, Respondent.answers)
            .where(Respondent.response_id.in_(list(people)))
            .order_by(Respondent.id)
        ):
            people[response_id].append({"role": role, "answers": answers or {}})
    return [
        {
            "body": f"r{r.id}",
            "kind": r.kind,
            "region": r.region,
            "population": r.population,
            "respondents": people.get(r.id, []),
            "indicators": r.indicators or {},
            "observed": r.observed or {},
        }
        for r in rows
    ]


def load_edition_frames(edition_id: int) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """(definition, bodies, roles) of an edition's submitted responses."""
    edition = _edition_or_error(edition_id)
    bodies, roles = build_frames(edition_records(edition_id), edition.questions)
    return edition.questions, bodies, roles


def participation_frame(edition_id: int) -> pd.DataFrame:
    """Every body, with its response status and respondent counts, for response rates."""
    orgs = db.session.execute(
        select(Organisation.id, Organisation.kind, Organisation.region, Organisation.population)
    ).all()
    status = dict(
        db.session.execute(
            select(SurveyResponse.organisation_id, SurveyResponse.status).where(
                SurveyResponse.edition_id == edition_id
            )
        ).all()
    )
    counts: dict[tuple[int, str], int] = {}
    for org_id, role, n in db.session.execute(
        select(Respondent.organisation_id, Respondent.role, func.count())
        .join(SurveyResponse, SurveyResponse.id == Respondent.response_id)
        .where(SurveyResponse.edition_id == edition_id)
        .group_by(Respondent.organisation_id, Respondent.role)
    ):
        counts[(org_id, role)] = int(n)
    records = [
        {
            "kind": kind,
            "region": region or N_("non renseignée"),
            "band": population_band(population),
            "status": status.get(oid, "none"),
            "agents": counts.get((oid, "agent"), 0),
            "elected": counts.get((oid, "elected"), 0),
        }
        for oid, kind, region, population in orgs
    ]
    columns = ["kind", "region", "band", "status", "agents", "elected"]
    return pd.DataFrame.from_records(records, columns=columns)


def edition_releases(edition_id: int) -> list[BenchmarkRelease]:
    return list(
        db.session.scalars(
            select(BenchmarkRelease)
            .where(BenchmarkRelease.edition_id == edition_id)
            .order_by(BenchmarkRelease.created_at, BenchmarkRelease.id)
        )
    )


def _as_release(row: BenchmarkRelease) -> Release:
    return Release(snapshot=row.snapshot, published=frozenset(row.published_cells))


def _baseline_for(edition: SurveyEdition):  # noqa: ANN202 - BaselineTable | None
    return next((t for t in list_baseline_tables() if t.code == edition.baseline_code), None)


@dataclass(frozen=True)
class ExportResult:
    data: bytes
    filename: str
    content_type: str
    release_id: int


def export_edition(
    edition_id: int,
    fmt: str,
    *,
    policy: Policy | None = None,
    user_id: int | None = None,
    now: dt.datetime | None = None,
) -> ExportResult:
    """Build the anonymised export of an edition and record it as a release.

    The same data exported twice yields the same figures and reuses the last release;
    otherwise a new release is stored (flush only: commit before serving the bytes).
    """
    if fmt not in export_mod.FORMATS:
        raise DomainError(
            "export_format", "Format d'export inconnu : choisissez csv, json ou xlsx."
        )
    policy = policy or Policy()
    now = now or utcnow()
    edition = _edition_or_error(edition_id)
    defn, bodies, roles = load_edition_frames(edition_id)
    history = edition_releases(edition_id)
    result = export_mod.build_export(
        bodies,
        roles,
        defn,
        edition={
            "code": edition.code,
            "title": edition.title,
            "opens_at": edition.opens_at,
            "closes_at": edition.closes_at,
        },
        policy=policy,
        releases=[_as_release(r) for r in history],
        baseline=_baseline_for(edition),
        generated_at=now,
    )
    params = {"k": policy.k, "dominance": policy.dominance, "rounding": policy.rounding}
    fingerprint = hashlib.sha256(
        json.dumps(
            [result.release.snapshot, sorted(result.release.published), params],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    if history and history[-1].fingerprint == fingerprint:
        release = history[-1]  # the same figures again: same release, same number
        result.metadata = [
            (label, str(len(history)) if label == "Diffusion n°" else text)
            for label, text in result.metadata
        ]
    else:
        release = BenchmarkRelease(
            edition_id=edition.id,
            fingerprint=fingerprint,
            snapshot=result.release.snapshot,
            published_cells=sorted(result.release.published),
            figures=result.figures,
            params=params,
            created_by_id=user_id,
            created_at=now,
        )
        db.session.add(release)
        db.session.flush()
    return ExportResult(
        data=export_mod.render_export(result, fmt),
        filename=export_mod.export_filename(edition.code, fmt, now),
        content_type=export_mod.CONTENT_TYPES[fmt],
        release_id=release.id,
    )


# --- pages --------------------------------------------------------------------------------


def body_benchmark(org_id: int, edition_id: int, *, now: dt.datetime | None = None) -> dict:
    """The body's benchmark page data (see :func:`pages.body_page`)."""
    edition = _edition_or_error(edition_id)
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise DomainError("not_found", "Organisme introuvable.", status=404)
    response = get_response(org_id, edition_id)
    people = [{"role": p.role, "answers": p.answers} for p in list_respondents(org_id, edition_id)]
    declared = body_indicators(edition.questions, people)
    if response is not None and response.status == ResponseStatus.SUBMITTED:
        observed = response.observed or {}
    else:
        end = min(now or utcnow(), edition.closes_at)
        observed = observed_indicators(org_id, edition.opens_at, end)
    history = edition_releases(edition_id)
    page = body_page(
        edition.questions,
        declared=declared,
        observed=observed,
        baseline=_baseline_for(edition),
        cells=history[-1].figures if history else None,
        kind=org.kind,
        band=population_band(org.population),
    )
    page["edition"] = {"id": edition.id, "code": edition.code, "title": edition.title}
    page["response_status"] = response.status if response else None
    return page


def analyst_overview(edition_id: int, *, policy: Policy | None = None) -> dict:
    """The analyst's page data for an edition (see :func:`pages.analyst_page`).

    Protected by threshold, dominance, complementary suppression and audit, but not
    checked against releases: a live page can be viewed before and after any answer
    anyway, so that check would cost time without protecting anything. Exports, which
    leave the association, are the ones checked against each other.
    """
    edition = _edition_or_error(edition_id)
    defn, bodies, roles = load_edition_frames(edition_id)
    earlier, years = {}, {edition.code: edition.opens_at.year}
    for other in list_editions():
        if other.opens_at < edition.opens_at:
            earlier[other.code] = load_edition_frames(other.id)[1]
            years[other.code] = other.opens_at.year
    page = analyst_page(
        bodies,
        roles,
        participation_frame(edition_id),
        defn,
        policy=policy,
        baselines=list_baseline_tables(),
        earlier=earlier,
        edition_code=edition.code,
        years=years,
    )
    page["edition"] = {
        "id": edition.id,
        "code": edition.code,
        "title": edition.title,
        "opens_at": edition.opens_at,
        "closes_at": edition.closes_at,
        "status": edition.status,
    }
    return page
