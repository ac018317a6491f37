"""Database operations of the practice benchmark that the pages, the API and the CLI call.

The pure modules (:mod:`survey`, :mod:`indicators`, :mod:`aggregate`, :mod:`anonymise`,
:mod:`export`, :mod:`pages`) know nothing of the database; this module is the thin layer
between them and the tables of :mod:`analytics.benchmark.models`:

- the analyst's editions: open one with its dates, close it, list them;
- a body's response: respondents (agents and elected officials), answers saved as drafts
  with their progress, one submission per edition;
- what the pages and exports need: participation, the edition's frames, the releases,
  the analyst's protected aggregates, the body's own page, the anonymised export.

A body is known to the aggregates only by an opaque key (``r<response id>``): names,
contacts and free-text answers never enter the frames. Services flush; the edge commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select, update

from analytics.benchmark import baselines as baseline_store
from analytics.benchmark import pages
from analytics.benchmark.aggregate import (
    OBSERVED_PREFIX,
    build_frames,
    cell_stats,
    indicator_columns,
    population_band,
)
from analytics.benchmark.anonymise import Policy, Release, frames_from_snapshot
from analytics.benchmark.export import (
    CONTENT_TYPES,
    FORMATS,
    build_export,
    export_filename,
    render_export,
)
from analytics.benchmark.indicators import body_indicators, observed_indicators
from analytics.benchmark.models import (
    BenchmarkRelease,
    EditionStatus,
    Respondent,
    RespondentRole,
    ResponseStatus,
    SurveyEdition,
    SurveyResponse,
)
from analytics.benchmark.survey import (
    DEFAULT_SURVEY,
    Progress,
    answer_progress,
    clean_answer,
    indicator_catalogue,
    iter_questions,
    load_survey_definition,
    questions_by_id,
)
from contacts.db import DomainError, db, get_scoped, scoped, utcnow
from contacts.models import Organisation

MAX_RESPONDENTS = 20
_CACHE_SIZE = 8


# --- editions (the analyst) ---------------------------------------------------------------


def list_editions() -> list[SurveyEdition]:
    """Every edition, the most recent opening first."""
    return list(
        db.session.scalars(
            select(SurveyEdition).order_by(SurveyEdition.opens_at.desc(), SurveyEdition.id.desc())
        )
    )


def get_edition(edition_id: int) -> SurveyEdition | None:
    try:
        return db.session.get(SurveyEdition, int(edition_id))
    except (TypeError, ValueError):
        return None


def get_edition_by_code(code: str) -> SurveyEdition | None:
    return db.session.scalars(select(SurveyEdition).where(SurveyEdition.code == code)).first()


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
        .order_by(SurveyEdition.opens_at.desc())
    ).first()


def open_edition(
    code: str,
    title: str,
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    *,
    user_id: int | None = None,
    definition: str | Mapping[str, Any] = DEFAULT_SURVEY,
    baseline_code: str = baseline_store.SHIPPED_CODE,
) -> SurveyEdition:
    """Open an edition of the survey between two dates, with a frozen copy of its questions."""
    code = (code or "").strip()
    title = (title or "").strip()
    problems = []
    if not code or len(code) > 80 or not all(c.isalnum() or c in "-_" for c in code):
        problems.append("Le code est obligatoire : lettres, chiffres, « - » ou « _ » (ex. 2026).")
    if not title:
        problems.append("Le titre est obligatoire.")
    if opens_at is None or closes_at is None:
        problems.append("Les dates d'ouverture et de clôture sont obligatoires.")
    elif closes_at <= opens_at:
        problems.append("La date de clôture doit suivre la date d'ouverture.")
    if problems:
        raise DomainError("edition_invalid", " ".join(problems), errors=problems)
    if get_edition_by_code(code) is not None:
        raise DomainError("edition_exists", f"Une édition « {code} » existe déjà.", status=409)
    defn = load_survey_definition(definition)
    baseline_store.ensure_shipped_baseline()
    edition = SurveyEdition(
        code=code,
        title=title,
        opens_at=opens_at,
        closes_at=closes_at,
        questions=defn,
        status=EditionStatus.OPEN,
        baseline_code=baseline_code,
        created_by_id=user_id,
    )
    db.session.add(edition)
    db.session.flush()
    return edition


def close_edition(edition_id: int, *, now: dt.datetime | None = None) -> SurveyEdition:
    """Stop accepting answers; the period ends now if earlier, observed values are refreshed."""
    now = now or utcnow()
    edition = _edition_or_error(edition_id)
    if edition.status == EditionStatus.CLOSED:
        raise DomainError("edition_closed", "Cette édition est déjà close.", status=409)
    edition.status = EditionStatus.CLOSED
    if now < edition.closes_at:
        edition.closes_at = max(now, edition.opens_at)
    for response in db.session.scalars(
        select(SurveyResponse).where(
            SurveyResponse.edition_id == edition.id,
            SurveyResponse.status == ResponseStatus.SUBMITTED,
        )
    ):
        _refresh_observed(response, edition)
    db.session.flush()
    return edition


def _edition_or_error(edition_id: int) -> SurveyEdition:
    edition = get_edition(edition_id)
    if edition is None:
        raise DomainError("edition_not_found", "Édition introuvable.", status=404)
    return edition


# --- a body's response ----------------------------------------------------------------------


@dataclass
class SaveResult:
    """What saving a draft gives back: progress, and answers refused (kept out) by question."""

    progress: Progress
    errors: dict[str, str] = field(default_factory=dict)


def get_response(org_id: int, edition_id: int) -> SurveyResponse | None:
    return db.session.scalars(
        scoped(SurveyResponse, org_id).where(SurveyResponse.edition_id == edition_id)
    ).first()


def respondents_of(org_id: int, response_id: int) -> list[Respondent]:
    return list(
        db.session.scalars(
            scoped(Respondent, org_id)
            .where(Respondent.response_id == response_id)
            .order_by(Respondent.id)
        )
    )


def get_respondent(org_id: int, respondent_id: int) -> Respondent | None:
    return get_scoped(Respondent, org_id, respondent_id)


def _accepting(edition: SurveyEdition, now: dt.datetime) -> None:
    state = edition_state(edition, now)
    if state == "upcoming":
        raise DomainError(
            "edition_not_open",
            f"Le questionnaire ouvre le {edition.opens_at:%d/%m/%Y}.",
            status=409,
        )
    if state != "open":
        raise DomainError(
            "edition_closed", "Cette édition est close : les réponses ne sont plus modifiables.",
            status=409,
        )  # fmt: skip


def _draft(org_id: int, edition: SurveyEdition) -> SurveyResponse:
    response = get_response(org_id, edition.id)
    if response is not None and response.status == ResponseStatus.SUBMITTED:
        raise DomainError(
            "already_submitted",
            "Votre organisme a déjà envoyé sa réponse à cette édition.",
            status=409,
        )
    return response


def add_respondent(
    org_id: int,
    edition_id: int,
    role: str,
    *,
    user_id: int | None = None,
    now: dt.datetime | None = None,
) -> Respondent:
    """A new respondent (agent or elected official) in the body's response, started if need be."""
    edition = _edition_or_error(edition_id)
    _accepting(edition, now or utcnow())
    if role not in tuple(RespondentRole):
        raise DomainError("respondent_role", "Choisissez « agent » ou « élu·e ».")
    response = _draft(org_id, edition)
    if response is None:
        response = SurveyResponse(organisation_id=org_id, edition_id=edition.id)
        db.session.add(response)
        db.session.flush()
    elif len(respondents_of(org_id, response.id)) >= MAX_RESPONDENTS:
        raise DomainError(
            "respondents_limit", f"{MAX_RESPONDENTS} répondants au plus par organisme."
        )
    respondent = Respondent(
        organisation_id=org_id, response_id=response.id, role=role, user_id=user_id, answers={}
    )
    db.session.add(respondent)
    db.session.flush()
    return respondent


