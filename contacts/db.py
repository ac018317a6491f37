"""The shared kernel: the SQLAlchemy handle, the declarative base and tenant scoping.

Everything in Crieur belongs to a body (an organisation). Rows carry ``organisation_id``
through :class:`OrgScoped`, and every query of a body's data goes through :func:`scoped`
so that forgetting the tenant filter is not an option.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from typing import Any, TypeVar

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, ForeignKey, MetaData, Select, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, registry
from sqlalchemy.types import TypeDecorator

from contacts.i18n import Message

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Aware UTC now; every ``*_at`` column holds aware UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime on every backend.

    SQLite drops the offset; this type stores UTC and hands back aware values, so code
    never compares naive and aware datetimes depending on the database in use.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={dt.datetime: UTCDateTime()},
    )


db = SQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite as a real database for the embedded mode.

    WAL lets the in-process worker write while pages read; busy_timeout makes a writer
    wait for the lock instead of failing at once; foreign keys are off by default in
    SQLite, and the schema's ON DELETE rules rely on them.
    """
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class OrgScoped:
    """Mixin for every row that belongs to a body."""

    @declared_attr
    def organisation_id(cls) -> Mapped[int]:  # noqa: N805
        return mapped_column(
            ForeignKey("organisations.id", ondelete="CASCADE"), index=True, nullable=False
        )


M = TypeVar("M")


def scoped(model: type[M], org_id: int) -> Select[tuple[M]]:
    """``select(model)`` restricted to one body: the one way to query a body's data."""
    if not hasattr(model, "organisation_id"):
        raise TypeError(f"{model.__name__} is not scoped to a body")
    return select(model).where(model.organisation_id == org_id)  # type: ignore[attr-defined]


def get_scoped(model: type[M], org_id: int, obj_id: int) -> M | None:
    """One row of ``model`` by id, or None when it does not exist or belongs to another body."""
    try:
        obj_id = int(obj_id)
    except (TypeError, ValueError):
        return None
    return db.session.scalars(scoped(model, org_id).where(model.id == obj_id)).first()  # type: ignore[attr-defined]


class DomainError(Exception):
    """A refusal with a stable code; ``webapp.errors`` turns it into a 4xx response.

    ``status`` is a hint for the HTTP edge (400 bad input, 403 forbidden, 404 not found,
    409 conflict); the domain packages never import anything HTTP.

    ``message`` is a literal French message id (extracted for the catalogue with the
    ``DomainError:2`` keyword); variable parts go in ``params`` as ``%(name)s`` placeholders,
    never in an f-string, so that the edge can translate the id and then fill it in
    (``webapp.i18n.error_text``); a ``contacts.i18n.Message`` may stand for both. ``msgid``
    and ``params`` keep those two parts; ``message`` and ``str(exc)`` are the filled-in
    French text, for logs and the CLI.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        params: Mapping[str, Any] | None = None,
        **details: Any,
    ) -> None:
        if params is None and isinstance(message, Message):
            message, params = message.msgid, message.params
        self.msgid = message
        self.params = dict(params or {})
        if self.params:
            message = message % self.params
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details
