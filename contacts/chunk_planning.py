"""Planning one chunk of an import against the database: what to report, what to write.

For a chunk of validated rows (:class:`~contacts.importfile.RowResult`), one query each
finds the suppressed addresses (by hash), the contacts the body already has and their
subscriptions on the list. A suppressed address is never re-added, a person who left the
list is not put back, an address already on the list counts as a duplicate; existing
contacts get their empty names filled in (ORM, committed by the job). The rest becomes a
:class:`ChunkJob` for the writers (:mod:`contacts.import_writers`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from contacts import bulk_contacts, dialect, suppression
from contacts.db import db
from contacts.import_report import (
    DUPLICATE,
    INVALID,
    ON_LIST_REASON,
    SUPPRESSED,
    SUPPRESSED_REASON,
    WARNING,
    WITHDRAWN,
    report_entry,
)
from contacts.importfile import RowResult, RowStatus
from contacts.lists import field_key
from contacts.models import Contact, ContactStatus, Subscription, SubscriptionStatus, Suppression


@dataclass
class Progress:
    """Counts of the import so far, carried from chunk to chunk."""

    processed: int = 0
    imported: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class ImportTarget:
    """What every write of one import needs, as plain values (the writer has no ORM)."""

    org_id: int
    batch_id: int
    id: int  # the list's id: with ``purpose``, what consent_bulk.bulk_grant reads of a list
    purpose: str
    source: str
    legal_basis: str
    uploaded_by_id: int | None
    api_token_id: int | None


@dataclass
class ChunkJob:
    """One chunk's writes, decided by :func:`plan_chunk` from the database's state."""

    new_rows: list[dict[str, Any]]
    new_evidence: dict[str, dict[str, Any]]  # email of a new contact -> ledger evidence
    existing_grants: list[tuple[int, dict[str, Any]]]
    processed: int
    duplicates: int
    payload: bytes | None = None  # PostgreSQL: the rows as COPY text (``chunk_writing.pg_payload``)


def plan_chunk(
    target: ImportTarget,
    chunk: list[RowResult],
    secret: str | bytes,
    report: list[dict[str, Any]],
    progress: Progress,
) -> ChunkJob:
    """Sort one chunk's rows against the database: report lines, and the writes to do."""
    org_id = target.org_id
    progress.processed += len(chunk)
    ok: list[RowResult] = []
    for r in chunk:
        if r.status is RowStatus.OK:
            ok.append(r)
        elif r.status is RowStatus.DUPLICATE:
            progress.duplicates += 1
            report.append(report_entry(r, DUPLICATE, r.reason))
        else:
            report.append(report_entry(r, INVALID, r.reason))
    job = ChunkJob([], {}, [], progress.processed, progress.duplicates)
    if not ok:
        return job
    blocked = _suppressed_emails(org_id, secret, [r.email for r in ok])
    existing = _existing_contacts(org_id, [r.email for r in ok])
    subs = _subscriptions(org_id, target.id, [c.id for c in existing.values()])
    for r in ok:
        contact = existing.get(r.email)
        if r.email in blocked or (contact is not None and contact.status != ContactStatus.ACTIVE):
            report.append(report_entry(r, SUPPRESSED, SUPPRESSED_REASON))
            continue
        if contact is not None:
            sub = subs.get(contact.id)
            if sub is not None and sub[0] == SubscriptionStatus.WITHDRAWN:
                when = sub[1].strftime("%d/%m/%Y") if sub[1] else ""
                report.append(
                    report_entry(
                        r,
                        WITHDRAWN,
                        f"S'est désinscrit de cette liste{' le ' + when if when else ''} : "
                        "seule une nouvelle inscription de sa part peut l'y remettre",
                    )
                )
                continue
            if sub is not None:
                progress.duplicates += 1
                report.append(report_entry(r, DUPLICATE, ON_LIST_REASON))
                continue
            _fill_in(contact, r)
            job.existing_grants.append((contact.id, {"row": r.row}))
        else:
            job.new_rows.append(
                {
                    "email": r.email,
                    "first_name": r.first_name,
                    "last_name": r.last_name,
                    "fields": _fields(r),
                }
            )
            job.new_evidence[r.email] = {"row": r.row}
        if r.warnings:
            report.append(report_entry(r, WARNING, " ; ".join(r.warnings)))
    job.duplicates = progress.duplicates
    return job


