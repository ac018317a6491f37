"""Sector aggregates with pandas: frames of bodies' indicator values, cells, peers, trends.

Two frames carry an edition's data once answers are turned into indicators:

- ``bodies``: one row per body: ``body`` (an opaque key, never published), ``kind``,
  ``region``, ``band`` (population band), then one column per indicator (0–100, NaN when
  not answered) and ``obs_<indicator>`` for observed values;
- ``roles``: one row per (body, respondent role) with the role's mean answers.

:func:`cell_stats` computes, for every indicator and every cell of the published tables
(total; kind; population band; kind × band; region; respondent role), the number of
bodies, the sum and largest contribution (for the disclosure rules) and mean, median and
quartiles. Margins are written ``"*"``. Everything here is pure and DB-free.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics.benchmark.indicators import IndicatorMap
from contacts.i18n import N_

ALL = "*"
DIMENSIONS = ("kind", "band", "region", "role")
GROUP_COLUMNS = ("body", "kind", "region", "band")
OBSERVED_PREFIX = "obs_"
# Every published table, as the dimensions it breaks down by (the empty one is the total).
TABLES: tuple[tuple[str, ...], ...] = (
    (),
    ("kind",),
    ("band",),
    ("kind", "band"),
    ("region",),
    ("role",),
)
DIMENSION_LABELS = {
    "kind": N_("Type d'organisme"),
    "band": N_("Strate de population"),
    "region": N_("Région"),
    "role": N_("Rôle du répondant"),
}
POPULATION_BANDS: tuple[tuple[str, str, int, int | None], ...] = (
    ("lt2k", N_("Moins de 2 000 habitants"), 0, 2_000),
    ("2k-10k", N_("De 2 000 à 9 999 habitants"), 2_000, 10_000),
    ("10k-50k", N_("De 10 000 à 49 999 habitants"), 10_000, 50_000),
    ("50k-200k", N_("De 50 000 à 199 999 habitants"), 50_000, 200_000),
    ("200k+", N_("200 000 habitants et plus"), 200_000, None),
)
BAND_UNKNOWN = "na"
BAND_LABELS = {code: label for code, label, _, _ in POPULATION_BANDS} | {
    BAND_UNKNOWN: N_("Population non renseignée")
}
ROLE_LABELS = {"agent": N_("Agents"), "elected": N_("Élus")}
STAT_COLUMNS = ["n", "sum", "top", "mean", "median", "q1", "q3"]


def population_band(population: int | None) -> str:
    """The population band code of a body (``na`` when unknown)."""
    if population is None or pd.isna(population) or population < 0:
        return BAND_UNKNOWN
    for code, _, low, high in POPULATION_BANDS:
        if population >= low and (high is None or population < high):
            return code
    return BAND_UNKNOWN


def build_frames(
    records: Iterable[Mapping[str, Any]], defn: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bodies, roles) frames from per-body records.

    A record: ``body`` (key), ``kind``, ``region``, ``population``, ``respondents`` (list of
    ``{"role", "answers"}`` with cleaned answers) or ``indicators`` (already computed, see
    :func:`indicators.response_indicators`), and optionally ``observed`` (indicator →
    value). Free-text answers never reach the frames.
    """
    imap = IndicatorMap(defn)
    body_rows, role_rows = [], []
    for rec in records:
        groups = {
            "body": str(rec["body"]),
            "kind": str(rec.get("kind") or "other"),
            "region": str(rec.get("region") or N_("non renseignée")),
            "band": population_band(rec.get("population")),
        }
        stored = rec.get("indicators") or {}
        if "body" in stored:  # computed at submission
            body, roles = stored["body"], stored.get("roles", {})
        else:
            body, roles = imap.body_and_roles(rec.get("respondents", []))
        row = {**groups, **body}
        row.update({OBSERVED_PREFIX + k: v for k, v in (rec.get("observed") or {}).items()})
        body_rows.append(row)
        for role, values in roles.items():
            role_rows.append({**groups, "role": role, **values})
    bodies = pd.DataFrame.from_records(body_rows)
    roles = pd.DataFrame.from_records(role_rows)
    for frame in (bodies, roles):
        for col in GROUP_COLUMNS:
            if col not in frame:
                frame[col] = pd.Series(dtype=object)
    if "role" not in roles:
        roles["role"] = pd.Series(dtype=object)
    return bodies, roles


