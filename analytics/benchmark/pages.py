"""What the benchmark pages show, as plain data: views only render these dictionaries.

- :func:`body_page`: a body's indicators beside the 2010 baseline and today's adopters
  among its peers, with chart series, the practice score and recommendations.
- :func:`analyst_page`: response rates, sector aggregates by kind, region and population
  band, agents vs elected officials, and trends across editions.

Peer and sector figures shown here are always disclosure-protected: the body page reads
the cells of the last published release (never live data, so a body cannot watch peers'
figures move as each new body answers), and the analyst page runs :func:`protect` on
live data (threshold, dominance, complementary suppression, audit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analytics.benchmark.aggregate import (
    ALL,
    BAND_LABELS,
    OBSERVED_PREFIX,
    ROLE_LABELS,
    cell_stats,
    indicator_columns,
    response_rates,
    trends,
)
from analytics.benchmark.anonymise import PUBLISHED, Policy, Release, cell_key, protect
from analytics.benchmark.baselines import BaselineTable, baselines_frame
from analytics.benchmark.export import KIND_LABELS
from analytics.benchmark.indicators import declared_vs_observed
from analytics.benchmark.score import practice_score, recommendations
from analytics.benchmark.survey import indicator_catalogue
from contacts.i18n import N_

THEME_LABELS = {
    "usage": N_("Usages de l'e-mail"),
    "collection": N_("Collecte des adresses"),
    "risky_collection": N_("Pratiques de collecte à risque"),
    "objective": N_("Objectifs"),
    "measurement": N_("Mesure"),
    "new_practice": N_("Nouvelles pratiques"),
    "budget": N_("Budget"),
    "perception": N_("Perception"),
    "obstacle": N_("Freins"),
}
# What protect() returns, for the empty edition (no answer yet).
PROTECTED_COLUMNS = ["indicator", "kind", "band", "region", "role", "key", "status", "n", "value"]
PEER_GROUP_LABELS = {
    "kind_band": N_("organismes du même type et de même taille"),
    "kind": N_("organismes du même type"),
    "all": N_("ensemble des organismes répondants"),
}


def _peer_cell(
    cells: Mapping[str, Mapping[str, Any]], indicator: str, kind: str, band: str
) -> tuple[str | None, Mapping[str, Any] | None]:
    for group, key in (
        ("kind_band", cell_key(indicator, kind, band, ALL, ALL)),
        ("kind", cell_key(indicator, kind, ALL, ALL, ALL)),
        ("all", cell_key(indicator, ALL, ALL, ALL, ALL)),
    ):
        if key in cells:
            return group, cells[key]
    return None, None


def body_page(
    defn: Mapping[str, Any],
    *,
    declared: Mapping[str, float],
    observed: Mapping[str, float],
    baseline: BaselineTable | None,
    cells: Mapping[str, Mapping[str, Any]] | None,
    kind: str,
    band: str,
) -> dict[str, Any]:
    """The body's benchmark page: rows per indicator, chart series per theme, score, advice.

    ``cells``: the published cells of the edition's last release (``None`` before any
    release: peers are then not shown, and the page says when they will be).
    """
    catalogue = indicator_catalogue(defn)
    reference = {r.indicator: r for r in (baseline.rows if baseline else ())}
    rows = []
    peer_shares: dict[str, float] = {}
    for ind, meta in catalogue.items():
        group, peer = _peer_cell(cells or {}, ind, kind, band)
        ref = reference.get(ind)
        if peer is not None and peer.get("value") is not None:
            peer_shares[ind] = peer["value"]
        rows.append(
            {
                "indicator": ind,
                "theme": meta.get("theme", ""),
                "theme_label": THEME_LABELS.get(meta.get("theme", ""), meta.get("theme", "")),
                "label": meta["label_fr"],
                "unit": meta["unit"],
                "declared": _r(declared.get(ind)),
                "observed": _r(observed.get(ind)),
                "baseline": ref.value_pct if ref else None,
                "baseline_qualifier": ref.qualifier if ref else None,
                "peer_group": PEER_GROUP_LABELS.get(group or ""),
                "peer_n": int(peer["n"]) if peer and peer.get("n") is not None else None,
                "peer_value": _r(peer.get("value")) if peer else None,
                "peer_q1": _r(peer.get("q1")) if peer else None,
                "peer_median": _r(peer.get("median")) if peer else None,
                "peer_q3": _r(peer.get("q3")) if peer else None,
            }
        )
    charts = []
    for theme in dict.fromkeys(r["theme"] for r in rows):
        theme_rows = [r for r in rows if r["theme"] == theme]
        charts.append(
            {
                "theme": theme,
                "title": THEME_LABELS.get(theme, theme),
                "labels": [r["label"] for r in theme_rows],
                "series": [
                    {"name": N_("Votre organisme"), "data": [_mine(r) for r in theme_rows]},
                    {
                        "name": baseline.code if baseline else N_("Référence"),
                        "data": [r["baseline"] for r in theme_rows],
                    },
                    {
                        "name": N_("Vos pairs aujourd'hui"),
                        "data": [r["peer_value"] for r in theme_rows],
                    },
                ],
            }
        )
    scores = practice_score(declared, observed)
    advice = recommendations(declared, observed, peer_shares)
    return {
        "rows": rows,
        "charts": charts,
        "declared_vs_observed": declared_vs_observed(defn, declared, observed),
        "score": [
            {
                "id": s.id,
                "label": s.label,
                "score": s.score,
                "summary": s.summary,
                "components": [c.__dict__ for c in s.components],
            }
            for s in scores.values()
        ],
        "recommendations": [r.__dict__ for r in advice],
        "peers_available": cells is not None,
        "peers_note": (
            None
            if cells is not None
            else N_(
                "Les comparaisons avec les autres organismes seront affichées à la "
                "publication des résultats de l'édition."
            )
        ),
        "baseline_source": baseline.source if baseline else None,
    }


def _mine(row: Mapping[str, Any]) -> float | None:
    return row["observed"] if row["observed"] is not None else row["declared"]


def _r(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return round(float(value), 1)


def analyst_page(
    bodies: pd.DataFrame,
    roles: pd.DataFrame | None,
    participation: pd.DataFrame,
    defn: Mapping[str, Any],
    *,
    policy: Policy | None = None,
    releases: Sequence[Release] = (),
    baselines: Sequence[BaselineTable] = (),
    earlier: Mapping[str, pd.DataFrame] | None = None,
    edition_code: str = "",
    years: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Everything the analyst's pages show for one edition, protected.

    ``participation``: one row per body (kind, region, band, status, agents, elected);
    ``earlier``: edition code → bodies frame of earlier editions, for trends;
    ``years``: edition code → year, to order the trends.
    """
    policy = policy or Policy()
    catalogue = indicator_catalogue(defn)
    present = set(indicator_columns(bodies)) if not bodies.empty else set()
    indicators = [i for i in catalogue if i in present]
    indicators += sorted(i for i in present if i.startswith(OBSERVED_PREFIX))
    quartiles = {i for i in indicators if catalogue.get(i, {}).get("unit") == "pct"}
    cells = (
        cell_stats(bodies, roles, indicators, quantile_indicators=quartiles)
        if indicators
        else pd.DataFrame()
    )
    protected = (
        protect(
            cells, bodies, policy, roles=roles, releases=releases, quantile_indicators=quartiles
        )
        if not cells.empty
        else pd.DataFrame(columns=PROTECTED_COLUMNS)
    )
    rates = {
        "total": _records(response_rates(participation)),
        **{
            by: _records(_protect_counts(response_rates(participation, by), by, policy))
            for by in ("kind", "region", "band")
        },
    }
    breakdowns = _breakdowns(protected, catalogue, ("kind", "region", "band", "role"))
    frames = dict(earlier or {})
    if edition_code:
        frames[edition_code] = bodies
    trend = trends(frames, list(catalogue), baselines_frame(baselines), years)
    small = trend["kind_of_source"].eq("survey") & (trend["n"].fillna(0) < policy.k)
    trend.loc[small, "mean"] = None
    trend["mean"] = trend["mean"].map(lambda v: None if v is None or pd.isna(v) else round(v))
    return {
        "policy": {"k": policy.k, "dominance": policy.dominance, "rounding": policy.rounding},
        "response_rates": rates,
        "breakdowns": breakdowns,
        "trends": _records(trend),
        "indicators": {i: catalogue.get(i, {"label_fr": i}) for i in indicators},
    }


