"""Practice score and recommendations."""

from __future__ import annotations

from analytics.benchmark.score import practice_score, recommendations


def test_observed_values_win_over_declared_ones():
    scores = practice_score({"practice_segmentation": 100.0}, {"practice_segmentation": 0.0})
    segmentation = next(c for c in scores["content"].components if c.id == "segmentation")
    assert segmentation.value == 0 and segmentation.source == "observé"


def test_risky_sources_lower_the_collection_score():
    clean = practice_score({}, {"contacts_risky_pct": 0.0})["collection"].score
    risky = practice_score({}, {"contacts_risky_pct": 12.0})["collection"].score
    assert clean == 100 and risky == 40


def test_a_dimension_without_data_is_not_assessed():
    score = practice_score({}, {})["reach"]
    assert score.score is None
    assert "non évalué" in score.summary


def test_each_dimension_is_explained_in_french():
    scores = practice_score({"measure_standard_kpis": 100.0, "measure_click_rate": 0.0}, {})
    assert scores["measurement"].score == 60
    assert "Mesure : 60/100" in scores["measurement"].summary
    assert all(c.explanation for c in scores["measurement"].components)


def test_exchanged_contacts_call_for_a_reconsent_campaign():
    advice = recommendations(
        {}, {"risk_exchange_contacts": 100.0, "contacts_source_exchanged_pct": 12.0}
    )
    first = advice[0]
    assert first.id == "reconsent_exchanged" and first.priority == 1
    assert "échanges de fichiers (12 % de vos inscriptions)" in first.text
    assert "campagne de reconsentement" in first.text


def test_statistics_never_read_call_for_reading_them():
    advice = recommendations({}, {"measure_none": 100.0, "measure_standard_kpis": 0.0})
    assert "read_stats" in {a.id for a in advice}


def test_a_practice_most_peers_have_moves_up_in_priority():
    alone = recommendations({"practice_segmentation": 0.0}, {})
    behind = recommendations({"practice_segmentation": 0.0}, {}, {"practice_segmentation": 70.0})
    assert alone[0].priority == 2 and behind[0].priority == 1


def test_good_practice_gets_no_recommendation():
    declared = {
        "risk_exchange_contacts": 0.0,
        "risk_buy_files": 0.0,
        "risk_unknown_source": 0.0,
        "collect_website_any": 100.0,
        "measure_standard_kpis": 100.0,
        "measure_click_rate": 100.0,
        "practice_mobile_done": 100.0,
        "practice_segmentation": 100.0,
    }
    assert recommendations(declared, {}) == []