def indicator_columns(frame: pd.DataFrame) -> list[str]:
    """The indicator columns of a bodies or roles frame (everything but the groups)."""
    return [c for c in frame.columns if c not in (*GROUP_COLUMNS, "role")]


def _group_codes(frame: pd.DataFrame, dims: Sequence[str]) -> tuple[np.ndarray, list[tuple]]:
    """Group number of each row for ``dims``, and the groups' values, sorted."""
    if not dims:
        return np.zeros(len(frame), dtype=int), [()]
    joined = frame[dims[0]].astype(str)
    for dim in dims[1:]:
        joined = joined + "\x1f" + frame[dim].astype(str)
    uniques, codes = np.unique(joined.to_numpy(dtype=str), return_inverse=True)
    return codes.reshape(-1), [tuple(u.split("\x1f")) for u in uniques.tolist()]


def _quartiles(values: np.ndarray, codes: np.ndarray, groups: int) -> np.ndarray:
    """(groups × 3) q1, median, q3 of ``values`` (NaN = missing), linear interpolation."""
    out = np.full((groups, 3), np.nan)
    keep = ~np.isnan(values)
    order = np.lexsort((values[keep], codes[keep]))
    sorted_codes, sorted_values = codes[keep][order], values[keep][order]
    bounds = np.searchsorted(sorted_codes, np.arange(groups + 1))
    for g in range(groups):
        chunk = sorted_values[bounds[g] : bounds[g + 1]]
        if len(chunk):
            for j, q in enumerate((0.25, 0.5, 0.75)):
                pos = q * (len(chunk) - 1)
                lo = int(pos)
                hi = min(lo + 1, len(chunk) - 1)
                out[g, j] = chunk[lo] + (chunk[hi] - chunk[lo]) * (pos - lo)
    return out


def _table_stats(
    frame: pd.DataFrame, dims: Sequence[str], indicators: Sequence[str], quantiles: Collection[str]
) -> pd.DataFrame | None:
    present = [i for i in indicators if i in frame.columns]
    if frame.empty or not present:
        return None
    values = frame[present].to_numpy(dtype=float)
    mask = ~np.isnan(values)
    codes, uniques = _group_codes(frame, dims)
    size = (len(uniques), len(present))
    # Rows sorted by group, then one reduceat per statistic (every group is non-empty).
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(uniques)))
    n = np.add.reduceat(mask[order].astype(float), starts, axis=0)
    total = np.add.reduceat(np.where(mask, values, 0.0)[order], starts, axis=0)
    top = np.maximum.reduceat(np.where(mask, values, -np.inf)[order], starts, axis=0)
    quart = np.full((*size, 3), np.nan)
    for j, ind in enumerate(present):
        if ind in quantiles:
            quart[:, j, :] = _quartiles(values[:, j], codes, len(uniques))
    g, k = np.nonzero(n > 0)
    out = pd.DataFrame(
        {
            "indicator": np.asarray(present, dtype=object)[k],
            "n": n[g, k].astype(int),
            "sum": total[g, k],
            "top": top[g, k],
            "mean": total[g, k] / n[g, k],
            "median": quart[g, k, 1],
            "q1": quart[g, k, 0],
            "q3": quart[g, k, 2],
        }
    )
    for pos, dim in enumerate(dims):
        out[dim] = np.asarray([u[pos] for u in uniques], dtype=object)[g]
    for dim in DIMENSIONS:
        if dim not in dims:
            out[dim] = ALL
    return out


