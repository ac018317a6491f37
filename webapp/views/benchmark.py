"""Baromètre: the practice survey and its comparison pages.

Two audiences, one blueprint:

- a body's users (officer, director, admin) answer the open edition (several respondents,
  each an agent or an elected official, drafts saved, one submission) and read their
  benchmark page: their indicators beside the 2010 baseline and their peers, a practice
  score and recommendations;
- the association's analyst opens and closes editions, loads later baselines, and reads
  sector aggregates and response rates, then exports them anonymised. The analyst never
  sees a body: every figure on those pages is a protected aggregate.

Views are thin: :mod:`analytics.benchmark.service` (and :mod:`.services`) do the work.
Charts are drawn by ``static/benchmark-charts.js`` from JSON data blocks, each next to a
table saying the same thing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from analytics.benchmark import service, services
from analytics.benchmark.aggregate import (
    BAND_LABELS,
    POPULATION_BANDS,
    ROLE_LABELS,
    population_band,
)
from analytics.benchmark.anonymise import Policy
from analytics.benchmark.baselines import import_baseline_edition, list_baseline_tables
from analytics.benchmark.export import FORMATS, KIND_LABELS
from analytics.benchmark.models import Respondent, ResponseStatus, SurveyEdition, SurveyResponse
from analytics.benchmark.pages import THEME_LABELS
from analytics.benchmark.score import DIMENSIONS
from analytics.benchmark.survey import ROLE_LABELS as RESPONDENT_LABELS
from analytics.benchmark.survey import answer_progress, indicator_catalogue, iter_questions
from contacts.db import DomainError, db, get_scoped
from contacts.i18n import N_
from webapp.auth import current_org_id, roles_required
from webapp.i18n import error_text, translate, translate_all, translate_labels
from webapp.templating import current_org

bp = Blueprint("benchmark", __name__, url_prefix="/benchmark")

BODY_ROLES = ("officer", "director", "admin")
PARIS = ZoneInfo("Europe/Paris")
VIEWS = {
    "kind": N_("Type d'organisme"),
    "region": N_("Région"),
    "band": N_("Strate de population"),
    "role": N_("Agents et élus"),
}
STATE_LABELS = {
    "upcoming": N_("à venir"),
    "open": N_("ouverte"),
    "ended": N_("dates passées, pas encore close"),
    "closed": N_("close"),
}
OBSERVED_THEME = "observation"
BAND_ORDER = {code: i for i, (code, *_rest) in enumerate(POPULATION_BANDS)}
MAX_BASELINE_BYTES = 1_000_000


def policy() -> Policy:
    """The disclosure thresholds of this deployment (5 bodies unless configured)."""
    return Policy(k=int(current_app.config.get("CRIEUR_BENCHMARK_THRESHOLD", 5)))


@bp.route("/")
@roles_required(*BODY_ROLES, "analyst")
def index():
    if current_user.role == "analyst":
        return redirect(url_for(".editions"))
    return body_home()


# --- the body's side ---------------------------------------------------------------------


def body_home():
    org_id = current_org_id()
    now = dt.datetime.now(dt.UTC)
    current = services.current_edition(now)
    taken = services.body_editions(org_id)
    choice = request.args.get("edition", "").strip()
    edition = None
    if choice:
        edition = services.get_edition_by_code(choice)
        if edition is None:
            abort(404)
    else:
        submitted = [e for e, r in taken if r.status == ResponseStatus.SUBMITTED]
        edition = (submitted or [None])[0] or current or service.latest_edition()
    page = service.body_benchmark(org_id, edition.id, now=now) if edition else None
    progress = service.response_progress(org_id, current.id) if current else None
    editions = _unique([e for e, _ in taken] + ([current] if current else []))
    return render_template(
        "benchmark/body.html",
        edition=edition,
        current=current,
        progress=progress,
        page=page,
        editions=editions,
        k=policy().k,
        chart_data=_body_charts(page) if page else {},
        dimensions=DIMENSIONS,
        respondent_labels=translate_labels(RESPONDENT_LABELS),
        kind_label=translate(KIND_LABELS.get(_org_kind(), _org_kind())),
        band_label=_band_label(),
    )


def _unique(editions: list[SurveyEdition]) -> list[SurveyEdition]:
    seen, out = set(), []
    for e in sorted(editions, key=lambda e: e.opens_at, reverse=True):
        if e.id not in seen:
            seen.add(e.id)
            out.append(e)
    return out


def _org_kind() -> str:
    return current_org().kind


def _band_label() -> str:
    return translate(BAND_LABELS.get(population_band(current_org().population), ""))


def _body_charts(page: dict[str, Any]) -> dict[str, Any]:
    """Chart specs for the JSON block: one grouped bar chart per theme, plus the score."""
    charts = {}
    for chart in page["charts"]:
        charts[f"theme-{chart['theme']}"] = {
            "type": "bar",
            "horizontal": True,
            "unit": "%",
            "labels": [translate(label) for label in chart["labels"]],
            "datasets": [
                {"label": translate(s["name"]), "data": s["data"]} for s in chart["series"]
            ],
        }
    charts["score"] = {
        "type": "bar",
        "unit": "/100",
        "max": 100,
        "labels": [translate(s["label"]) for s in page["score"]],
        "datasets": [{"label": _("Votre score"), "data": [s["score"] for s in page["score"]]}],
    }
    return charts


def _open_edition_or_redirect() -> SurveyEdition | None:
    current = services.current_edition()
    if current is None:
        flash(_("Aucune édition du questionnaire n'est ouverte en ce moment."), "error")
    return current


@bp.route("/questionnaire")
@roles_required(*BODY_ROLES)
def survey():
    """The body's response to the open edition: respondents, progress, submission."""
    org_id = current_org_id()
    current = _open_edition_or_redirect()
    if current is None:
        return redirect(url_for(".index"))
    progress = service.response_progress(org_id, current.id)
    return render_template(
        "benchmark/survey.html",
        edition=current,
        progress=progress,
        respondent_labels=translate_labels(RESPONDENT_LABELS),
        required_total=sum(1 for q in iter_questions(current.questions) if q.get("required")),
    )


