"""The practice survey as data: load and check a survey definition, clean answers, progress.

A survey edition is a JSON document (``data/survey-2026.json`` is the first): sections of
questions, each with an answer type (``single``, ``multiple``, ``percentage``, ``scale``,
``text``), French text, and the indicator ids it feeds (an option's ``indicators`` for
choice questions, the question's ``indicator`` for percentages and scales). Keeping the
survey as data lets the association publish a new edition without a code change, and lets
an opened edition keep a frozen snapshot of the questions its answers refer to.

Everything here is pure: no database, no Flask. Refusals are :class:`DomainError` with
plain French messages, since they are shown to analysts and respondents as they are.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contacts.db import DomainError
from contacts.i18n import N_, Message, join_messages

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_SURVEY = "survey-2026.json"

QUESTION_TYPES = ("single", "multiple", "percentage", "scale", "text")
CHOICE_TYPES = ("single", "multiple")
ROLES = ("agent", "elected")
ROLE_LABELS = {"agent": N_("Agent"), "elected": N_("Élu·e")}
RESPONDENT_SCOPES = ("agents_first", "all")
UNITS = ("share", "pct")
TEXT_MAX_DEFAULT = 2000

_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def load_survey_definition(source: str | Path | Mapping[str, Any] = DEFAULT_SURVEY) -> dict:
    """Load a survey definition (a file name in ``data/``, a path, or a mapping) and check it."""
    if isinstance(source, Mapping):
        raw: Any = copy.deepcopy(dict(source))
    else:
        path = Path(source)
        if not path.is_absolute() and not path.exists():
            path = DATA_DIR / path
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DomainError(
                "survey_not_found",
                "Questionnaire introuvable : %(name)s.",
                params={"name": path.name},
            ) from exc
        except json.JSONDecodeError as exc:
            raise DomainError(
                "survey_invalid",
                "Le questionnaire %(name)s n'est pas un JSON valide (ligne %(line)s).",
                params={"name": path.name, "line": exc.lineno},
            ) from exc
    return validate_definition(raw)


def validate_definition(defn: Any) -> dict:
    """Check a definition's structure; return it unchanged or raise with every problem found.

    Rules: unique question and option ids; known types; choice questions have options;
    every indicator referred to is declared in ``indicators``; one indicator is fed by
    exactly one question (so a body's value for it has one meaning); text questions
    feed no indicator.
    """
    errors: list[str] = []
    if not isinstance(defn, Mapping):
        raise DomainError("survey_invalid", "Le questionnaire doit être un objet JSON.")
    for key in ("code", "title"):
        if not isinstance(defn.get(key), str) or not defn.get(key, "").strip():
            errors.append(N_("Le champ « %(key)s » est obligatoire.", key=key))
    catalogue = defn.get("indicators")
    if not isinstance(catalogue, Mapping) or not catalogue:
        errors.append(N_("La liste des indicateurs (« indicators ») est obligatoire."))
        catalogue = {}
    for ind, meta in catalogue.items():
        if not _ID.match(str(ind)):
            errors.append(N_("Identifiant d'indicateur invalide : « %(id)s ».", id=ind))
        if not isinstance(meta, Mapping) or not str(meta.get("label_fr", "")).strip():
            errors.append(N_("L'indicateur « %(id)s » n'a pas de libellé français.", id=ind))
        elif meta.get("unit", "share") not in UNITS:
            errors.append(
                N_(
                    "L'indicateur « %(id)s » a une unité inconnue : « %(unit)s ».",
                    id=ind,
                    unit=meta.get("unit"),
                )
            )
    sections = defn.get("sections")
    if not isinstance(sections, list) or not sections:
        errors.append(N_("Le questionnaire doit contenir au moins une section."))
        sections = []
    seen_questions: set[str] = set()
    fed_by: dict[str, str] = {}
    for s_index, section in enumerate(sections, start=1):
        if not isinstance(section, Mapping) or not isinstance(section.get("questions"), list):
            errors.append(
                N_("La section n° %(n)s doit contenir une liste de questions.", n=s_index)
            )
            continue
        for question in section["questions"]:
            errors.extend(_question_errors(question, seen_questions, fed_by, catalogue))
    if errors:
        raise DomainError(
            "survey_invalid",
            "Questionnaire invalide : %(problems)s",
            params={"problems": join_messages(errors)},
            errors=errors,
        )
    return dict(defn)


def _question_errors(
    q: Any, seen: set[str], fed_by: dict[str, str], catalogue: Mapping[str, Any]
) -> list[str]:
    if not isinstance(q, Mapping):
        return [N_("Chaque question doit être un objet.")]
    qid = str(q.get("id", ""))
    where = N_("Question « %(id)s » :", id=qid or "?")
    errors: list[str] = []
    if not _ID.match(qid):
        errors.append(N_("%(where)s identifiant invalide.", where=where))
    elif qid in seen:
        errors.append(N_("%(where)s identifiant en double.", where=where))
    seen.add(qid)
    qtype = q.get("type")
    if qtype not in QUESTION_TYPES:
        return [*errors, N_("%(where)s type inconnu « %(type)s ».", where=where, type=qtype)]
    if not str(q.get("text", "")).strip():
        errors.append(N_("%(where)s texte manquant.", where=where))
    if q.get("respondents", "agents_first") not in RESPONDENT_SCOPES:
        errors.append(N_("%(where)s « respondents » doit valoir agents_first ou all.", where=where))
    fed: list[str] = []
    if qtype in CHOICE_TYPES:
        options = q.get("options")
        if not isinstance(options, list) or len(options) < 2:
            return [*errors, N_("%(where)s au moins deux options sont nécessaires.", where=where)]
        values = [o.get("value") for o in options if isinstance(o, Mapping)]
        if len(values) != len(options) or len(set(values)) != len(values):
            errors.append(N_("%(where)s options invalides ou en double.", where=where))
        for option in options:
            if isinstance(option, Mapping):
                if not str(option.get("label", "")).strip():
                    errors.append(
                        N_(
                            "%(where)s l'option « %(value)s » n'a pas de libellé.",
                            where=where,
                            value=option.get("value"),
                        )
                    )
                fed.extend(option.get("indicators", []))
        if q.get("indicator"):
            errors.append(
                N_("%(where)s une question à choix relie ses indicateurs par option.", where=where)
            )
    elif qtype == "scale":
        lo, hi, threshold = q.get("min"), q.get("max"), q.get("threshold")
        if not (isinstance(lo, int) and isinstance(hi, int) and lo < hi):
            errors.append(
                N_("%(where)s une échelle demande des bornes entières min < max.", where=where)
            )
        elif q.get("indicator") and not (isinstance(threshold, int) and lo <= threshold <= hi):
            errors.append(
                N_("%(where)s le seuil doit être un entier entre min et max.", where=where)
            )
        if q.get("indicator"):
            fed.append(q["indicator"])
    elif qtype == "percentage":
        if q.get("indicator"):
            fed.append(q["indicator"])
    elif qtype == "text" and q.get("indicator"):
        errors.append(N_("%(where)s une réponse libre n'alimente aucun indicateur.", where=where))
    for ind in dict.fromkeys(fed):
        if ind not in catalogue:
            errors.append(N_("%(where)s indicateur « %(id)s » non déclaré.", where=where, id=ind))
        elif fed_by.setdefault(ind, qid) != qid:
            errors.append(
                N_(
                    "%(where)s l'indicateur « %(id)s » est déjà alimenté par « %(other)s ».",
                    where=where,
                    id=ind,
                    other=fed_by[ind],
                )
            )
    return errors


def iter_questions(defn: Mapping[str, Any]) -> Iterator[dict]:
    """Every question of the definition, in order."""
    for section in defn.get("sections", []):
        yield from section.get("questions", [])


def questions_by_id(defn: Mapping[str, Any]) -> dict[str, dict]:
    return {q["id"]: q for q in iter_questions(defn)}


def indicator_catalogue(defn: Mapping[str, Any]) -> dict[str, dict]:
    """Indicator id → {theme, label_fr, unit}: the vocabulary shared with the baselines."""
    return {k: {"unit": "share", **v} for k, v in defn.get("indicators", {}).items()}


def indicator_sources(defn: Mapping[str, Any]) -> dict[str, str]:
    """Indicator id → the id of the one question that feeds it."""
    out: dict[str, str] = {}
    for q in iter_questions(defn):
        for ind in question_indicators(q):
            out[ind] = q["id"]
    return out


def question_indicators(question: Mapping[str, Any]) -> list[str]:
    """The indicator ids a question feeds, in option order, without repeats."""
    if question["type"] in CHOICE_TYPES:
        ids = [i for o in question["options"] for i in o.get("indicators", [])]
    else:
        ids = [question["indicator"]] if question.get("indicator") else []
    return list(dict.fromkeys(ids))


def free_text_question_ids(defn: Mapping[str, Any]) -> set[str]:
    """Questions whose answers are free text: never aggregated, never exported."""
    return {q["id"] for q in iter_questions(defn) if q["type"] == "text"}


def clean_answer(question: Mapping[str, Any], value: Any) -> Any:
    """Normalise one answer for its question's type; None means "not answered".

    Accepts what a form posts (strings, "12,5 %", a lone string for a multiple choice)
    and raises :class:`DomainError` ``answer_invalid`` with a French message otherwise.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    qtype = question["type"]
    label = question.get("text", question["id"])
    if qtype in CHOICE_TYPES:
        allowed = {o["value"]: o for o in question["options"]}
        if qtype == "single":
            if not isinstance(value, str) or value not in allowed:
                raise _invalid(
                    question,
                    N_(
                        "Réponse inconnue « %(value)s » pour « %(label)s ».",
                        value=_short(value),
                        label=label,
                    ),
                )
            return value
        chosen = [value] if isinstance(value, str) else value
        if not isinstance(chosen, list | tuple) or not all(isinstance(v, str) for v in chosen):
            raise _invalid(
                question, N_("Une liste de choix est attendue pour « %(label)s ».", label=label)
            )
        unknown = [v for v in chosen if v not in allowed]
        if unknown:
            raise _invalid(
                question,
                N_(
                    "Réponse inconnue « %(value)s » pour « %(label)s ».",
                    value=_short(unknown[0]),
                    label=label,
                ),
            )
        chosen = list(dict.fromkeys(chosen))
        if not chosen:
            return None
        exclusive = [v for v in chosen if allowed[v].get("exclusive")]
        if exclusive and len(chosen) > 1:
            excl = allowed[exclusive[0]]["label"]
            raise _invalid(
                question,
                N_("« %(choice)s » ne peut pas être combiné avec un autre choix.", choice=excl),
            )
        limit = question.get("max_choices")
        if limit and len(chosen) > limit:
            raise _invalid(
                question, N_("%(max)s choix au plus pour « %(label)s ».", max=limit, label=label)
            )
        return chosen
    if qtype == "percentage":
        number = _number(value)
        if number is None or not 0 <= number <= 100:
            raise _invalid(
                question,
                N_("Un pourcentage entre 0 et 100 est attendu pour « %(label)s ».", label=label),
            )
        return number
    if qtype == "scale":
        number = _number(value)
        lo, hi = question["min"], question["max"]
        if number is None or number != int(number) or not lo <= number <= hi:
            raise _invalid(
                question,
                N_(
                    "Un nombre entier de %(min)s à %(max)s est attendu pour « %(label)s ».",
                    min=lo,
                    max=hi,
                    label=label,
                ),
            )
        return int(number)
    if not isinstance(value, str):
        raise _invalid(question, N_("Un texte est attendu pour « %(label)s ».", label=label))
    text = _CONTROL.sub("", value).strip()
    limit = question.get("max_length", TEXT_MAX_DEFAULT)
    if len(text) > limit:
        raise _invalid(
            question, N_("%(max)s caractères au plus pour « %(label)s ».", max=limit, label=label)
        )
    return text or None


def clean_answers(
    defn: Mapping[str, Any], answers: Mapping[str, Any], *, require_complete: bool = False
) -> dict[str, Any]:
    """Clean a respondent's answers; unknown questions are refused, blanks dropped.

    With ``require_complete`` (at submission) every required question must be answered.
    All problems are reported at once, in ``DomainError.details["errors"]`` by question id.
    """
    questions = questions_by_id(defn)
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for qid, value in answers.items():
        if qid not in questions:
            errors[str(qid)] = N_("Question inconnue : « %(id)s ».", id=_short(qid))
            continue
        try:
            result = clean_answer(questions[qid], value)
        except DomainError as exc:
            errors[qid] = Message(exc.msgid, exc.params)
            continue
        if result is not None:
            cleaned[qid] = result
    if require_complete:
        for qid, q in questions.items():
            if q.get("required") and qid not in cleaned and qid not in errors:
                errors[qid] = N_("Réponse obligatoire : « %(label)s ».", label=q["text"])
    if errors:
        raise DomainError(
            "answer_invalid",
            "Réponses à corriger : %(problems)s",
            params={"problems": join_messages(errors.values())},
            errors=errors,
        )
    return cleaned


@dataclass(frozen=True)
class Progress:
    """How far a set of answers has got: shown as a progress bar while saving drafts."""

    answered: int
    total: int
    required_answered: int
    required_total: int
    missing_required: list[str] = field(default_factory=list)

    @property
    def percent(self) -> int:
        return round(100 * self.answered / self.total) if self.total else 100

    @property
    def is_complete(self) -> bool:
        return not self.missing_required


def answer_progress(defn: Mapping[str, Any], answers: Mapping[str, Any]) -> Progress:
    """Count answered questions (blank answers do not count)."""
    questions = list(iter_questions(defn))
    given = {qid for qid, v in answers.items() if v not in (None, "", [], ())}
    required = [q["id"] for q in questions if q.get("required")]
    return Progress(
        answered=sum(1 for q in questions if q["id"] in given),
        total=len(questions),
        required_answered=sum(1 for qid in required if qid in given),
        required_total=len(required),
        missing_required=[qid for qid in required if qid not in given],
    )


def _invalid(question: Mapping[str, Any], message: str) -> DomainError:
    """``message``: a ``Message`` from ``N_`` (a capitalised French sentence)."""
    return DomainError("answer_invalid", message, question=question["id"])


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
        text = text.removesuffix("%").replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"
