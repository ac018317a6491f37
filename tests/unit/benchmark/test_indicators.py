"""Indicators: declared values from answers, observed values from usage counts."""

from __future__ import annotations

from analytics.benchmark.indicators import (
    UsageCounts,
    body_indicators,
    declared_vs_observed,
    observed_from_counts,
    respondent_indicators,
    role_indicators,
)
from analytics.benchmark.survey import load_survey_definition

DEFN = load_survey_definition()


def test_ticked_options_give_one_hundred_and_the_others_zero():
    values = respondent_indicators(DEFN, {"usages": ["lettres", "presse"]})
    assert values["use_newsletters"] == 100
    assert values["use_press_relations"] == 100
    assert values["use_surveys"] == 0


def test_a_scale_counts_as_yes_from_its_threshold():
    assert respondent_indicators(DEFN, {"efficacite": 4})["perceived_effective"] == 100
    assert respondent_indicators(DEFN, {"efficacite": 3})["perceived_effective"] == 0


def test_a_percentage_answer_is_the_indicator_value():
    assert respondent_indicators(DEFN, {"collecte_part_site": 35.0})["collect_website_signup"] == 35


def test_an_option_can_feed_two_indicators():
    values = respondent_indicators(DEFN, {"mobile": "oui"})
    assert values["practice_mobile_done"] == values["practice_mobile_optimisation"] == 100
    planned = respondent_indicators(DEFN, {"mobile": "en_projet"})
    assert planned["practice_mobile_done"] == 0 and planned["practice_mobile_optimisation"] == 100


def test_an_unanswered_question_gives_no_value():
    assert "budget_stable" not in respondent_indicators(DEFN, {"usages": ["lettres"]})


def test_free_text_feeds_no_indicator():
    assert respondent_indicators(DEFN, {"commentaire": "nous achetons des fichiers"}) == {}


def test_agents_answers_win_for_factual_questions():
    people = [
        {"role": "agent", "answers": {"mobile": "non"}},
        {"role": "elected", "answers": {"mobile": "oui"}},
    ]
    assert body_indicators(DEFN, people)["practice_mobile_done"] == 0


def test_everyones_answers_count_for_opinions():
    people = [
        {"role": "agent", "answers": {"efficacite": 5}},
        {"role": "elected", "answers": {"efficacite": 2}},
    ]
    assert body_indicators(DEFN, people)["perceived_effective"] == 50


def test_elected_answers_stand_when_no_agent_answered_a_question():
    people = [
        {"role": "agent", "answers": {"usages": ["lettres"]}},
        {"role": "elected", "answers": {"mobile": "oui"}},
    ]
    assert body_indicators(DEFN, people)["practice_mobile_done"] == 100


def test_role_values_average_each_role_separately():
    people = [
        {"role": "agent", "answers": {"efficacite": 5}},
        {"role": "agent", "answers": {"efficacite": 1}},
        {"role": "elected", "answers": {"efficacite": 4}},
    ]
    roles = role_indicators(DEFN, people)
    assert roles["agent"]["perceived_effective"] == 50
    assert roles["elected"]["perceived_effective"] == 100


def test_risky_sources_in_use_are_observed_with_their_share():
    counts = UsageCounts(subscriptions_by_source={"web_form": 6, "exchanged": 3, "purchased": 1})
    observed = observed_from_counts(counts)
    assert observed["risk_exchange_contacts"] == 100
    assert observed["risk_unknown_source"] == 0
    assert observed["contacts_risky_pct"] == 40
    assert observed["collect_website_signup"] == 60


def test_a_body_that_sent_nothing_has_no_observed_practice():
    observed = observed_from_counts(UsageCounts(subscriptions_by_source={"web_form": 1}))
    assert "measure_none" not in observed and "practice_video" not in observed


def test_campaigns_sent_without_reading_statistics_mean_no_measurement():
    observed = observed_from_counts(UsageCounts(campaigns_sent=3, newsletters_sent=3))
    assert observed["measure_none"] == 100
    assert observed["measure_standard_kpis"] == 0
    assert observed["use_newsletters"] == 100


def test_mobile_friendliness_is_the_share_of_campaigns_compiled_responsive():
    observed = observed_from_counts(UsageCounts(campaigns_sent=4, mobile_friendly_campaigns=1))
    assert observed["mobile_friendly_campaigns_pct"] == 25
    assert observed["practice_mobile_done"] == 0


def test_declared_and_observed_disagreements_are_flagged():
    rows = declared_vs_observed(
        DEFN,
        {"risk_exchange_contacts": 0.0, "collect_website_signup": 50.0},
        {"risk_exchange_contacts": 100.0, "collect_website_signup": 60.0},
    )
    by_id = {r["indicator"]: r for r in rows}
    assert by_id["risk_exchange_contacts"]["agrees"] is False
    assert by_id["collect_website_signup"]["agrees"] is True
