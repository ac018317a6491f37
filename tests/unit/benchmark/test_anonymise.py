"""Disclosure control: thresholds, dominance, complementary suppression, differencing."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.benchmark.aggregate import ALL, DIMENSIONS, cell_stats
from analytics.benchmark.anonymise import (
    DIFFERENCE,
    PRIMARY,
    PUBLISHED,
    Policy,
    make_release,
    protect,
    relations_for,
)
from contacts.db import DomainError

INDICATORS = ("yes_no", "percent")
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- builders ----------------------------------------------------------------------------


def frames(bodies: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    body_rows, role_rows = [], []
    for b in bodies:
        groups = {k: b[k] for k in ("body", "kind", "band", "region")}
        body_rows.append({**groups, **{i: b.get(i) for i in INDICATORS}})
        for role, value in b.get("roles", {}).items():
            role_rows.append({**groups, "role": role, "yes_no": value})
    bodies_df = pd.DataFrame(body_rows)
    roles_df = pd.DataFrame(role_rows, columns=["body", "kind", "band", "region", "role", "yes_no"])
    for col in INDICATORS:
        bodies_df[col] = bodies_df[col].astype(float)
    roles_df["yes_no"] = roles_df["yes_no"].astype(float)
    return bodies_df, roles_df


def body(i: int, kind="commune", band="lt2k", region="Bretagne", yes_no=0.0, percent=50.0, **kw):
    return {"body": f"b{i}", "kind": kind, "band": band, "region": region,
            "yes_no": yes_no, "percent": percent, **kw}  # fmt: skip


def run(bodies_list, policy=None, releases=()):
    bodies_df, roles_df = frames(bodies_list)
    cells = cell_stats(bodies_df, roles_df, list(INDICATORS))
    protected = protect(
        cells, bodies_df, policy or Policy(k=3), roles=roles_df, releases=releases,
        quantile_indicators={"percent"},
    )  # fmt: skip
    return bodies_df, roles_df, cells, protected


@st.composite
def sectors(draw, min_size=3, max_size=24):
    count = draw(st.integers(min_size, max_size))
    out = []
    for i in range(count):
        roles = draw(
            st.dictionaries(st.sampled_from(["agent", "elected"]), st.sampled_from([0.0, 100.0]))
        )
        out.append(
            body(
                i,
                kind=draw(st.sampled_from(["commune", "association", "agence"])),
                band=draw(st.sampled_from(["lt2k", "2k-10k", "na"])),
                region=draw(st.sampled_from(["Bretagne", "Corse", "Normandie"])),
                yes_no=draw(st.sampled_from([0.0, 100.0, None])),
                percent=draw(st.one_of(st.none(), st.integers(0, 100).map(float))),
                roles=roles,
            )
        )
    return out


policies = st.builds(Policy, k=st.integers(3, 6), dominance=st.sampled_from([0.6, 0.85]))


# --- exact linear algebra, independent of the module's numpy audit -----------------------


def rref(rows: list[list[Fraction]]) -> list[tuple[int, list[Fraction]]]:
    """Reduced row echelon form as (pivot column, row) pairs, exact over the rationals."""
    basis: list[tuple[int, list[Fraction]]] = []
    for row in rows:
        v = reduce(row, basis)
        pivot = next((j for j, x in enumerate(v) if x != 0), None)
        if pivot is None:
            continue
        v = [x / v[pivot] for x in v]
        basis = [(p, [a - r[pivot] * b for a, b in zip(r, v, strict=True)]) for p, r in basis]
        basis.append((pivot, v))
    return basis


def reduce(vector: list[Fraction], basis: list[tuple[int, list[Fraction]]]) -> list[Fraction]:
    v = list(vector)
    for pivot, row in basis:
        if v[pivot] != 0:
            factor = v[pivot]
            v = [a - factor * b for a, b in zip(v, row, strict=True)]
    return v


def in_span(vector: list[Fraction], basis: list[tuple[int, list[Fraction]]]) -> bool:
    return not any(reduce(vector, basis))


def incidence(bodies_df: pd.DataFrame, indicator: str, cell: dict, columns: list[str]):
    """0/1 row over ``columns`` (body ids) for a body-level cell."""
    mask = bodies_df[indicator].notna()
    for dim in ("kind", "band", "region"):
        if cell[dim] != ALL:
            mask &= bodies_df[dim] == cell[dim]
    members = set(bodies_df.loc[mask, "body"])
    return [Fraction(1 if c in members else 0) for c in columns]


def published_rows(bodies_df, protected, indicator, columns):
    """Exact basis of the published body-level cells of one indicator."""
    rows = []
    sel = protected[
        (protected["indicator"] == indicator)
        & (protected["status"] == PUBLISHED)
        & (protected["role"] == ALL)
    ]
    for cell in sel.to_dict("records"):
        rows.append(incidence(bodies_df, indicator, cell, columns))
    return rows


def span_of(rows):
    return rref(rows)


# --- properties --------------------------------------------------------------------------


@SETTINGS
@given(sectors(), policies)
def test_no_published_cell_comes_from_fewer_bodies_than_the_threshold(sector, policy):
    _, _, cells, protected = run(sector, policy)
    published = protected["status"] == PUBLISHED
    assert (cells.loc[published, "n"] >= policy.k).all()
    assert (protected.loc[published, "n"] >= policy.k).all()


@SETTINGS
@given(sectors(), policies)
def test_no_published_cell_has_one_body_above_the_dominance_share(sector, policy):
    _, _, cells, protected = run(sector, policy)
    published = (protected["status"] == PUBLISHED) & (cells["sum"] > 0)
    assert (cells.loc[published, "top"] <= policy.dominance * cells.loc[published, "sum"]).all()


@SETTINGS
@given(sectors(), policies)
def test_no_margin_relation_holds_a_lone_secret_cell(sector, policy):
    _, _, _, protected = run(sector, policy)
    for _, group in protected.groupby("indicator"):
        group = group.reset_index(drop=True)
        coords = list(group[list(DIMENSIONS)].itertuples(index=False, name=None))
        for margin, parts in relations_for(coords):
            secret = [m for m in (margin, *parts) if group.loc[m, "status"] != PUBLISHED]
            assert len(secret) != 1


@SETTINGS
@given(sectors(), policies)
def test_no_secret_cell_is_recovered_by_subtracting_published_totals_and_parts(sector, policy):
    bodies_df, _, _, protected = run(sector, policy)
    columns = list(bodies_df["body"])
    for indicator in INDICATORS:
        rows = span_of(published_rows(bodies_df, protected, indicator, columns))
        secret = protected[
            (protected["indicator"] == indicator)
            & protected["status"].isin([PRIMARY, DIFFERENCE])
            & (protected["role"] == ALL)
        ]
        for cell in secret.to_dict("records"):
            assert not in_span(incidence(bodies_df, indicator, cell, columns), rows), cell["key"]


@SETTINGS
@given(sectors(), policies)
def test_no_single_body_value_is_a_combination_of_published_cells(sector, policy):
    bodies_df, _, _, protected = run(sector, policy)
    columns = list(bodies_df["body"])
    for indicator in INDICATORS:
        rows = span_of(published_rows(bodies_df, protected, indicator, columns))
        answered = set(bodies_df.loc[bodies_df[indicator].notna(), "body"])
        for j, b in enumerate(columns):
            if b in answered:
                unit = [Fraction(int(i == j)) for i in range(len(columns))]
                assert not in_span(unit, rows), (indicator, b)


@SETTINGS
@given(sectors(min_size=3, max_size=20), policies, st.data())
def test_two_exports_differing_by_one_body_reveal_nothing_about_it(sector, policy, data):
    extra = body(
        999,
        kind=data.draw(st.sampled_from(["commune", "association", "agence"])),
        band=data.draw(st.sampled_from(["lt2k", "2k-10k", "na"])),
        region=data.draw(st.sampled_from(["Bretagne", "Corse", "Normandie"])),
        yes_no=data.draw(st.sampled_from([0.0, 100.0])),
        percent=float(data.draw(st.integers(0, 100))),
        roles={"agent": 100.0},
    )
    added_first = data.draw(st.booleans())
    first, second = (sector + [extra], sector) if added_first else (sector, sector + [extra])
    b1, r1, _, p1 = run(first, policy)
    b2, _, _, p2 = run(second, policy, releases=[make_release(b1, r1, p1)])

    both = p1.merge(p2, on="key", suffixes=("_1", "_2"))
    both = both[(both["status_1"] == PUBLISHED) & (both["status_2"] == PUBLISHED)]
    for col in ("n", "value", "median"):
        left, right = both[f"{col}_1"], both[f"{col}_2"]
        assert ((left == right) | (left.isna() & right.isna())).all(), col

    big = b1 if added_first else b2
    columns = list(big["body"])
    target = columns.index("b999")
    unit = [Fraction(int(i == target)) for i in range(len(columns))]
    for indicator in INDICATORS:
        rows = span_of(
            published_rows(b1, p1, indicator, columns) + published_rows(b2, p2, indicator, columns)
        )
        assert not in_span(unit, rows), indicator


# --- examples ----------------------------------------------------------------------------


def test_a_cell_of_four_bodies_is_secret_with_a_complementary_cell():
    sector = [body(i, region="Corse", yes_no=100.0 * (i % 2)) for i in range(4)]
    sector += [body(10 + i, region="Bretagne", yes_no=100.0 * (i % 2)) for i in range(6)]
    sector += [body(20 + i, region="Normandie", yes_no=100.0 * (i % 2)) for i in range(7)]
    _, _, _, protected = run(sector, Policy(k=5))
    regions = protected[
        (protected["indicator"] == "yes_no") & (protected["region"] != ALL)
    ].set_index("region")
    assert regions.loc["Corse", "status"] == PRIMARY
    assert regions.loc["Bretagne", "status"] != PUBLISHED  # the smallest other region
    assert regions.loc["Normandie", "status"] == PUBLISHED


def test_a_body_making_ninety_percent_of_a_cell_makes_it_secret():
    sector = [body(i, kind="agence", percent=1.0) for i in range(5)]
    sector[0]["percent"] = 90.0
    sector += [body(10 + i, kind="commune", percent=50.0) for i in range(8)]
    _, _, _, protected = run(sector, Policy(k=5))
    kinds = protected[
        (protected["indicator"] == "percent")
        & (protected["kind"] != ALL)
        & (protected["band"] == ALL)
    ].set_index("kind")
    assert kinds.loc["agence", "status"] == PRIMARY


def test_a_single_yes_in_a_cell_counts_as_dominance():
    sector = [body(i, yes_no=0.0) for i in range(9)] + [body(9, yes_no=100.0)]
    _, _, _, protected = run(sector, Policy(k=5))
    total = protected[(protected["key"] == "yes_no|*|*|*|*")].iloc[0]
    assert total["status"] == PRIMARY


def test_one_more_body_makes_its_cells_secret_in_the_next_export():
    sector = [body(i, yes_no=100.0 * (i % 3 == 0)) for i in range(12)]
    b1, r1, _, p1 = run(sector, Policy(k=5))
    newcomer = body(50, yes_no=100.0)
    _, _, _, p2 = run(sector + [newcomer], Policy(k=5), releases=[make_release(b1, r1, p1)])
    total_before = p1.set_index("key").loc["yes_no|*|*|*|*"]
    total_after = p2.set_index("key").loc["yes_no|*|*|*|*"]
    assert total_before["status"] == PUBLISHED
    assert total_after["status"] == DIFFERENCE


def test_five_more_bodies_let_a_cell_be_published_again():
    sector = [body(i, yes_no=100.0 * (i % 3 == 0)) for i in range(12)]
    b1, r1, _, p1 = run(sector, Policy(k=5))
    newcomers = [body(50 + i, yes_no=100.0 * (i % 2)) for i in range(5)]
    _, _, _, p2 = run(sector + newcomers, Policy(k=5), releases=[make_release(b1, r1, p1)])
    assert p2.set_index("key").loc["yes_no|*|*|*|*", "status"] == PUBLISHED


def test_an_unchanged_sector_publishes_the_same_figures_again():
    sector = [body(i, yes_no=100.0 * (i % 3 == 0), percent=float(i * 7)) for i in range(15)]
    b1, r1, _, p1 = run(sector, Policy(k=5))
    _, _, _, p2 = run(sector, Policy(k=5), releases=[make_release(b1, r1, p1)])
    pd.testing.assert_frame_equal(p1, p2)


def test_published_values_are_rounded_to_the_stated_step():
    sector = [body(i, percent=float(10 + i * 3)) for i in range(12)]
    _, _, _, protected = run(sector, Policy(k=5, rounding=5))
    values = protected.loc[protected["status"] == PUBLISHED, "value"]
    assert not values.empty
    assert (values % 5 == 0).all()


def test_quartiles_are_published_only_for_cells_of_twice_the_threshold():
    sector = [body(i, percent=float(i * 9)) for i in range(9)]
    _, _, _, protected = run(sector, Policy(k=5))
    total = protected.set_index("key").loc["percent|*|*|*|*"]
    assert total["status"] == PUBLISHED
    assert pd.isna(total["median"])


@pytest.mark.parametrize("k", [0, 1, 2])
def test_a_threshold_below_three_bodies_is_refused(k):
    with pytest.raises(DomainError) as caught:
        Policy(k=k)
    assert caught.value.code == "benchmark_threshold"


def test_raw_sums_and_top_contributions_never_leave_protect():
    _, _, _, protected = run([body(i) for i in range(6)], Policy(k=3))
    assert not {"sum", "top", "mean"} & set(protected.columns)
