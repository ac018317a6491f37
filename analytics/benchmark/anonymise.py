"""Statistical disclosure control for every published benchmark figure.

What is published: for each indicator and each cell of the tables (total; kind of body;
population band; kind × band; region; respondent role), the number of bodies ``n`` and
the mean value (share of bodies for yes/no indicators), plus quartiles for percentage
indicators in cells of at least 2k bodies. The unit protected is the body: nothing may
let a reader learn one body's answer, nor an aggregate of fewer than k bodies.

The method (INSEE's « Règles » for tables and Eurostat's guidelines, adapted):

1. **Primary suppression.** A cell is secret when fewer than ``k`` bodies contribute
   (default 5, never below 3) or when one body makes more than ``p`` of the cell's value
   (dominance, default 85 %; for a yes/no indicator: a single "yes").
2. **Differencing between releases** (minimum query-set size). Each export is a release
   whose pseudonymised input is kept (:class:`Release`). A cell published in an earlier
   release of the same edition may be published again only if its set of contributions
   is identical (then its figures are too) or differs by at least ``k`` bodies with no
   body above ``p`` of the difference; otherwise it is secret. So two exports that differ
   by one body never both publish a cell that contains it: subtracting them yields
   nothing. We chose this over rounding counts to base 5 or adding noise because any
   deterministic rounding leaks at the edges of its rounding intervals, and noise makes
   published tables inconsistent with each other.
3. **Complementary (secondary) suppression.** Tables have margins: a kind's cell is the
   sum of its kind × band cells, the total the sum of the kinds, of the bands, of the
   regions and (conservatively) of the two roles. In each such relation that holds
   exactly one secret cell, a second cell is made secret: the smallest published part
   not already public through an earlier release (the margin if no part is left),
   repeated until no relation has a lone secret.
4. **Linear audit.** The heuristic in 3 does not see overlaps between tables (a region
   and a kind × band cell can differ by one body). So, per indicator, every published
   body-level cell, from this release and from earlier ones, is treated as a known sum
   over bodies' values (a body whose answer changed counts as a new unknown), and we
   check with linear algebra that no single body's value and no primary or
   differencing-secret cell is a linear combination of them; if one is, the smallest
   published cell containing it becomes secret and steps 3–4 run again
   (:mod:`analytics.benchmark.audit`). Role cells are covered by step 3 only.
5. **Rounding.** Published values are rounded to ``rounding`` points (default 1);
   counts are exact. Rounding is stated in every export's metadata.

Residual risks, stated: the pattern of secret cells can itself hint at small groups;
a cell where every body answered the same (0 % or 100 %) tells each of them the answer,
as in any frequency table; and the audit checks single bodies, not every group of 2..k-1.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analytics.benchmark.aggregate import ALL, DIMENSIONS, TABLES, indicator_columns
from analytics.benchmark.audit import BODY_DIMS, Audit, FrameIndex, single_blas_thread
from contacts.db import DomainError

PUBLISHED = "published"
PRIMARY = "primary"
DIFFERENCE = "difference"
SECONDARY = "secondary"
MIN_K = 3
ROUNDING_STEPS = (1, 2, 5, 10)


@dataclass(frozen=True)
class Policy:
    """Disclosure thresholds; refused below the floor the association committed to."""

    k: int = 5
    dominance: float = 0.85
    rounding: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or self.k < MIN_K:
            raise DomainError(
                "benchmark_threshold",
                "Le seuil de diffusion ne peut pas être inférieur à %(min)s organismes.",
                params={"min": MIN_K},
            )
        if not 0.5 <= self.dominance < 1:
            raise DomainError(
                "benchmark_threshold",
                "La règle de dominance doit être comprise entre 50 % et 99 %.",
            )
        if self.rounding not in ROUNDING_STEPS:
            raise DomainError(
                "benchmark_threshold",
                "L'arrondi doit être de 1, 2, 5 ou 10 points.",
            )


@dataclass(frozen=True)
class Release:
    """What an earlier export published: its pseudonymised input and its published cells."""

    snapshot: Mapping[str, Mapping[str, Any]]
    published: frozenset[str]


def cell_key(indicator: str, kind: str, band: str, region: str, role: str) -> str:
    return "|".join((indicator, kind, band, region, role))


def snapshot_from_frames(
    bodies: pd.DataFrame, roles: pd.DataFrame | None = None
) -> dict[str, dict[str, Any]]:
    """Body key → {"g": [kind, band, region], "v": {indicator: value}, "r": {role: {...}}}.

    Values are rounded to 6 decimals so that equality survives a JSON round trip.
    """
    snap: dict[str, dict[str, Any]] = {}
    for body, groups, values in _rows(bodies):
        snap[body] = {"g": groups, "v": values, "r": {}}
    if roles is not None and not roles.empty:
        role_names = roles["role"].astype(str).tolist()
        for (body, groups, values), role in zip(_rows(roles), role_names, strict=True):
            snap.setdefault(body, {"g": groups, "v": {}, "r": {}})["r"][role] = values
    return snap


def _rows(frame: pd.DataFrame) -> list[tuple[str, list[str], dict[str, float]]]:
    if frame.empty:
        return []
    indicators = indicator_columns(frame)
    values = np.round(frame[indicators].to_numpy(dtype=float), 6)
    present = ~np.isnan(values)
    keys = frame["body"].astype(str).tolist()
    groups = frame[["kind", "band", "region"]].astype(str).to_numpy().tolist()
    out = []
    for i, key in enumerate(keys):
        row = values[i]
        out.append(
            (key, groups[i], {indicators[j]: float(row[j]) for j in np.flatnonzero(present[i])})
        )
    return out


def frames_from_snapshot(
    snapshot: Mapping[str, Mapping[str, Any]],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inverse of :func:`snapshot_from_frames` (used to audit against earlier releases)."""
    body_rows, role_rows = [], []
    for body, rec in snapshot.items():
        kind, band, region = rec["g"]
        groups = {"body": body, "kind": kind, "region": region, "band": band}
        body_rows.append({**groups, **rec.get("v", {})})
        for role, values in rec.get("r", {}).items():
            role_rows.append({**groups, "role": role, **values})
    cols = ["body", "kind", "region", "band"]
    bodies = pd.DataFrame.from_records(body_rows) if body_rows else pd.DataFrame(columns=cols)
    roles = (
        pd.DataFrame.from_records(role_rows) if role_rows else pd.DataFrame(columns=[*cols, "role"])
    )
    return bodies, roles


