"""Where SQLite and PostgreSQL differ for bulk work: the dialect, lookups, COPY.

Imports write and look up thousands of rows per statement; these helpers take the
session (default) or a Connection (the import's writer thread) as ``executor``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from contacts.db import db


def dialect_of(executor: Any) -> str:
    bind = executor.get_bind() if hasattr(executor, "get_bind") else executor
    return bind.dialect.name


def pg_copy_rows(executor: Any, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    """Empty the connection's temporary ``table`` (created on first use), COPY ``rows`` in.

    ``columns`` is the table's column list with types, e.g. ``"email text, n integer"``.
    The table lives in the executor's own connection and transaction, so the INSERT that
    reads it sees exactly these rows; ON COMMIT DELETE ROWS empties it at each commit.
    """
    # to_regclass, not CREATE ... IF NOT EXISTS, and DELETE, not TRUNCATE: both of those
    # write the catalogue at every call, which cost more than the COPY itself.
    found = executor.execute(text("SELECT to_regclass(:t)"), {"t": "pg_temp." + table})
    if found.scalar() is None:
        executor.execute(text(f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DELETE ROWS"))
    else:
        executor.execute(text(f"DELETE FROM {table}"))
    connection = executor.connection() if hasattr(executor, "get_bind") else executor
    raw = connection.connection.driver_connection
    names = ", ".join(c.split()[0] for c in columns.split(","))
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def one_of(column: Any, values: list[Any]) -> Any:
    """``column IN (values)`` (SQLite and small lookups; PostgreSQL imports use
    :func:`pg_any_lookup`)."""
    return column.in_(values)


def pg_any_lookup(executor: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run ``sql`` (psycopg ``%s`` placeholders, an array among them) unprepared.

    Imports look up 1,000 addresses per query. An IN list costs 1,000 bind parameters to
    render and parse per query; ``= ANY(%s)`` with one array is cheap, but only while
    PostgreSQL plans it with the array's value: a prepared statement's generic plan
    compares each row with the whole array in turn (no hashing), which made an import
    5x slower. ``prepare=False`` keeps every execution a custom plan.
    """
    connection = executor.connection() if hasattr(executor, "get_bind") else executor
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute(sql, params, prepare=False)
        return cursor.fetchall()


def dialect_name() -> str:
    return dialect_of(db.session)