def _protect_counts(rates: pd.DataFrame, by: str, policy: Policy) -> pd.DataFrame:
    """Hide respondent counts of groups with fewer than k invited bodies."""
    rates = rates.copy()
    small = rates["invited"] < policy.k
    for col in ("started", "submitted", "agents", "elected", "rate_pct"):
        rates[col] = rates[col].astype(object).where(~small, None)
    labels = {"kind": KIND_LABELS, "band": BAND_LABELS}.get(by, {})
    rates["label"] = rates[by].map(lambda v: labels.get(v, v))
    return rates


def _breakdowns(
    protected: pd.DataFrame, catalogue: Mapping[str, Any], dims: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per dimension, an indicator × category table of published values (None if secret).

    One pass over the cells in plain Python: pandas filtering per dimension and
    indicator was a third of the analyst page's time.
    """
    values: dict[str, dict[tuple[str, str], tuple[float, int]]] = {d: {} for d in dims}
    categories: dict[str, set[str]] = {d: set() for d in dims}
    order: dict[str, dict[str, None]] = {d: {} for d in dims}
    totals: dict[str, float] = {}
    columns = ["indicator", "kind", "band", "region", "role", "status", "value", "n"]
    for ind, kind, band, region, role, status, value, n in protected[columns].itertuples(
        index=False, name=None
    ):
        coords = {"kind": kind, "band": band, "region": region, "role": role}
        broken = [d for d, v in coords.items() if v != ALL]
        shown = status == PUBLISHED
        if not broken:
            if shown:
                totals[ind] = value
            continue
        if len(broken) != 1 or broken[0] not in values:
            continue
        dim = broken[0]
        category = coords[dim]
        categories[dim].add(category)
        order[dim][ind] = None
        if shown:
            values[dim][(ind, category)] = (value, n)
    out = {}
    for dim in dims:
        labels = {"kind": KIND_LABELS, "band": BAND_LABELS, "role": ROLE_LABELS}.get(dim, {})
        cats = sorted(categories[dim])
        rows = []
        for ind in order[dim]:
            cells = [values[dim].get((ind, c)) for c in cats]
            base = ind.removeprefix(OBSERVED_PREFIX)
            rows.append(
                {
                    "indicator": ind,
                    "label": catalogue.get(base, {}).get("label_fr", ind),
                    "observed": ind.startswith(OBSERVED_PREFIX),
                    "total": _num(totals.get(ind)),
                    "values": [_num(c[0]) if c else None for c in cells],
                    "n": [_int(c[1]) if c else None for c in cells],
                }
            )
        out[dim] = {
            "by": dim,
            "categories": [{"code": c, "label": labels.get(c, c)} for c in cats],
            "rows": rows,
        }
    return out


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if (not isinstance(v, str | list) and pd.isna(v)) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]
