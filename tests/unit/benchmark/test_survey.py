"""The survey as data: the shipped edition, definition checks, answer cleaning, progress."""

from __future__ import annotations

import copy

import pytest

from analytics.benchmark.baselines import shipped_baseline
from analytics.benchmark.survey import (
    answer_progress,
    clean_answer,
    clean_answers,
    indicator_sources,
    load_survey_definition,
    questions_by_id,
    validate_definition,
)
from contacts.db import DomainError

DEFN = load_survey_definition()
Q = questions_by_id(DEFN)


def refused(defn) -> DomainError:
    with pytest.raises(DomainError) as caught:
        validate_definition(defn)
    assert caught.value.code == "survey_invalid"
    return caught.value


def test_the_shipped_survey_is_a_valid_definition():
    assert validate_definition(DEFN)["code"] == "pratiques-email-2026"


def test_every_2010_indicator_is_fed_by_a_question_of_the_first_edition():
    fed = indicator_sources(DEFN)
    missing = [r.indicator for r in shipped_baseline().rows if r.indicator not in fed]
    assert missing == []


def test_the_first_edition_uses_every_answer_type():
    assert {q["type"] for q in Q.values()} == {"single", "multiple", "percentage", "scale", "text"}


def test_the_survey_text_is_french():
    assert "Pour quels usages" in Q["usages"]["text"]
    assert all(q["text"].strip() for q in Q.values())


def test_a_duplicate_question_id_is_refused():
    defn = copy.deepcopy(DEFN)
    defn["sections"][0]["questions"].append(copy.deepcopy(defn["sections"][0]["questions"][0]))
    assert "en double" in refused(defn).message


def test_an_indicator_fed_by_two_questions_is_refused():
    defn = copy.deepcopy(DEFN)
    first = defn["sections"][0]["questions"][1]["options"][0]
    first["indicators"] = ["use_newsletters"]
    assert "déjà alimenté" in refused(defn).message


def test_an_undeclared_indicator_is_refused():
    defn = copy.deepcopy(DEFN)
    defn["sections"][0]["questions"][0]["options"][0]["indicators"] = ["nowhere"]
    assert "non déclaré" in refused(defn).message


def test_a_free_text_question_cannot_feed_an_indicator():
    defn = copy.deepcopy(DEFN)
    text_q = next(q for s in defn["sections"] for q in s["questions"] if q["type"] == "text")
    text_q["indicator"] = "use_newsletters"
    assert "réponse libre" in refused(defn).message


def test_an_unknown_single_choice_is_refused_in_french():
    with pytest.raises(DomainError) as caught:
        clean_answer(Q["budget"], "triple")
    assert caught.value.message.startswith("Réponse inconnue « triple »")


def test_a_multiple_choice_accepts_a_lone_string():
    assert clean_answer(Q["usages"], "lettres") == ["lettres"]


def test_an_exclusive_option_cannot_be_combined():
    with pytest.raises(DomainError) as caught:
        clean_answer(Q["pratiques_risque"], ["aucune", "achat"])
    assert "ne peut pas être combiné" in caught.value.message


def test_a_percentage_accepts_a_french_decimal_comma_and_a_percent_sign():
    assert clean_answer(Q["collecte_part_site"], "12,5 %") == 12.5


def test_a_percentage_above_one_hundred_is_refused():
    with pytest.raises(DomainError):
        clean_answer(Q["collecte_part_site"], 120)


def test_a_scale_answer_outside_its_bounds_is_refused():
    with pytest.raises(DomainError) as caught:
        clean_answer(Q["efficacite"], "6")
    assert "de 1 à 5" in caught.value.message


def test_free_text_loses_control_characters_and_has_a_length_limit():
    assert clean_answer(Q["commentaire"], " bonjour\x00\x07 ") == "bonjour"
    with pytest.raises(DomainError):
        clean_answer(Q["commentaire"], "x" * 2001)


def test_every_invalid_answer_is_reported_at_once():
    with pytest.raises(DomainError) as caught:
        clean_answers(DEFN, {"budget": "x", "efficacite": 9, "inconnue": 1})
    assert set(caught.value.details["errors"]) == {"budget", "efficacite", "inconnue"}


def test_submitting_requires_every_required_question():
    with pytest.raises(DomainError) as caught:
        clean_answers(DEFN, {"usages": ["lettres"]}, require_complete=True)
    errors = caught.value.details["errors"]
    assert "objectifs" in errors and "commentaire" not in errors


def test_blank_answers_do_not_count_as_progress():
    progress = answer_progress(DEFN, {"usages": ["lettres"], "objectifs": [], "budget": ""})
    assert progress.answered == 1
    assert "objectifs" in progress.missing_required
    assert progress.percent == round(100 / len(Q))
