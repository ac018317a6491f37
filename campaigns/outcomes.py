"""Outcomes of claimed rows: the in-flight flag before the relay, and what its answer wrote.

Steps 3 and 4 of :mod:`campaigns.delivery`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Interval, bindparam, case, func, update

from campaigns.dbclock import is_postgres, now_expr
from campaigns.delivery import D, T
from contacts.db import UTCDateTime, db, utcnow


def mark_in_flight(ids: Iterable[int]) -> None:
    """Flag rows about to be sent (:mod:`campaigns.delivery`, point 3); caller commits."""
    ids = list(ids)
    if ids:
        db.session.execute(
            update(T)
            .where(T.c.id.in_(ids), T.c.status == D.SENDING)
            .values(possible_duplicate=True)
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to write for one claimed row.

    ``status``: ``sent``, ``deferred``, ``failed``, ``unknown``, ``skipped``, ``cancelled``,
    or ``release`` (hand it back untouched: paused, stopping, relay down, quota).
    ``delay``: seconds before it may be retried (deferred, release).
    """

    id: int
    status: str
    was_duplicate: bool
    error: str = ""
    delay: float | None = None
    message_id: str = ""


def write_outcomes(outcomes: Sequence[Outcome]) -> None:
    """Write outcomes (one executemany per kind); the caller commits.

    Each UPDATE only touches rows still ``sending``: a row the reconciler took back
    after a lease expiry is not overwritten.
    """
    if not outcomes:
        return
    pg = is_postgres()
    now = now_expr()
    by_kind: dict[str, list[Outcome]] = {}
    for item in outcomes:
        by_kind.setdefault(item.status, []).append(item)
    base = update(T).where(T.c.id == bindparam("b_id"), T.c.status == D.SENDING)
    for kind, items in by_kind.items():
        params: list[dict[str, Any]] = [{"b_id": o.id, "b_dup": o.was_duplicate} for o in items]
        if kind != "release":
            for p, o in zip(params, items, strict=True):
                p["b_err"] = o.error[:2000]
                p["b_mid"] = o.message_id
        values: dict[str, Any] = {"possible_duplicate": bindparam("b_dup")}
        if kind in (D.SENT, D.UNKNOWN):
            values.update(status=kind, sent_at=now)
        elif kind in (D.FAILED, D.SKIPPED, D.CANCELLED):
            values.update(status=kind)
        elif kind == D.DEFERRED:
            values.update(status=kind, next_attempt_at=_next_at_expr(pg))
            _with_next_at(params, items, pg)
        elif kind == "release":  # as it was before the claim: the attempt did not happen
            values.update(
                status=case((T.c.attempts > 1, D.DEFERRED), else_=D.QUEUED),
                attempts=T.c.attempts - 1,
                next_attempt_at=_next_at_expr(pg),
            )
            _with_next_at(params, items, pg)
        else:
            raise ValueError(f"unknown outcome {kind!r}")
        if kind != "release":
            values.update(last_error=bindparam("b_err"), message_id=bindparam("b_mid"))
        db.session.execute(base.values(**values), params)


def _with_next_at(params: list[dict], items: Sequence[Outcome], pg: bool) -> None:
    if pg:
        for p, o in zip(params, items, strict=True):
            p["b_delay"] = dt.timedelta(seconds=o.delay or 0.0)
    else:
        now = utcnow()
        for p, o in zip(params, items, strict=True):
            p["b_next"] = now + dt.timedelta(seconds=o.delay or 0.0)


def _next_at_expr(pg: bool) -> ColumnElement[dt.datetime]:
    if pg:
        return func.now() + bindparam("b_delay", type_=Interval())
    return bindparam("b_next", type_=UTCDateTime())
