"""Aggregates: frames, cells with margins, peers, response rates, trends."""

from __future__ import annotations

import pandas as pd

from analytics.benchmark.aggregate import (
    ALL,
    build_frames,
    cell_stats,
    peer_stats,
    population_band,
    response_rates,
    trends,
)
from analytics.benchmark.survey import load_survey_definition
from analytics.benchmark.synthetic import FREE_TEXT_MARKER, synthetic_records

DEFN = load_survey_definition()


def frame(rows):
    return pd.DataFrame(rows).astype({"x": float})


def test_population_bands_have_inclusive_lower_bounds():
    assert population_band(1_999) == "lt2k"
    assert population_band(2_000) == "2k-10k"
    assert population_band(200_000) == "200k+"
    assert population_band(None) == "na"


def test_frames_hold_no_name_and_no_free_text():
    records = list(synthetic_records(DEFN, 30, seed=3))
    bodies, roles = build_frames(records, DEFN)
    text = bodies.to_csv() + roles.to_csv()
    assert "Commune fictive" not in text
    assert FREE_TEXT_MARKER not in text
    assert "commentaire" not in bodies.columns


def test_observed_values_get_their_own_columns():
    records = [
        {"body": "a", "kind": "commune", "respondents": [], "observed": {"measure_none": 100.0}}
    ]
    bodies, _ = build_frames(records, DEFN)
    assert bodies.loc[0, "obs_measure_none"] == 100


def test_cells_count_bodies_and_average_values_with_margins():
    bodies = frame(
        [
            {"body": "a", "kind": "commune", "band": "lt2k", "region": "R", "x": 100},
            {"body": "b", "kind": "commune", "band": "lt2k", "region": "R", "x": 0},
            {"body": "c", "kind": "agence", "band": "na", "region": "S", "x": None},
        ]
    )
    cells = cell_stats(bodies, None, ["x"]).set_index(["kind", "band", "region", "role"])
    assert cells.loc[("commune", ALL, ALL, ALL), "n"] == 2
    assert cells.loc[("commune", ALL, ALL, ALL), "mean"] == 50
    assert cells.loc[(ALL, ALL, ALL, ALL), "top"] == 100
    assert ("agence", ALL, ALL, ALL) not in cells.index


def test_role_cells_count_each_body_once_per_role():
    bodies = frame([{"body": "a", "kind": "k", "band": "b", "region": "r", "x": 100}])
    roles = frame(
        [
            {"body": "a", "kind": "k", "band": "b", "region": "r", "role": "agent", "x": 100},
            {"body": "a", "kind": "k", "band": "b", "region": "r", "role": "elected", "x": 0},
        ]
    )
    cells = cell_stats(bodies, roles, ["x"])
    agents = cells[cells["role"] == "agent"].iloc[0]
    assert agents["n"] == 1 and agents["mean"] == 100


def test_peers_widen_from_same_kind_and_size_until_there_are_enough():
    rows = [
        {"body": f"s{i}", "kind": "commune", "band": "lt2k", "region": "R", "x": 100}
        for i in range(3)
    ]
    rows += [
        {"body": f"o{i}", "kind": "commune", "band": "200k+", "region": "R", "x": 0}
        for i in range(3)
    ]
    peers = peer_stats(frame(rows), ["x"], kind="commune", band="lt2k", exclude_body="s0", k=5)
    row = peers.iloc[0]
    assert row["peer_group"] == "kind"
    assert row["n"] == 5  # the body itself is left out
    assert row["mean"] == 40


def test_peers_are_not_shown_when_even_all_bodies_are_too_few():
    rows = [
        {"body": f"s{i}", "kind": "commune", "band": "lt2k", "region": "R", "x": 1}
        for i in range(3)
    ]
    peers = peer_stats(frame(rows), ["x"], kind="commune", band="lt2k", k=5)
    assert peers.iloc[0]["peer_group"] is None


def test_response_rates_count_submitted_bodies_per_group():
    orgs = pd.DataFrame(
        [
            {
                "kind": "commune",
                "region": "R",
                "band": "lt2k",
                "status": "submitted",
                "agents": 2,
                "elected": 1,
            },
            {
                "kind": "commune",
                "region": "R",
                "band": "lt2k",
                "status": "draft",
                "agents": 1,
                "elected": 0,
            },
            {
                "kind": "agence",
                "region": "R",
                "band": "na",
                "status": "none",
                "agents": 0,
                "elected": 0,
            },
        ]
    )
    rates = response_rates(orgs, "kind").set_index("kind")
    assert rates.loc["commune", "rate_pct"] == 50
    assert rates.loc["commune", "started"] == 2
    assert rates.loc["agence", "submitted"] == 0
    assert response_rates(orgs).iloc[0]["agents"] == 3


def test_trends_order_editions_and_baselines_by_year():
    later = pd.DataFrame({"x": [10.0, 30.0]})
    base = pd.DataFrame(
        [
            {
                "edition": "2010",
                "year": 2010,
                "indicator": "x",
                "theme": "",
                "label_fr": "",
                "value_pct": 5.0,
                "qualifier": "exact",
            }
        ]
    )
    out = trends({"e2026": later}, ["x"], base, {"e2026": 2026})
    assert out["edition"].tolist() == ["2010", "e2026"]
    assert out["mean"].tolist() == [5.0, 20.0]