@bp.post("/questionnaire/repondants")
@roles_required(*BODY_ROLES)
def add_respondent():
    org_id = current_org_id()
    current = _open_edition_or_redirect()
    if current is None:
        return redirect(url_for(".index"))
    try:
        person = service.add_respondent(
            org_id,
            current.id,
            request.form.get("role", ""),
            user_id=current_user.id if request.form.get("me") else None,
        )
    except DomainError as exc:
        db.session.rollback()
        flash(error_text(exc), "error")
        return redirect(url_for(".survey"), 303)
    db.session.commit()
    return redirect(url_for(".respondent", respondent_id=person.id), 303)


@bp.route("/questionnaire/repondants/<int:respondent_id>", methods=["GET", "POST"])
@roles_required(*BODY_ROLES)
def respondent(respondent_id: int):
    """One respondent's questionnaire; each save keeps a draft and shows the progress."""
    org_id = current_org_id()
    person = _respondent_or_404(org_id, respondent_id)
    edition, response = _edition_of(person)
    errors: dict[str, str] = {}
    values: dict[str, Any] = dict(person.answers or {})
    status = 200
    if request.method == "POST":
        raw = _posted_answers(edition.questions)
        try:
            done = service.save_answers(org_id, person.id, raw)
        except DomainError as exc:
            db.session.rollback()
            errors = translate_all(dict(exc.details.get("errors") or {}))
            if not errors:
                flash(error_text(exc), "error")
                return redirect(url_for(".survey"), 303)
            values = {**values, **raw}
            flash(
                _("Certaines réponses sont à corriger : rien n'a été enregistré sur cette page."),
                "error",
            )
            status = 400
        else:
            db.session.commit()
            flash(
                _(
                    "Brouillon enregistré : %(answered)s question(s) sur %(total)s répondue(s).",
                    answered=done.answered,
                    total=done.total,
                ),
                "success",
            )
            if request.form.get("then") == "back":
                return redirect(url_for(".survey"), 303)
            return redirect(url_for(".respondent", respondent_id=person.id), 303)
    number = _respondent_number(org_id, edition.id, person.id)
    locked = response.status == ResponseStatus.SUBMITTED or services.edition_state(edition) not in (
        "open",
    )
    return (
        render_template(
            "benchmark/respondent.html",
            edition=edition,
            person=person,
            number=number,
            sections=edition.questions.get("sections", []),
            values=values,
            errors=errors,
            locked=locked,
            progress=answer_progress(edition.questions, person.answers or {}),
            respondent_labels=translate_labels(RESPONDENT_LABELS),
        ),
        status,
    )