def _memberships(
    rec: Mapping[str, Any] | None, tables: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Every (cell key → value) a body record contributes to."""
    if rec is None:
        return {}
    kind, band, region = rec["g"]
    groups = {"kind": kind, "band": band, "region": region}
    out: dict[str, float] = {}
    for dims in tables:
        if "role" in dims:
            for role, values in rec.get("r", {}).items():
                coords = [groups[d] if d in dims else ALL for d in BODY_DIMS]
                for ind, v in values.items():
                    out[cell_key(ind, *coords, role)] = v
            continue
        coords = [groups[d] if d in dims else ALL for d in BODY_DIMS]
        for ind, v in rec.get("v", {}).items():
            out[cell_key(ind, *coords, ALL)] = v
    return out


def release_differences(
    previous: Mapping[str, Mapping[str, Any]],
    current: Mapping[str, Mapping[str, Any]],
    tables: Sequence[Sequence[str]] = TABLES,
) -> dict[str, list[float]]:
    """Cell key → the change each differing body makes to the cell's sum between releases."""
    out: dict[str, list[float]] = defaultdict(list)
    for body in set(previous) | set(current):
        old, new = previous.get(body), current.get(body)
        if old == new:
            continue
        before, after = _memberships(old, tables), _memberships(new, tables)
        for key in before.keys() | after.keys():
            b, a = before.get(key), after.get(key)
            if b != a:
                out[key].append((a or 0.0) - (b or 0.0))
    return out


def _dominated(contributions: Iterable[float], p: float) -> bool:
    values = [abs(v) for v in contributions]
    total = sum(values)
    return total > 0 and max(values) > p * total


def protect(
    cells: pd.DataFrame,
    bodies: pd.DataFrame,
    policy: Policy | None = None,
    *,
    roles: pd.DataFrame | None = None,
    releases: Sequence[Release] = (),
    quantile_indicators: Collection[str] = (),
    tables: Sequence[Sequence[str]] = TABLES,
    snapshot: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Apply the rules above to :func:`analytics.benchmark.aggregate.cell_stats` output.

    Returns only publishable columns: indicator, kind, band, region, role, key, status,
    n, value, q1, median, q3; figures are empty (NaN) where the status is not published.
    The raw sums and top contributions never leave this function.
    """
    policy = policy or Policy()
    cells = cells.reset_index(drop=True)
    joined = cells["indicator"].astype(str)
    for dim in DIMENSIONS:
        joined = joined + "|" + cells[dim].astype(str)
    keys = joined.tolist()
    n = cells["n"].to_numpy(dtype=int)
    total = cells["sum"].to_numpy(dtype=float)
    top = cells["top"].to_numpy(dtype=float)
    status = np.full(len(cells), PUBLISHED, dtype=object)
    dominated = (total > 0) & (top > policy.dominance * total)
    status[(n < policy.k) | dominated] = PRIMARY

    index = {key: i for i, key in enumerate(keys)}
    known: set[str] = set()
    prior_frames = []
    if releases:
        current = snapshot if snapshot is not None else snapshot_from_frames(bodies, roles)
        for release in releases:
            diffs = release_differences(release.snapshot, current, tables)
            for key in release.published:
                i = index.get(key)
                if i is None or status[i] != PUBLISHED:
                    continue
                changes = diffs.get(key)
                if not changes:
                    known.add(key)
                elif len(changes) < policy.k or _dominated(changes, policy.dominance):
                    status[i] = DIFFERENCE
            prior_frames.append((frames_from_snapshot(release.snapshot)[0], release.published))

    current_index = FrameIndex(bodies, tables)
    position = {b: i for i, b in enumerate(current_index.bodies)}
    priors = []
    for frame, published in prior_frames:
        prior_index = FrameIndex(frame, tables)
        to_current = np.array([position.get(b, -1) for b in prior_index.bodies], dtype=int)
        by_indicator: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for key in published:
            ind, kind, band, region, role = key.split("|")
            if role == ALL:
                by_indicator[ind].append((kind, band, region))
        priors.append((prior_index, to_current, by_indicator))

    all_coords = list(cells[list(DIMENSIONS)].itertuples(index=False, name=None))
    with single_blas_thread():
        for indicator, positions in cells.groupby("indicator", sort=False).indices.items():
            _complete(
                indicator,
                list(positions),
                all_coords,
                keys,
                n,
                status,
                known,
                current_index,
                priors,
            )

    out = cells[["indicator", *DIMENSIONS]].copy()
    out["key"] = keys
    out["status"] = status
    shown = status == PUBLISHED
    out["n"] = pd.Series(n, dtype="Int64").where(shown)
    out["value"] = np.where(
        shown, _round(cells["mean"].to_numpy(dtype=float), policy.rounding), np.nan
    )
    with_quartiles = (
        shown & cells["indicator"].isin(list(quantile_indicators)).to_numpy() & (n >= 2 * policy.k)
    )
    for col in ("q1", "median", "q3"):
        out[col] = np.where(
            with_quartiles, _round(cells[col].to_numpy(dtype=float), policy.rounding), np.nan
        )
    return out


def _round(values: np.ndarray, step: int) -> np.ndarray:
    return np.floor(values / step + 0.5) * step


# --- complementary suppression and audit -------------------------------------------------


def relations_for(coords: Sequence[tuple[str, ...]]) -> list[tuple[int, list[int]]]:
    """(margin, parts) position lists: the margin's value is the sum of its parts'.

    ``coords`` are the (kind, band, region, role) of the cells of one indicator.
    """
    where = {c: i for i, c in enumerate(coords)}
    groups: dict[tuple[int, tuple[str, ...]], list[int]] = defaultdict(list)
    for i, c in enumerate(coords):
        for d in range(len(DIMENSIONS)):
            if c[d] != ALL:
                margin = (*c[:d], ALL, *c[d + 1 :])
                if margin in where:
                    groups[(d, margin)].append(i)
    return [(where[margin], parts) for (_, margin), parts in sorted(groups.items())]


def _complete(
    indicator: str,
    positions: list[int],
    all_coords: list[tuple[str, ...]],
    keys: list[str],
    n: np.ndarray,
    status: np.ndarray,
    known: set[str],
    current: FrameIndex,
    priors: list[tuple[FrameIndex, np.ndarray, Mapping[str, list[tuple[str, str, str]]]]],
) -> None:
    coords = [all_coords[p] for p in positions]
    relations = [
        (positions[m], [positions[p] for p in parts]) for m, parts in relations_for(coords)
    ]
    audit = Audit(indicator, positions, coords, current, priors)
    for _ in range(len(positions) + 1):
        _secondary(relations, keys, n, status, known)
        published = {p for p in positions if status[p] == PUBLISHED}
        sensitive = {p for p in positions if status[p] in (PRIMARY, DIFFERENCE)}
        extra = audit.unsafe(published, sensitive, n, relations)
        if extra is None:
            return
        status[extra] = SECONDARY


def _secondary(
    relations: list[tuple[int, list[int]]],
    keys: list[str],
    n: np.ndarray,
    status: np.ndarray,
    known: set[str],
) -> None:
    """Give every relation with a lone secret cell a second one, until none is left."""
    changed = True
    while changed:
        changed = False
        for margin, parts in relations:
            members = [margin, *parts]
            secret = [m for m in members if status[m] != PUBLISHED]
            if len(secret) != 1:
                continue
            candidates = [p for p in parts if status[p] == PUBLISHED]
            if not candidates:
                candidates = [margin]
            pick = min(candidates, key=lambda p: (keys[p] in known, n[p], keys[p]))
            status[pick] = SECONDARY
            changed = True


def published_keys(protected: pd.DataFrame) -> frozenset[str]:
    return frozenset(protected.loc[protected["status"] == PUBLISHED, "key"])


def published_figures(protected: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """Key → published figures (n, value, q1, median, q3), stored with a release."""
    shown = protected[protected["status"] == PUBLISHED]
    columns = ("n", "value", "q1", "median", "q3")
    values = shown[list(columns)].astype(float).to_numpy()
    return {
        key: {c: (None if math.isnan(v) else float(v)) for c, v in zip(columns, row, strict=True)}
        for key, row in zip(shown["key"].tolist(), values.tolist(), strict=True)
    }


def make_release(
    bodies: pd.DataFrame,
    roles: pd.DataFrame | None,
    protected: pd.DataFrame,
    snapshot: Mapping[str, Mapping[str, Any]] | None = None,
) -> Release:
    """The record of an export, to store and pass to the next :func:`protect`."""
    if snapshot is None:
        snapshot = snapshot_from_frames(bodies, roles)
    return Release(snapshot, published_keys(protected))
