"""Contacts: the people a body writes to. Creation, lookup by address, names, custom fields.

A contact is one normalised address per body (see ``contacts.emails``), with names and
free custom field values (``quartier``, ``commune``…). List membership is not here: it is
the consent ledger's projection (``contacts.consent``). Fields that the law or the ledger
own (status, consent, organisation) are never changed through :func:`update_contact`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import Select, func, or_, select, text

from contacts.db import DomainError, db, get_scoped, scoped
from contacts.emails import InvalidEmail, clean_email_text, normalise_email, validate_email
from contacts.models import Contact, ContactStatus, Subscription

NAME_MAX = 200
FIELD_MAX = 1000
MAX_FIELDS = 50
FIELD_KEY_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060\ufeff]")


def clean_text(value: Any, cap: int) -> str:
    """One line of plain text: control characters dropped, spaces collapsed, capped."""
    text = "" if value is None else str(value)
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text[:cap].rstrip()


def clean_fields(values: Any, allowed: list[str] | None = None) -> dict[str, str]:
    """Custom field values as ``{key: text}``; keys outside ``allowed`` (when given) dropped."""
    if not isinstance(values, dict):
        return {}
    out: dict[str, str] = {}
    for key, value in values.items():
        key = str(key)
        if allowed is not None and key not in allowed:
            continue
        if not FIELD_KEY_RE.match(key) and allowed is None:
            continue
        out[key] = clean_text(value, FIELD_MAX)
        if len(out) >= MAX_FIELDS:
            break
    return out


def checked_email(value: str) -> str:
    """The normalised address, or a DomainError with the reason in French."""
    try:
        return validate_email(clean_email_text(str(value or "")))
    except InvalidEmail as exc:
        raise DomainError("invalid_email", exc.reason) from None


def get_contact(org_id: int, contact_id: int) -> Contact | None:
    return get_scoped(Contact, org_id, contact_id)


def find_contact(org_id: int, email: str) -> Contact | None:
    """The body's contact with this address (any case, spacing, IDN form), or None."""
    if not email:
        return None
    return db.session.scalars(
        scoped(Contact, org_id).where(Contact.email == normalise_email(str(email)))
    ).first()


def create_contact(
    org_id: int,
    email: str,
    *,
    secret: str | bytes,
    first_name: str = "",
    last_name: str = "",
    fields: dict[str, Any] | None = None,
) -> Contact:
    """A new contact; its status reflects the suppression list (``secret``: the app secret).

    Raises ``invalid_email`` (400) or ``exists`` (409).
    """
    from contacts import suppression

    address = checked_email(email)
    if find_contact(org_id, address) is not None:
        raise DomainError("exists", "Ce contact existe déjà.", status=409)
    contact = Contact(
        organisation_id=org_id,
        email=address,
        first_name=clean_text(first_name, NAME_MAX),
        last_name=clean_text(last_name, NAME_MAX),
        fields=clean_fields(fields or {}),
        status=ContactStatus.ACTIVE,
    )
    blocked = suppression.get_suppression(org_id, address, secret)
    if blocked is not None:
        suppression.mark_contact(contact, blocked.reason)
    db.session.add(contact)
    db.session.flush()
    return contact


def get_or_create_contact(
    org_id: int,
    email: str,
    *,
    secret: str | bytes,
    first_name: str = "",
    last_name: str = "",
    fields: dict[str, Any] | None = None,
) -> tuple[Contact, bool]:
    """The contact with this address, created if missing; empty names are filled in."""
    address = checked_email(email)
    contact = find_contact(org_id, address)
    if contact is None:
        return (
            create_contact(
                org_id,
                address,
                secret=secret,
                first_name=first_name,
                last_name=last_name,
                fields=fields,
            ),
            True,
        )
    if contact.status == ContactStatus.ERASED:
        raise DomainError("erased", "Ce contact a été effacé.", status=409)
    if first_name and not contact.first_name:
        contact.first_name = clean_text(first_name, NAME_MAX)
    if last_name and not contact.last_name:
        contact.last_name = clean_text(last_name, NAME_MAX)
    if fields:
        merged = dict(contact.fields or {})
        for key, value in clean_fields(fields).items():
            if value and not merged.get(key):
                merged[key] = value
        contact.fields = merged
    return contact, False


def bulk_create_contacts(
    org_id: int, rows: list[dict[str, Any]], executor: Any = None
) -> dict[str, int]:
    """Insert new contacts in bulk; returns ``{email: id}`` for all of them.

    ``rows`` hold already normalised ``email``, cleaned ``first_name``, ``last_name`` and
    ``fields``, for addresses checked absent and not suppressed. An address inserted
    meanwhile by another request is skipped by ``ON CONFLICT DO NOTHING`` and looked up.
    ``executor`` is the session (default) or a Connection (the import's writer thread).
    """
    if not rows:
        return {}
    from contacts.db import utcnow

    executor = executor if executor is not None else db.session
    now = utcnow()
    if dialect_of(executor) == "postgresql":
        return _pg_bulk_create(executor, org_id, rows, now)
    values = [
        {
            "organisation_id": org_id,
            "email": r["email"],
            "first_name": r.get("first_name", ""),
            "last_name": r.get("last_name", ""),
            "fields": r.get("fields") or {},
            "status": ContactStatus.ACTIVE,
            "created_at": now,
        }
        for r in rows
    ]
    table = Contact.__table__
    if dialect_of(executor) == "sqlite":
        from sqlalchemy.dialects.sqlite import insert

        stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["organisation_id", "email"])
            .returning(table.c.id, table.c.email)
        )
        found = {email: cid for cid, email in executor.execute(stmt, values)}
    else:
        executor.execute(table.insert(), values)
        found = {}
    missing = [r["email"] for r in rows if r["email"] not in found]
    if missing:
        found.update(ids_by_email(org_id, missing, executor))
    return found