def _respondent_or_404(org_id: int, respondent_id: int) -> Respondent:
    person = get_scoped(Respondent, org_id, respondent_id)
    if person is None:
        abort(404)
    return person


def _edition_of(person: Respondent) -> tuple[SurveyEdition, SurveyResponse]:
    response = db.session.get(SurveyResponse, person.response_id)
    return db.session.get(SurveyEdition, response.edition_id), response


def _respondent_number(org_id: int, edition_id: int, person_id: int) -> int:
    ids = [p.id for p in service.list_respondents(org_id, edition_id)]
    return ids.index(person_id) + 1 if person_id in ids else 0


def _posted_answers(defn: dict[str, Any]) -> dict[str, Any]:
    """The form's answers for every question of the page (blank clears an answer)."""
    raw: dict[str, Any] = {}
    for q in iter_questions(defn):
        if q["type"] == "multiple":
            raw[q["id"]] = request.form.getlist(q["id"])
        else:
            raw[q["id"]] = request.form.get(q["id"], "")
    return raw


@bp.post("/questionnaire/repondants/<int:respondent_id>/supprimer")
@roles_required(*BODY_ROLES)
def remove_respondent(respondent_id: int):
    org_id = current_org_id()
    _respondent_or_404(org_id, respondent_id)
    try:
        service.remove_respondent(org_id, respondent_id)
    except DomainError as exc:
        db.session.rollback()
        flash(error_text(exc), "error")
    else:
        db.session.commit()
        flash(_("Répondant retiré."), "success")
    return redirect(url_for(".survey"), 303)


@bp.post("/questionnaire/envoyer")
@roles_required(*BODY_ROLES)
def submit():
    """Send the body's response: once per edition; a second attempt is refused."""
    org_id = current_org_id()
    current = _open_edition_or_redirect()
    if current is None:
        return redirect(url_for(".index"))
    try:
        service.submit_response(org_id, current.id, user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        flash(error_text(exc), "error")
        return redirect(url_for(".survey"), 303)
    db.session.commit()
    flash(
        _("Réponse envoyée : merci ! Votre page de comparaison tient compte de vos réponses."),
        "success",
    )
    return redirect(url_for(".index", edition=current.code), 303)


# --- the analyst's side ------------------------------------------------------------------


@bp.route("/editions", methods=["GET", "POST"])
@roles_required("analyst")
def editions():
    """Editions with their answers so far; open a new one with its dates."""
    form: dict[str, str] = {}
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip() for k in ("code", "title", "opens", "closes")}
        try:
            opens_at, closes_at = _period(form["opens"], form["closes"])
            edition = service.open_edition(
                form["code"], form["title"], opens_at, closes_at, user_id=current_user.id
            )
        except DomainError as exc:
            db.session.rollback()
            errors = translate_all(list(exc.details.get("errors") or [error_text(exc)]))
            status = 409 if exc.status == 409 else 400
        else:
            db.session.commit()
            flash(_("Édition « %(code)s » ouverte.", code=edition.code), "success")
            return redirect(url_for(".edition", edition_id=edition.id), 303)
    all_editions = sorted(service.list_editions(), key=lambda e: e.opens_at, reverse=True)
    today = dt.datetime.now(PARIS).date()
    return (
        render_template(
            "benchmark/editions.html",
            editions=all_editions,
            counts=services.edition_counts(),
            invited=services.bodies_count(),
            state=services.edition_state,
            state_labels=translate_labels(STATE_LABELS),
            form=form
            or {
                "opens": today.isoformat(),
                "closes": (today + dt.timedelta(days=60)).isoformat(),
            },
            errors=errors,
        ),
        status,
    )


