"""Page data: the body's benchmark page and the analyst's aggregates."""

from __future__ import annotations

import pandas as pd

from analytics.benchmark.aggregate import build_frames
from analytics.benchmark.anonymise import Policy, cell_key
from analytics.benchmark.baselines import shipped_baseline
from analytics.benchmark.pages import analyst_page, body_page
from analytics.benchmark.survey import load_survey_definition
from analytics.benchmark.synthetic import synthetic_records

DEFN = load_survey_definition()
ALL = "*"


def figures(value):
    return {"n": 12.0, "value": value, "q1": None, "median": None, "q3": None}


def page(cells):
    return body_page(
        DEFN,
        declared={"use_newsletters": 100.0},
        observed={"use_newsletters": 0.0},
        baseline=shipped_baseline(),
        cells=cells,
        kind="commune",
        band="lt2k",
    )


def row(result, indicator):
    return next(r for r in result["rows"] if r["indicator"] == indicator)


def test_before_any_release_peers_are_announced_not_shown():
    result = page(None)
    assert result["peers_available"] is False
    assert "publication des résultats" in result["peers_note"]
    assert row(result, "use_newsletters")["peer_value"] is None


def test_peers_come_from_the_same_kind_and_size_when_published():
    cells = {
        cell_key("use_newsletters", "commune", "lt2k", ALL, ALL): figures(40.0),
        cell_key("use_newsletters", ALL, ALL, ALL, ALL): figures(60.0),
    }
    r = row(page(cells), "use_newsletters")
    assert r["peer_value"] == 40 and r["peer_group"].startswith("organismes du même type et")


def test_peers_fall_back_to_all_bodies_when_the_group_is_secret():
    cells = {cell_key("use_newsletters", ALL, ALL, ALL, ALL): figures(60.0)}
    assert row(page(cells), "use_newsletters")["peer_group"].startswith("ensemble")


def test_each_indicator_shows_its_value_the_2010_baseline_and_the_observation():
    r = row(page(None), "use_newsletters")
    assert (r["declared"], r["observed"], r["baseline"]) == (100, 0, 67)


def test_charts_have_one_series_each_for_the_body_2010_and_peers():
    chart = next(c for c in page(None)["charts"] if c["theme"] == "usage")
    assert [s["name"] for s in chart["series"]] == [
        "Votre organisme",
        "2010",
        "Vos pairs aujourd'hui",
    ]
    assert chart["series"][0]["data"][1] == 0  # observed beats declared


def analyst(count):
    bodies, roles = build_frames(synthetic_records(DEFN, count, seed=5), DEFN)
    part = bodies[["kind", "region", "band"]].assign(status="submitted", agents=1, elected=0)
    return analyst_page(bodies, roles, part, DEFN, policy=Policy(k=5), edition_code="e")


def test_the_analyst_never_sees_counts_of_groups_under_the_threshold():
    result = analyst(40)
    small = [r for r in result["response_rates"]["region"] if r["invited"] < 5]
    assert small and all(r["submitted"] is None for r in small)


def test_the_analyst_breakdowns_hide_secret_cells():
    result = analyst(40)
    kinds = result["breakdowns"]["kind"]
    assert any(v is None for r in kinds["rows"] for v in r["values"])
    for r in kinds["rows"]:
        for n in r["n"]:
            assert n is None or n >= 5


def test_trends_hide_editions_with_too_few_bodies():
    result = analyst(3)
    survey = [t for t in result["trends"] if t["kind_of_source"] == "survey"]
    assert survey and all(t["mean"] is None for t in survey)
    assert isinstance(pd.DataFrame(result["trends"]), pd.DataFrame)


def test_an_edition_without_answers_gives_an_empty_analyst_page():
    bodies, roles = build_frames([], DEFN)
    part = pd.DataFrame(
        [
            {
                "kind": "commune",
                "region": "R",
                "band": "lt2k",
                "status": "none",
                "agents": 0,
                "elected": 0,
            }
        ]
    )
    result = analyst_page(bodies, roles, part, DEFN, policy=Policy(k=5), edition_code="e")
    assert result["breakdowns"]["kind"]["rows"] == []
    assert result["response_rates"]["total"][0]["submitted"] == 0
