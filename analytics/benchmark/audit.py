"""Linear audit of published benchmark cells: can any body's answer be derived?

Step 4 of :mod:`analytics.benchmark.anonymise`. Per indicator, every published
body-level cell (from this release and from earlier ones) is a known sum over bodies'
values; a body whose value changed since an earlier release counts as a new unknown. A
single body's value, or a secret cell, is derivable when its 0/1 vector lies in the row
space of the known sums; the row space is computed from the small Gram matrix (cells ×
cells), so the cost stays in milliseconds per indicator for 1,000 bodies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics.benchmark.aggregate import ALL

BODY_DIMS = ("kind", "band", "region")
_TOL = 1e-7


def single_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for the audit's many small matrices.

    Threaded OpenBLAS on a busy machine makes a 75×75 eigendecomposition 50× slower;
    ``threadpoolctl`` (optional) turns threading off for the duration.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - works without it, only slower
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


class FrameIndex:
    """Row positions of a bodies frame per body-level cell, computed once per frame."""

    def __init__(self, frame: pd.DataFrame, tables: Sequence[Sequence[str]]) -> None:
        self.frame = frame
        self.bodies = frame["body"].astype(str).to_numpy() if not frame.empty else np.array([])
        self.cells: dict[tuple[str, str, str], np.ndarray] = {}
        if frame.empty:
            return
        for dims in tables:
            if "role" in dims:
                continue
            if not dims:
                self.cells[(ALL, ALL, ALL)] = np.arange(len(frame))
                continue
            for values, rows in frame.groupby(list(dims), sort=False).indices.items():
                values = values if isinstance(values, tuple) else (values,)
                named = dict(zip(dims, values, strict=True))
                self.cells[tuple(named.get(d, ALL) for d in BODY_DIMS)] = np.asarray(rows)

    def values(self, indicator: str) -> np.ndarray:
        if indicator not in self.frame:
            return np.full(len(self.frame), np.nan)
        return np.round(self.frame[indicator].to_numpy(dtype=float), 6)


class Audit:
    """Linear audit of one indicator's body-level cells (see step 4 in the module doc).

    Unknowns (columns) are the current bodies' values, plus one per body whose value in
    an earlier release differs from today's. Known sums (rows) are the published cells.
    """

    def __init__(
        self,
        indicator: str,
        positions: list[int],
        coords: list[tuple[str, ...]],
        current: FrameIndex,
        priors: list[tuple[FrameIndex, np.ndarray, Mapping[str, list[tuple[str, str, str]]]]],
    ) -> None:
        values = current.values(indicator)
        present = ~np.isnan(values)
        self.width = len(values)
        self.positions = [p for p, c in zip(positions, coords, strict=True) if c[3] == ALL]
        self.members: dict[int, np.ndarray] = {}
        empty = np.array([], dtype=int)
        for p, c in zip(positions, coords, strict=True):
            if c[3] == ALL:
                rows = current.cells.get(c[:3], empty)
                self.members[p] = rows[present[rows]]
        self.current_cols = self.width
        prior_rows: dict[bytes, np.ndarray] = {}
        for prior, to_current, published in priors:
            old = prior.values(indicator)
            cols = np.full(len(old), -1, dtype=int)
            mapped = to_current >= 0
            same = np.zeros(len(old), dtype=bool)
            same[mapped] = np.abs(values[to_current[mapped]] - old[mapped]) < 1e-6
            cols[same] = to_current[same]
            changed = np.nonzero(~same & ~np.isnan(old))[0]
            cols[changed] = np.arange(self.width, self.width + len(changed))
            self.width += len(changed)
            for cell in published.get(indicator, ()):
                rows = prior.cells.get(cell, empty)
                rows = rows[~np.isnan(old[rows])]
                row = np.sort(cols[rows])
                prior_rows.setdefault(row.tobytes(), row)
        self.prior_rows = list(prior_rows.values())
        self._baseline: set[int] | None = None

    def _basis(self, rows: list[np.ndarray]) -> np.ndarray:
        unique = list({r.tobytes(): r for r in rows if len(r)}.values())
        if not unique or self.width == 0:
            return np.zeros((0, self.width))
        matrix = np.zeros((len(unique), self.width))
        for i, cols in enumerate(unique):
            matrix[i, cols] = 1.0
        w, u = np.linalg.eigh(matrix @ matrix.T)
        keep = w > _TOL * max(1.0, float(w.max(initial=0.0)))
        return (u[:, keep].T @ matrix) / np.sqrt(w[keep])[:, None]

    @staticmethod
    def _determined(basis: np.ndarray) -> set[int]:
        if basis.size == 0:
            return set()
        diag = (basis**2).sum(axis=0)
        return {int(c) for c in np.nonzero(diag > 1 - 1e-6)[0]}

    def unsafe(
        self,
        published: set[int],
        sensitive: set[int],
        n: np.ndarray,
        relations: list[tuple[int, list[int]]],
    ) -> int | None:
        """A published cell to make secret, or None when nothing can be derived.

        ``published``: positions published now; ``sensitive``: secret positions that must
        stay underivable (primary and differencing secrets).
        """
        if self._baseline is None:
            self._baseline = self._determined(self._basis(self.prior_rows))
        published_now = [p for p in self.positions if p in published]
        basis = self._basis([self.members[p] for p in published_now] + self.prior_rows)
        revealed = self._determined(basis) - self._baseline
        for col in sorted(revealed):
            holders = [p for p in published_now if col in self.members[p]]
            if holders:
                return min(holders, key=lambda p: (n[p], p))
            # Revealed only by combining with an earlier release: find the current cell
            # whose withdrawal breaks the combination, smallest first.
            for q in sorted(published_now, key=lambda p: (n[p], p)):
                rest = [self.members[p] for p in published_now if p != q] + self.prior_rows
                if col not in self._determined(self._basis(rest)):
                    return q
        if basis.size == 0:
            return None
        for p in self.positions:
            if p not in sensitive or len(self.members[p]) == 0:
                continue
            vector = np.zeros(self.width)
            vector[self.members[p]] = 1.0
            projected = basis @ vector
            if float(vector @ vector - projected @ projected) < 1e-6 * float(vector @ vector):
                neighbours = {q for m, parts in relations if p in (m, *parts) for q in (m, *parts)}
                holders = [q for q in published_now if q in neighbours] or [
                    q
                    for q in published_now
                    if np.intersect1d(self.members[q], self.members[p]).size
                ]
                if holders:
                    return min(holders, key=lambda q: (n[q], q))
        return None