def _period(opens: str, closes: str) -> tuple[dt.datetime, dt.datetime]:
    """Opening at the start of the first day and closing at the end of the last, in Paris."""
    try:
        first = dt.date.fromisoformat(opens)
        last = dt.date.fromisoformat(closes)
    except ValueError as exc:
        raise DomainError(
            "edition_dates", "Indiquez les dates d'ouverture et de clôture (jj/mm/aaaa)."
        ) from exc
    start = dt.datetime.combine(first, dt.time(), PARIS).astimezone(dt.UTC)
    end = dt.datetime.combine(last, dt.time(23, 59, 59), PARIS).astimezone(dt.UTC)
    return start, end


def _edition_or_404(edition_id: int) -> SurveyEdition:
    edition = service.get_edition(edition_id)
    if edition is None:
        abort(404)
    return edition


@bp.post("/editions/<int:edition_id>/cloturer")
@roles_required("analyst")
def close(edition_id: int):
    edition = _edition_or_404(edition_id)
    service.close_edition(edition.id)
    db.session.commit()
    flash(
        _("Édition « %(code)s » close : les réponses ne sont plus modifiables.", code=edition.code),
        "success",
    )
    return redirect(url_for(".edition", edition_id=edition.id), 303)


@bp.route("/editions/<int:edition_id>")
@roles_required("analyst")
def edition(edition_id: int):
    """Response rates, aggregates by one breakdown and one theme, trends, exports."""
    edition = _edition_or_404(edition_id)
    view = request.args.get("vue", "kind")
    if view not in VIEWS:
        view = "kind"
    data = services.analyst_overview(edition.id, policy())
    themes = _themes(data["indicators"])
    theme = request.args.get("theme", "")
    if theme not in themes:
        theme = next(iter(themes))
    in_theme = set(themes[theme]["indicators"])
    breakdown = _ordered(data["breakdowns"].get(view) or {"categories": [], "rows": []})
    rows = [r for r in breakdown["rows"] if r["indicator"] in in_theme]
    trend = _trend_table(data["trends"], [i for i in themes[theme]["indicators"]], data)
    return render_template(
        "benchmark/edition.html",
        edition=edition,
        state=services.edition_state(edition),
        state_labels=translate_labels(STATE_LABELS),
        data=data,
        view=view,
        views=translate_labels(VIEWS),
        theme=theme,
        themes=themes,
        categories=breakdown["categories"],
        rows=rows,
        trend=trend,
        rates={
            **data["response_rates"],
            "band": sorted(
                data["response_rates"].get("band", []), key=lambda r: BAND_ORDER.get(r["band"], 99)
            ),
        },
        formats=FORMATS,
        chart_data=_analyst_charts(data, breakdown["categories"], rows, trend),
        kind_labels=translate_labels(KIND_LABELS),
        band_labels=translate_labels(BAND_LABELS),
        role_labels=translate_labels(ROLE_LABELS),
    )


def _ordered(breakdown: dict[str, Any]) -> dict[str, Any]:
    """Population bands from the smallest to the largest rather than alphabetically."""
    if breakdown.get("by") != "band":
        return breakdown
    order = sorted(
        range(len(breakdown["categories"])),
        key=lambda i: BAND_ORDER.get(breakdown["categories"][i]["code"], 99),
    )
    rows = [
        {**r, "values": [r["values"][i] for i in order], "n": [r["n"][i] for i in order]}
        for r in breakdown["rows"]
    ]
    return {**breakdown, "categories": [breakdown["categories"][i] for i in order], "rows": rows}


