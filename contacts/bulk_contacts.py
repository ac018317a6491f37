"""Contacts in bulk, for imports: many new contacts in one statement, ids by address.

``rows`` and addresses are already normalised and checked (``contacts.import_reader``,
``contacts.chunk_planning``): nothing here validates, it only writes and looks up fast.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, text

from contacts.db import db, utcnow
from contacts.dialect import dialect_name, dialect_of, one_of, pg_any_lookup, pg_copy_rows
from contacts.models import Contact, ContactStatus


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