def _respondent_in_draft(
    org_id: int, respondent_id: int, now: dt.datetime
) -> tuple[Respondent, SurveyResponse, SurveyEdition]:
    respondent = get_respondent(org_id, respondent_id)
    if respondent is None:
        raise DomainError("respondent_not_found", "Répondant introuvable.", status=404)
    response = db.session.get(SurveyResponse, respondent.response_id)
    edition = db.session.get(SurveyEdition, response.edition_id)
    _accepting(edition, now)
    _draft(org_id, edition)
    return respondent, response, edition


def remove_respondent(org_id: int, respondent_id: int, *, now: dt.datetime | None = None) -> None:
    respondent, _, _ = _respondent_in_draft(org_id, respondent_id, now or utcnow())
    db.session.delete(respondent)
    db.session.flush()


def required_for(defn: Mapping[str, Any], role: str) -> list[str]:
    """Required questions for a role: elected officials owe only the opinion questions.

    Factual questions (``agents_first``) are the agents' to answer; an elected official may
    still answer them, and their answer counts when no agent answered.
    """
    return [
        q["id"]
        for q in iter_questions(defn)
        if q.get("required")
        and (role == RespondentRole.AGENT or q.get("respondents", "agents_first") == "all")
    ]


def respondent_progress(defn: Mapping[str, Any], respondent: Respondent) -> Progress:
    """Progress of one respondent, counting only the required questions of their role."""
    base = answer_progress(defn, respondent.answers or {})
    required = required_for(defn, respondent.role)
    given = {k for k, v in (respondent.answers or {}).items() if v not in (None, "", [], ())}
    return Progress(
        answered=base.answered,
        total=base.total,
        required_answered=sum(1 for q in required if q in given),
        required_total=len(required),
        missing_required=[q for q in required if q not in given],
    )