# PostgreSQL: the rows go in by COPY into a temporary table, then one INSERT ... SELECT.
# psycopg formats COPY rows in C, and the statement text is small and constant, instead
# of a 7,000-placeholder VALUES list to render and parse per chunk (or Python-dumped
# arrays): see bench/reports/import.md.
_PG_CONTACT_ROWS = "crieur_import_contacts"
_PG_INSERT_CONTACTS = text(
    f"""
    INSERT INTO contacts (organisation_id, email, first_name, last_name, fields, status,
                          created_at)
    SELECT :org_id, t.email, t.first_name, t.last_name, CAST(t.fields AS json), :status,
           :created_at
    FROM {_PG_CONTACT_ROWS} AS t
    ON CONFLICT (organisation_id, email) DO NOTHING
    RETURNING id, email
    """
)


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


def _pg_bulk_create(
    executor: Any, org_id: int, rows: list[dict[str, Any]], now: Any
) -> dict[str, int]:
    pg_copy_rows(
        executor,
        _PG_CONTACT_ROWS,
        "email text, first_name text, last_name text, fields text",
        [
            (
                r["email"],
                r.get("first_name", ""),
                r.get("last_name", ""),
                json.dumps(r.get("fields") or {}, ensure_ascii=False),
            )
            for r in rows
        ],
    )
    result = executor.execute(
        _PG_INSERT_CONTACTS,
        {"org_id": org_id, "status": str(ContactStatus.ACTIVE), "created_at": now},
    )
    found = {email: cid for cid, email in result}
    missing = [r["email"] for r in rows if r["email"] not in found]
    if missing:
        found.update(ids_by_email(org_id, missing, executor))
    return found


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


def contact_ids_by_email(org_id: int, emails: list[str]) -> dict[str, tuple[int, str]]:
    """``{email: (id, status)}`` for those of ``emails`` the body already has."""
    if not emails:
        return {}
    if dialect_name() == "postgresql":
        rows = pg_any_lookup(
            db.session,
            "SELECT email, id, status FROM contacts WHERE organisation_id = %s AND email = ANY(%s)",
            org_id,
            emails,
        )
    else:
        rows = []
        for i in range(0, len(emails), 1000):
            rows += db.session.execute(
                select(Contact.email, Contact.id, Contact.status).where(
                    Contact.organisation_id == org_id, Contact.email.in_(emails[i : i + 1000])
                )
            ).all()
    return {email: (cid, status) for email, cid, status in rows}


def dialect_name() -> str:
    return dialect_of(db.session)


def ids_by_email(org_id: int, emails: list[str], executor: Any = None) -> dict[str, int]:
    executor = executor if executor is not None else db.session
    found: dict[str, int] = {}
    for i in range(0, len(emails), 1000):
        part = emails[i : i + 1000]
        rows = executor.execute(
            select(Contact.id, Contact.email).where(
                Contact.organisation_id == org_id, one_of(Contact.email, part)
            )
        )
        found.update({email: cid for cid, email in rows})
    return found


EDITABLE = ("first_name", "last_name", "fields")


def update_contact(
    org_id: int, contact_id: int, values: dict[str, Any], allowed_fields: list[str] | None = None
) -> Contact:
    """Change names and custom fields; anything else in ``values`` is ignored on purpose.

    Status, consent, suppression and organisation are the ledger's and the law's: a
    ``PUT`` carrying ``organisation_id`` or ``suppressed=false`` changes nothing of them.
    """
    contact = get_contact(org_id, contact_id)
    if contact is None:
        raise DomainError("not_found", "Contact introuvable.", status=404)
    if contact.status == ContactStatus.ERASED:
        raise DomainError("erased", "Ce contact a été effacé.", status=409)
    if "first_name" in values:
        contact.first_name = clean_text(values["first_name"], NAME_MAX)
    if "last_name" in values:
        contact.last_name = clean_text(values["last_name"], NAME_MAX)
    if "fields" in values:
        if not isinstance(values["fields"], dict):
            raise DomainError("invalid_fields", "Les champs personnalisés doivent être un objet.")
        merged = dict(contact.fields or {})
        for key, value in clean_fields(values["fields"], allowed_fields).items():
            if value:
                merged[key] = value
            else:
                merged.pop(key, None)
        contact.fields = merged
    db.session.flush()
    return contact


def search_query(
    org_id: int,
    *,
    q: str = "",
    list_id: int | None = None,
    status: str | None = None,
) -> Select[tuple[Contact]]:
    """Contacts matching a free-text search (address or names), optionally one list."""
    query = scoped(Contact, org_id)
    q = clean_text(q, 200).lower()
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                Contact.email.like(pattern, escape="\\"),
                func.lower(Contact.first_name).like(pattern, escape="\\"),
                func.lower(Contact.last_name).like(pattern, escape="\\"),
            )
        )
    if list_id is not None:
        query = query.where(
            Contact.id.in_(
                select(Subscription.contact_id).where(
                    Subscription.organisation_id == org_id, Subscription.list_id == list_id
                )
            )
        )
    if status:
        query = query.where(Contact.status == status)
    return query.order_by(Contact.id.desc())


def search_contacts(
    org_id: int,
    *,
    q: str = "",
    list_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Contact]:
    query = search_query(org_id, q=q, list_id=list_id, status=status)
    return list(db.session.scalars(query.limit(limit).offset(offset)))


def contact_as_dict(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "fields": contact.fields or {},
        "status": contact.status,
        "created_at": contact.created_at.isoformat() if contact.created_at else None,
        "last_activity_at": contact.last_activity_at.isoformat()
        if contact.last_activity_at
        else None,
    }