def _fields(r: RowResult) -> dict[str, str]:
    return {field_key(k): v for k, v in r.fields.items() if v and field_key(k)}


def _fill_in(contact: Contact, r: RowResult) -> None:
    """An existing contact keeps its data; the file only fills what is empty."""
    if r.first_name and not contact.first_name:
        contact.first_name = r.first_name
    if r.last_name and not contact.last_name:
        contact.last_name = r.last_name
    extra = _fields(r)
    if extra:
        merged = dict(contact.fields or {})
        changed = False
        for k, v in extra.items():
            if not merged.get(k):
                merged[k] = v
                changed = True
        if changed:
            contact.fields = merged


def _pg_lookup(sql: str, org_id: int, values: list[str]) -> list[tuple[Any, ...]]:
    """Run ``sql`` with ``values`` as one newline-joined text (``string_to_array(%s, E'\\n')``).

    A chunk's 5,000 addresses or hashes as a Python list cost psycopg half a second per
    100,000 to dump as an array literal; joined, they cost one ``str.join``. Normalised
    addresses and hex hashes never contain a newline. Unprepared, so PostgreSQL folds the
    array into the plan (see ``dialect.pg_any_lookup``).
    """
    return dialect.pg_any_lookup(db.session, sql, org_id, "\n".join(values))


def _suppressed_emails(org_id: int, secret: str | bytes, emails: list[str]) -> set[str]:
    """Those of ``emails`` on the body's suppression list.

    A body with no suppression at all (checked per chunk, as the lookup itself is) needs
    no hashing: one indexed ``EXISTS`` instead of 5,000 HMACs and an array lookup.
    """
    if (
        db.session.execute(
            select(Suppression.id).where(Suppression.organisation_id == org_id).limit(1)
        ).first()
        is None
    ):
        return set()
    key = suppression.suppression_key(secret, org_id)
    hashes = {suppression.hash_normalised(key, email): email for email in emails}
    if dialect.dialect_name() == "postgresql":
        found = {
            h
            for (h,) in _pg_lookup(
                "SELECT email_hash FROM suppressions WHERE organisation_id = %s "
                "AND email_hash = ANY(string_to_array(%s, E'\\n'))",
                org_id,
                list(hashes),
            )
        }
    else:
        found = suppression.suppressed_among(org_id, hashes)
    return {hashes[h] for h in found}


def _existing_contacts(org_id: int, emails: list[str]) -> dict[str, Contact]:
    """The contacts the body already has among ``emails`` (ORM objects, to fill names in)."""
    if dialect.dialect_name() == "postgresql":
        ids = [
            cid
            for (cid,) in _pg_lookup(
                "SELECT id FROM contacts WHERE organisation_id = %s "
                "AND email = ANY(string_to_array(%s, E'\\n'))",
                org_id,
                emails,
            )
        ]
    else:
        ids = [cid for cid, _ in bulk_contacts.contact_ids_by_email(org_id, emails).values()]
    if not ids:
        return {}
    return {
        c.email: c
        for c in db.session.scalars(
            select(Contact).where(
                Contact.organisation_id == org_id, dialect.one_of(Contact.id, ids)
            )
        )
    }


def _subscriptions(
    org_id: int, list_id: int, contact_ids: list[int]
) -> dict[int, tuple[str, dt.datetime | None]]:
    if not contact_ids:
        return {}
    rows = db.session.execute(
        select(Subscription.contact_id, Subscription.status, Subscription.withdrawn_at).where(
            Subscription.organisation_id == org_id,
            Subscription.list_id == list_id,
            dialect.one_of(Subscription.contact_id, contact_ids),
        )
    )
    return {cid: (status, at) for cid, status, at in rows}