def _themes(indicators: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for ind, meta in indicators.items():
        theme = OBSERVED_THEME if ind.startswith("obs_") else meta.get("theme", "")
        label = (
            _("Indicateurs observés")
            if theme == OBSERVED_THEME
            else translate(THEME_LABELS.get(theme, theme))
        )
        out.setdefault(theme, {"label": label, "indicators": []})["indicators"].append(ind)
    if not out:
        out[""] = {"label": _("Aucun indicateur"), "indicators": []}
    return out


def _trend_table(
    trends: list[dict[str, Any]], indicators: list[str], data: dict[str, Any]
) -> dict[str, Any]:
    """Editions (baselines and surveys, by year) as columns, indicators as rows."""
    wanted = set(indicators)
    columns: dict[str, dict[str, Any]] = {}
    values: dict[tuple[str, str], Any] = {}
    for t in trends:
        if t["indicator"] not in wanted:
            continue
        columns.setdefault(
            t["edition"],
            {"code": t["edition"], "year": t.get("year"), "source": t["kind_of_source"]},
        )
        values[(t["indicator"], t["edition"])] = t["mean"]
    ordered = sorted(columns.values(), key=lambda c: (c["year"] or 0, c["code"]))
    rows = [
        {
            "indicator": ind,
            "label": data["indicators"].get(ind, {}).get("label_fr", ind),
            "values": [values.get((ind, c["code"])) for c in ordered],
        }
        for ind in indicators
        if any((ind, c["code"]) in values for c in ordered)
    ]
    return {"columns": ordered, "rows": rows}


def _analyst_charts(
    data: dict[str, Any],
    categories: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    trend: dict[str, Any],
) -> dict[str, Any]:
    rates = [r for r in data["response_rates"].get("kind", [])]
    charts: dict[str, Any] = {
        "rates": {
            "type": "bar",
            "unit": "%",
            "max": 100,
            "labels": [translate(r.get("label") or r.get("kind")) for r in rates],
            "datasets": [
                {"label": _("Taux de réponse"), "data": [r.get("rate_pct") for r in rates]}
            ],
        },
        "breakdown": {
            "type": "bar",
            "horizontal": True,
            "unit": "%",
            "labels": [translate(r["label"]) for r in rows],
            "datasets": [
                {"label": translate(c["label"]), "data": [r["values"][i] for r in rows]}
                for i, c in enumerate(categories)
            ],
        },
        "trend": {
            "type": "line",
            "unit": "%",
            "labels": [
                c["code"] if str(c["year"]) == c["code"] else f"{c['code']} ({c['year']})"
                for c in trend["columns"]
            ],
            "datasets": [
                {"label": translate(r["label"]), "data": r["values"]} for r in trend["rows"]
            ],
        },
    }
    return charts


@bp.post("/editions/<int:edition_id>/export")
@roles_required("analyst")
def export(edition_id: int):
    """The anonymised export as a download (a POST: each export is recorded as a release)."""
    edition = _edition_or_404(edition_id)
    fmt = request.form.get("format", "")
    result = service.export_edition(edition.id, fmt, policy=policy(), user_id=current_user.id)
    db.session.commit()  # the release is stored before the bytes leave
    return Response(
        result.data,
        mimetype=result.content_type.split(";")[0],
        content_type=result.content_type,
        headers={"Content-Disposition": f'attachment; filename="{result.filename}"'},
    )


@bp.route("/references", methods=["GET", "POST"])
@roles_required("analyst")
def baselines():
    """Reference tables: the shipped 2010 study, and later ones loaded from CSV."""
    errors: list[str] = []
    form: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip() for k in ("code", "title", "year", "source")}
        upload = request.files.get("file")
        try:
            if upload is None or not upload.filename:
                raise DomainError("baseline_invalid", "Choisissez un fichier CSV.")
            data = upload.read(MAX_BASELINE_BYTES + 1)
            try:
                year = int(form["year"])
            except ValueError:
                year = 0
            edition, warnings = import_baseline_edition(
                data,
                code=form["code"],
                title=form["title"],
                year=year,
                source=form["source"],
                user_id=current_user.id,
                known_indicators=indicator_catalogue(_survey_definition()),
            )
        except DomainError as exc:
            db.session.rollback()
            errors = translate_all(list(exc.details.get("errors") or [error_text(exc)]))
            status = 409 if exc.status == 409 else 400
        else:
            db.session.commit()
            flash(_("Référence « %(code)s » chargée à côté de 2010.", code=edition.code), "success")
            for warning in warnings:
                flash(translate(warning), "error")
            return redirect(url_for(".baselines"), 303)
    return (
        render_template(
            "benchmark/baselines.html",
            tables=list_baseline_tables(),
            errors=errors,
            form=form,
        ),
        status,
    )


def _survey_definition() -> dict[str, Any]:
    latest = service.latest_edition()
    if latest is not None:
        return latest.questions
    from analytics.benchmark.survey import load_survey_definition

    return load_survey_definition()
