"""The database clock: ``now()`` as SQL and as a value, on PostgreSQL and SQLite alike.

Times that decide who may take a delivery row (leases, due retries, the hourly window)
come from the database clock (``now()``), so a worker whose clock jumps cannot steal or
strand rows (:mod:`campaigns.delivery`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, Interval, func, literal, select

from contacts.db import UTCDateTime, db, utcnow


def is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def now_expr() -> ColumnElement[dt.datetime]:
    """The database's ``now()`` (PostgreSQL); on SQLite, the one process's clock."""
    if is_postgres():
        return func.now()
    return literal(utcnow(), UTCDateTime())


def later_expr(seconds: float) -> ColumnElement[dt.datetime]:
    """``now() + seconds`` on the database clock."""
    delta = dt.timedelta(seconds=seconds)
    if is_postgres():
        return func.now() + literal(delta, Interval())
    return literal(utcnow() + delta, UTCDateTime())


def db_now() -> dt.datetime:
    """The database clock as an aware datetime (one round trip on PostgreSQL)."""
    if is_postgres():
        value = db.session.scalar(select(func.now()))
        return value.astimezone(dt.UTC)
    return utcnow()