def cell_stats(
    bodies: pd.DataFrame,
    roles: pd.DataFrame | None = None,
    indicators: Sequence[str] | None = None,
    tables: Sequence[Sequence[str]] = TABLES,
    quantile_indicators: Collection[str] | None = None,
) -> pd.DataFrame:
    """One row per (indicator, cell): n bodies, sum, top contribution, mean, median, quartiles.

    Columns: ``indicator``, ``kind``, ``band``, ``region``, ``role`` (``"*"`` where the
    table does not break down by it), then :data:`STAT_COLUMNS`. Role cells come from
    ``roles`` and count each body once per role; role tables cover declared indicators.
    Quartiles are computed for ``quantile_indicators`` only (all when None): they mean
    nothing for yes/no indicators. Plain numpy group sums: pandas' melt and groupby took
    most of an export's time.
    """
    if indicators is None:
        indicators = indicator_columns(bodies)
    quantiles = set(indicators if quantile_indicators is None else quantile_indicators)
    parts = []
    for dims in tables:
        frame = roles if "role" in dims else bodies
        if frame is None:
            continue
        part = _table_stats(frame, dims, indicators, quantiles)
        if part is not None:
            parts.append(part)
    columns = ["indicator", *DIMENSIONS, *STAT_COLUMNS]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def peer_stats(
    bodies: pd.DataFrame,
    indicators: Sequence[str],
    *,
    kind: str,
    band: str,
    exclude_body: str | None = None,
    k: int = 5,
) -> pd.DataFrame:
    """Today's adopters among a body's peers, widening the group until it has ``k`` bodies.

    Peers are bodies of the same kind and population band; when fewer than ``k`` have
    answered an indicator, the same kind; then every body. The body itself is left out
    so that it is compared with others. Columns: indicator, peer_group (``kind_band``,
    ``kind`` or ``all``), n, mean, median, q1, q3 (None where even all bodies are < k).
    """
    others = bodies if exclude_body is None else bodies[bodies["body"] != exclude_body]
    groups = (
        ("kind_band", others[(others["kind"] == kind) & (others["band"] == band)]),
        ("kind", others[others["kind"] == kind]),
        ("all", others),
    )
    rows = []
    for ind in indicators:
        row: dict[str, Any] = {"indicator": ind, "peer_group": None, "n": 0}
        for name, group in groups:
            if ind not in group:
                continue
            values = group[ind].dropna().to_numpy(dtype=float)
            if len(values) >= k:
                q1, median, q3 = np.percentile(values, [25, 50, 75])
                row.update(
                    peer_group=name,
                    n=len(values),
                    mean=float(values.mean()),
                    median=float(median),
                    q1=float(q1),
                    q3=float(q3),
                )
                break
        rows.append(row)
    return pd.DataFrame.from_records(
        rows, columns=["indicator", "peer_group", "n", "mean", "median", "q1", "q3"]
    )


def response_rates(orgs: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Response rate per group: bodies invited, responded, submitted; respondents by role.

    ``orgs``: one row per body with ``kind``, ``region``, ``band``, ``status`` (``none``,
    ``draft`` or ``submitted``), ``agents`` and ``elected`` (respondent counts).
    """
    frame = orgs.assign(
        invited=1,
        started=orgs["status"].isin(["draft", "submitted"]).astype(int),
        submitted=orgs["status"].eq("submitted").astype(int),
    )
    columns = ["invited", "started", "submitted", "agents", "elected"]
    if by:
        out = frame.groupby(by, sort=True)[columns].sum().reset_index()
    else:
        out = frame[columns].sum().to_frame().T.reset_index(drop=True)
    out[columns] = out[columns].astype(int)
    out["rate_pct"] = (100.0 * out["submitted"] / out["invited"].where(out["invited"] > 0)).round(1)
    return out


def trends(
    frames: Mapping[str, pd.DataFrame],
    indicators: Sequence[str],
    baselines: pd.DataFrame | None = None,
    years: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Sector mean and n per indicator and edition, baseline editions alongside, by year.

    ``frames`` maps an edition code to its bodies frame; ``years`` gives each edition's
    year (for ordering); ``baselines`` is :func:`baselines.baselines_frame` output.
    """
    years = years or {}
    rows = []
    if baselines is not None and not baselines.empty:
        for rec in baselines[baselines["indicator"].isin(indicators)].itertuples():
            rows.append({"edition": rec.edition, "year": rec.year, "kind_of_source": "baseline",
                         "indicator": rec.indicator, "n": None, "mean": rec.value_pct})  # fmt: skip
    for code, frame in frames.items():
        for ind in indicators:
            if ind in frame:
                values = frame[ind].dropna()
                rows.append({"edition": code, "year": years.get(code), "kind_of_source": "survey",
                             "indicator": ind, "n": int(values.size),
                             "mean": float(values.mean()) if values.size else None})  # fmt: skip
    columns = ["edition", "year", "kind_of_source", "indicator", "n", "mean"]
    out = pd.DataFrame.from_records(rows, columns=columns)
    return out.sort_values(["indicator", "year"], kind="stable", na_position="last").reset_index(
        drop=True
    )