def save_answers(
    org_id: int,
    respondent_id: int,
    raw: Mapping[str, Any],
    *,
    role: str | None = None,
    now: dt.datetime | None = None,
) -> SaveResult:
    """Save a respondent's draft: valid answers are kept, invalid ones reported by question.

    ``raw`` holds the answers of the questions shown (a blank value clears an answer), so
    a page showing one section never erases the others.
    """
    respondent, response, edition = _respondent_in_draft(org_id, respondent_id, now or utcnow())
    defn = edition.questions
    questions = questions_by_id(defn)
    answers = dict(respondent.answers or {})
    errors: dict[str, str] = {}
    for qid, value in raw.items():
        if qid not in questions:
            continue
        try:
            cleaned = clean_answer(questions[qid], value)
        except DomainError as exc:
            errors[qid] = exc.message
            continue
        if cleaned is None:
            answers.pop(qid, None)
        else:
            answers[qid] = cleaned
    if role is not None:
        if role not in tuple(RespondentRole):
            raise DomainError("respondent_role", "Choisissez « agent » ou « élu·e ».")
        respondent.role = role
    respondent.answers = answers
    response.updated_at = utcnow()
    db.session.flush()
    return SaveResult(respondent_progress(defn, respondent), errors)


def submit_response(
    org_id: int, edition_id: int, *, user_id: int | None = None, now: dt.datetime | None = None
) -> SurveyResponse:
    """Send the body's response, once: every respondent must have answered their questions.

    The status moves by a conditional UPDATE, so two submissions at the same time (a double
    click, two colleagues) leave one submitted response and one refusal.
    """
    now = now or utcnow()
    edition = _edition_or_error(edition_id)
    _accepting(edition, now)
    response = _draft(org_id, edition)
    people = respondents_of(org_id, response.id) if response is not None else []
    if not people:
        raise DomainError(
            "no_respondent", "Ajoutez au moins un répondant avant d'envoyer la réponse."
        )
    missing = []
    for n, person in enumerate(people, start=1):
        progress = respondent_progress(edition.questions, person)
        if progress.missing_required:
            missing.append(
                f"Répondant n° {n} : {len(progress.missing_required)} question(s) "
                "obligatoire(s) sans réponse."
            )
    if missing:
        raise DomainError("response_incomplete", " ".join(missing), errors=missing)
    changed = db.session.execute(
        update(SurveyResponse)
        .where(SurveyResponse.id == response.id, SurveyResponse.status == ResponseStatus.DRAFT)
        .values(status=ResponseStatus.SUBMITTED, submitted_at=now, submitted_by_id=user_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise DomainError(
            "already_submitted",
            "Votre organisme a déjà envoyé sa réponse à cette édition.",
            status=409,
        )
    db.session.refresh(response)
    _refresh_observed(response, edition, now)
    db.session.flush()
    return response


def _refresh_observed(
    response: SurveyResponse, edition: SurveyEdition, now: dt.datetime | None = None
) -> None:
    end = min(now or utcnow(), edition.closes_at)
    response.observed = observed_indicators(response.organisation_id, edition.opens_at, end)
    response.observed_at = utcnow()


def body_editions(org_id: int) -> list[tuple[SurveyEdition, SurveyResponse]]:
    """The editions a body has a response to, most recent first."""
    rows = db.session.execute(
        select(SurveyEdition, SurveyResponse)
        .join(SurveyResponse, SurveyResponse.edition_id == SurveyEdition.id)
        .where(SurveyResponse.organisation_id == org_id)
        .order_by(SurveyEdition.opens_at.desc())
    ).all()
    return [(e, r) for e, r in rows]


# --- what the aggregates read ---------------------------------------------------------------


def participation_frame(edition_id: int) -> pd.DataFrame:
    """One row per body (every body is invited): kind, region, band, status, respondents."""
    counts = (
        select(
            Respondent.response_id,
            func.sum(case((Respondent.role == RespondentRole.AGENT, 1), else_=0)).label("a"),
            func.sum(case((Respondent.role == RespondentRole.ELECTED, 1), else_=0)).label("e"),
        )
        .group_by(Respondent.response_id)
        .subquery()
    )
    rows = db.session.execute(
        select(
            Organisation.kind,
            Organisation.region,
            Organisation.population,
            SurveyResponse.status,
            counts.c.a,
            counts.c.e,
        )
        .select_from(Organisation)
        .outerjoin(
            SurveyResponse,
            (SurveyResponse.organisation_id == Organisation.id)
            & (SurveyResponse.edition_id == edition_id),
        )
        .outerjoin(counts, counts.c.response_id == SurveyResponse.id)
    ).all()
    records = [
        {
            "kind": kind or "other",
            "region": region or "non renseignée",
            "band": population_band(population),
            "status": status or "none",
            "agents": int(agents or 0),
            "elected": int(elected or 0),
        }
        for kind, region, population, status, agents, elected in rows
    ]
    columns = ["kind", "region", "band", "status", "agents", "elected"]
    return pd.DataFrame.from_records(records, columns=columns)


def edition_records(edition_id: int) -> list[dict[str, Any]]:
    """Submitted responses as records for :func:`aggregate.build_frames`, keyed opaquely.

    Free-text answers are dropped here already, so no later step can leak them.
    """
    edition = _edition_or_error(edition_id)
    text_ids = {q["id"] for q in iter_questions(edition.questions) if q["type"] == "text"}
    rows = db.session.execute(
        select(
            SurveyResponse.id,
            SurveyResponse.observed,
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
    people: dict[int, list[dict[str, Any]]] = {}
    if rows:
        for response_id, role, answers in db.session.execute(
            select(Respondent.response_id, Respondent.role, Respondent.answers)
            .join(SurveyResponse, SurveyResponse.id == Respondent.response_id)
            .where(
                SurveyResponse.edition_id == edition_id,
                SurveyResponse.status == ResponseStatus.SUBMITTED,
            )
            .order_by(Respondent.id)
        ):
            kept = {k: v for k, v in (answers or {}).items() if k not in text_ids}
            people.setdefault(response_id, []).append({"role": role, "answers": kept})
    return [
        {
            "body": f"r{response_id}",
            "kind": kind,
            "region": region,
            "population": population,
            "respondents": people.get(response_id, []),
            "observed": observed or {},
        }
        for response_id, observed, kind, region, population in rows
    ]


class _Lru(OrderedDict):
    """A small per-process cache of derived frames; keys include a digest of the input."""

    def get_or(self, key: Any, build: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = build()
        self[key] = value
        while len(self) > _CACHE_SIZE:
            self.popitem(last=False)
        return value


_FRAMES = _Lru()
_ANALYST = _Lru()
_RELEASE_CELLS = _Lru()


def _digest(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def edition_frames(edition_id: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(bodies, roles, digest) of an edition's submitted responses.

    Turning answers into indicators costs about a second for 1,000 bodies; the frames are
    kept per process, keyed by a digest of the very records they come from, so a changed
    answer or body is never served stale.
    """
    edition = _edition_or_error(edition_id)
    records = edition_records(edition_id)
    digest = _digest([edition.id, edition.questions.get("code"), records])
    bodies, roles = _FRAMES.get_or(
        (edition.id, digest), lambda: build_frames(records, edition.questions)
    )
    return bodies, roles, digest


def edition_releases(edition_id: int) -> list[BenchmarkRelease]:
    return list(
        db.session.scalars(
            select(BenchmarkRelease)
            .where(BenchmarkRelease.edition_id == edition_id)
            .order_by(BenchmarkRelease.created_at, BenchmarkRelease.id)
        )
    )


def _as_release(row: BenchmarkRelease) -> Release:
    return Release(snapshot=row.snapshot, published=frozenset(row.published_cells or []))


def analyst_data(edition_id: int, policy: Policy) -> dict[str, Any]:
    """The analyst's protected aggregates for an edition (see :func:`pages.analyst_page`)."""
    edition = _edition_or_error(edition_id)
    bodies, roles, digest = edition_frames(edition_id)
    releases = edition_releases(edition_id)
    tables = baseline_store.list_baseline_tables()
    participation = participation_frame(edition_id)
    earlier = {}
    for other in sorted(list_editions(), key=lambda e: e.opens_at):
        if other.opens_at >= edition.opens_at or other.id == edition.id:
            continue
        earlier[other.code] = edition_frames(other.id)[0]
    key = (
        edition.id,
        digest,
        (policy.k, policy.dominance, policy.rounding),
        tuple(r.id for r in releases),
        tuple((t.code, len(t.rows)) for t in tables),
        _digest(participation.to_dict("records")),
        tuple(earlier),
    )
    return _ANALYST.get_or(
        key,
        lambda: pages.analyst_page(
            bodies,
            roles,
            participation,
            edition.questions,
            policy=policy,
            releases=[_as_release(r) for r in releases],
            baselines=tables,
            earlier=earlier,
            edition_code=edition.code,
        ),
    )


# --- the anonymised export ------------------------------------------------------------------


@dataclass
class ExportFile:
    content: bytes
    filename: str
    content_type: str
    summary: dict[str, Any]


def default_export_edition() -> SurveyEdition | None:
    """The edition exported when none is named: the latest one that has responses."""
    return (
        db.session.scalars(
            select(SurveyEdition)
            .where(
                select(SurveyResponse.id)
                .where(
                    SurveyResponse.edition_id == SurveyEdition.id,
                    SurveyResponse.status == ResponseStatus.SUBMITTED,
                )
                .exists()
            )
            .order_by(SurveyEdition.opens_at.desc())
        ).first()
        or db.session.scalars(select(SurveyEdition).order_by(SurveyEdition.opens_at.desc())).first()
    )


def export_edition(
    edition_id: int,
    fmt: str,
    policy: Policy,
    *,
    user_id: int | None = None,
    now: dt.datetime | None = None,
) -> ExportFile:
    """Build, protect and render an edition's export, and record it as a release.

    The release (pseudonymised input and published cells) is what lets the next export
    refuse cells that would differ from this one by fewer than k bodies. Re-exporting
    unchanged data with the same thresholds records nothing new.
    """
    if fmt not in FORMATS:
        raise DomainError(
            "export_format", "Format d'export inconnu : choisissez csv, json ou xlsx."
        )
    now = now or utcnow()
    edition = _edition_or_error(edition_id)
    bodies, roles, _ = edition_frames(edition_id)
    if bodies.empty:
        raise DomainError(
            "export_empty", f"L'édition « {edition.code} » n'a encore aucune réponse envoyée."
        )
    previous = edition_releases(edition_id)
    baseline = _baseline_table(edition.baseline_code)
    export = build_export(
        bodies,
        roles,
        edition.questions,
        edition={
            "code": edition.code,
            "title": edition.title,
            "opens_at": edition.opens_at,
            "closes_at": edition.closes_at,
        },
        policy=policy,
        releases=[_as_release(r) for r in previous],
        baseline=baseline,
        generated_at=now,
    )
    content = render_export(export, fmt)
    params = {"k": policy.k, "dominance": policy.dominance, "rounding": policy.rounding}
    fingerprint = _digest(export.release.snapshot)
    published = sorted(export.release.published)
    last = previous[-1] if previous else None
    if not (
        last is not None
        and last.fingerprint == fingerprint
        and last.params == params
        and sorted(last.published_cells or []) == published
    ):
        db.session.add(
            BenchmarkRelease(
                edition_id=edition.id,
                fingerprint=fingerprint,
                snapshot=export.release.snapshot,
                published_cells=published,
                params=params,
                created_by_id=user_id,
            )
        )
        db.session.flush()
    return ExportFile(
        content=content,
        filename=export_filename(edition.code, fmt, now),
        content_type=CONTENT_TYPES[fmt],
        summary=export.summary,
    )


def _baseline_table(code: str) -> baseline_store.BaselineTable | None:
    for table in baseline_store.list_baseline_tables():
        if table.code == code:
            return table
    return None


def import_baseline(
    data: bytes,
    *,
    code: str,
    title: str,
    year: int,
    source: str,
    user_id: int | None = None,
) -> tuple[Any, tuple[str, ...]]:
    """Load a later baseline edition from CSV beside 2010 (see :mod:`baselines`)."""
    baseline_store.ensure_shipped_baseline()
    known = indicator_catalogue(load_survey_definition())
    return baseline_store.import_baseline_edition(
        data,
        code=code,
        title=title,
        year=year,
        source=source,
        user_id=user_id,
        known_indicators=known,
    )


# --- the body's own page --------------------------------------------------------------------


def release_cells(row: BenchmarkRelease, defn: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The figures a release published, recomputed from its frozen input (cached per release).

    Same numbers as the export that created it: cell statistics of the snapshot, only for
    the cells it published, rounded the same way, quartiles only where it gave them.
    """

    def build() -> dict[str, dict[str, Any]]:
        params = row.params or {}
        k = int(params.get("k", 5))
        step = int(params.get("rounding", 1))
        bodies, roles = frames_from_snapshot(row.snapshot)
        if bodies.empty:
            return {}
        published = set(row.published_cells or [])
        catalogue = indicator_catalogue(defn)
        indicators = indicator_columns(bodies)
        stats = cell_stats(bodies, roles, indicators)
        out: dict[str, dict[str, Any]] = {}
        for rec in stats.to_dict("records"):
            key = "|".join((rec["indicator"], rec["kind"], rec["band"], rec["region"], rec["role"]))
            if key not in published:
                continue
            base = rec["indicator"].removeprefix(OBSERVED_PREFIX)
            quartiles = catalogue.get(base, {}).get("unit") == "pct" and rec["n"] >= 2 * k
            out[key] = {
                "n": int(rec["n"]),
                "value": _round(rec["mean"], step),
                "q1": _round(rec["q1"], step) if quartiles else None,
                "median": _round(rec["median"], step) if quartiles else None,
                "q3": _round(rec["q3"], step) if quartiles else None,
            }
        return out

    return _RELEASE_CELLS.get_or((row.id, row.fingerprint), build)


def _round(value: Any, step: int) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(int(float(value) / step + 0.5) * step)


def latest_release(edition_id: int) -> tuple[BenchmarkRelease | None, SurveyEdition | None]:
    """The release to compare a body with: its edition's last, else the latest of any edition."""
    rows = edition_releases(edition_id)
    if rows:
        return rows[-1], db.session.get(SurveyEdition, edition_id)
    row = db.session.scalars(
        select(BenchmarkRelease).order_by(BenchmarkRelease.created_at.desc())
    ).first()
    return (row, db.session.get(SurveyEdition, row.edition_id)) if row else (None, None)


def body_page_data(
    org_id: int, edition_id: int, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The body's benchmark page for an edition (see :func:`pages.body_page`), plus context.

    Peers come from the last published release, never from live answers: a body cannot
    watch the figures move as each other body answers. Observed values are those stored
    at submission, or computed now over the edition's period while the body is drafting.
    """
    now = now or utcnow()
    edition = _edition_or_error(edition_id)
    org = db.session.get(Organisation, org_id)
    response = get_response(org_id, edition.id)
    people = respondents_of(org_id, response.id) if response is not None else []
    defn = edition.questions
    declared = body_indicators(defn, [{"role": p.role, "answers": p.answers} for p in people])
    if response is not None and response.status == ResponseStatus.SUBMITTED and response.observed:
        observed = dict(response.observed)
    else:
        observed = observed_indicators(org_id, edition.opens_at, min(now, edition.closes_at))
    release, release_edition = latest_release(edition.id)
    cells = release_cells(release, release_edition.questions) if release else None
    band = population_band(org.population)
    data = pages.body_page(
        defn,
        declared=declared,
        observed=observed,
        baseline=_baseline_table(edition.baseline_code),
        cells=cells,
        kind=org.kind or "other",
        band=band,
    )
    data["k"] = int((release.params or {}).get("k", 5)) if release else None
    data["release_edition"] = release_edition.code if release_edition else None
    data["release_date"] = release.created_at if release else None
    data["kind"] = org.kind
    data["band"] = band
    data["status"] = response.status if response is not None else None
    data["published_count"] = (
        sum(1 for key in (cells or {}) if key.endswith("|*|*|*|*")) if cells else 0
    )
    return data
