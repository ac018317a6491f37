"""Writing one planned chunk of an import: the general statements, and PostgreSQL's COPY.

:func:`write_chunk` creates the chunk's contacts then grants them all on the list, through
``bulk_contacts.bulk_create_contacts`` and ``consent_bulk.bulk_grant`` (any backend, session or
connection). On PostgreSQL the writer thread uses :func:`pg_write` instead: one COPY into
a temporary table and one statement (data-modifying CTEs) for contacts, subscriptions,
ledger rows and the batch's progress.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text, update

from contacts import bulk_contacts, consent, consent_bulk
from contacts.chunk_planning import ChunkJob, ImportTarget
from contacts.db import utcnow
from contacts.models import ConsentAction, ContactStatus, ImportBatch, SubscriptionStatus


def write_chunk(executor: Any, target: ImportTarget, job: ChunkJob) -> int:
    """Create the chunk's contacts, then grant them all on the list; returns the count."""
    created = bulk_contacts.bulk_create_contacts(target.org_id, job.new_rows, executor)
    grants = job.existing_grants + [
        (created[email], evidence)
        for email, evidence in job.new_evidence.items()
        if email in created
    ]
    imported = consent_bulk.bulk_grant(
        target.org_id,
        target,  # type: ignore[arg-type]  # has .id and .purpose
        grants,
        source=target.source,
        legal_basis=target.legal_basis,
        import_batch_id=target.batch_id,
        actor_user_id=target.uploaded_by_id,
        api_token_id=target.api_token_id,
        executor=executor,
    )
    return imported


def progress_update(target: ImportTarget, job: ChunkJob, imported: int) -> Any:
    return (
        update(ImportBatch)
        .where(ImportBatch.id == target.batch_id)
        .values(
            processed_rows=job.processed,
            imported=imported,
            duplicates=job.duplicates,
            heartbeat_at=utcnow(),
        )
    )


# PostgreSQL writer: one COPY and one statement per chunk (bench/reports/import.md).
# Every row of the chunk (new addresses, and existing contacts to put on the list) goes
# into one temporary table; one statement then inserts the contacts, their subscriptions
# and the ledger rows (data-modifying CTEs: the foreign-key checks run at the end of the
# statement and see the contacts it inserted). Compared with the general
# ``bulk_contacts.bulk_create_contacts`` + ``consent_bulk.bulk_grant`` pair this saves, per chunk, a
# second COPY, the temporary tables' existence checks and DELETEs, the 5,000 (id, email)
# rows returned to Python and the grants built from them, and the evidence JSON dumped
# per row (PostgreSQL writes ``{"row": n}`` itself, the same text as ``json.dumps``).
_PG_ROWS = "crieur_import_rows"
_PG_ROWS_COLUMNS = "contact_id, row_no, email, first_name, last_name, fields"
_PG_WRITE = text(
    f"""
    WITH new AS (
        INSERT INTO contacts (organisation_id, email, first_name, last_name, fields, status,
                              created_at)
        SELECT :org_id, t.email, t.first_name, t.last_name, CAST(t.fields AS json),
               :contact_status, :at
        FROM {_PG_ROWS} AS t
        WHERE t.contact_id IS NULL
        ON CONFLICT (organisation_id, email) DO NOTHING
        RETURNING id, email
    ), granted AS (
        SELECT new.id AS contact_id, t.row_no
        FROM new JOIN {_PG_ROWS} AS t ON t.email = new.email AND t.contact_id IS NULL
        UNION ALL
        SELECT t.contact_id, t.row_no FROM {_PG_ROWS} AS t WHERE t.contact_id IS NOT NULL
    ), subscribed AS (
        INSERT INTO subscriptions (organisation_id, list_id, contact_id, status, source,
                                   legal_basis, is_risky, tracking_consent, created_at)
        SELECT :org_id, :list_id, g.contact_id, :status, :source, :legal_basis, :is_risky,
               false, :at
        FROM granted AS g
        ON CONFLICT (list_id, contact_id) DO NOTHING
        RETURNING contact_id
    ), ledger AS (
        INSERT INTO consent_events (organisation_id, contact_id, list_id, purpose, action,
                                    legal_basis, source, evidence, actor_user_id,
                                    import_batch_id, api_token_id, created_at)
        SELECT :org_id, s.contact_id, :list_id, :purpose, :action, :legal_basis, :source,
               CAST('{{"row": ' || g.row_no || '}}' AS json), :actor_user_id,
               :import_batch_id, :api_token_id, :at
        FROM subscribed AS s JOIN granted AS g ON g.contact_id = s.contact_id
        RETURNING 1
    ), progress AS (
        UPDATE import_batches
        SET processed_rows = :processed, duplicates = :duplicates, heartbeat_at = :at,
            imported = :imported_before + (SELECT count(*) FROM ledger)
        WHERE id = :import_batch_id
    )
    SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM ledger),
           set_config('synchronous_commit', 'off', true)
    """
)
# New addresses another request inserted meanwhile (skipped by ON CONFLICT above): the
# general path found them by address and granted them; so does this one.
_PG_RACED = text(
    f"""
    SELECT c.id, t.row_no
    FROM {_PG_ROWS} AS t
    JOIN contacts AS c ON c.organisation_id = :org_id AND c.email = t.email
    WHERE t.contact_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM subscriptions AS s
                      WHERE s.list_id = :list_id AND s.contact_id = c.id)
    """
)


def pg_prepare(conn: Any, target: ImportTarget) -> None:
    """Check the grant's values once and create the writer connection's temporary table.

    ``ON COMMIT DELETE ROWS`` empties it at each chunk's commit; created once per import
    (a pooled connection may already have it), not checked and emptied per chunk.
    """
    consent.check_source(target.source)
    consent.check_legal_basis(target.legal_basis)
    conn.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_PG_ROWS} (contact_id integer, row_no integer, "
            "email text, first_name text, last_name text, fields text) ON COMMIT DELETE ROWS"
        )
    )
    conn.commit()


try:  # psycopg's own COPY row formatter (C); private, hence the fallback below
    from psycopg._copy_base import format_row_text as _format_row
    from psycopg.adapt import Transformer as _Transformer
except ImportError:  # pragma: no cover - another psycopg layout
    _format_row = None

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def pg_payload(job: ChunkJob) -> bytes:
    """The chunk's rows as COPY text (``_PG_ROWS_COLUMNS``), ready to send in one write.

    Built by the reading thread (:meth:`ThreadWriter.submit`): formatting 5,000 rows in
    the writer thread made it queue for the GIL the reader holds, row after row (about
    2.5 s per 100,000 rows); one ``bytes`` written at once does not.
    """
    dumps = json.dumps
    rows: list[tuple[Any, ...]] = [
        (
            None,
            job.new_evidence[r["email"]]["row"],
            r["email"],
            r["first_name"],
            r["last_name"],
            dumps(r["fields"], ensure_ascii=False),
        )
        for r in job.new_rows
    ]
    rows += [(cid, ev["row"], None, None, None, None) for cid, ev in job.existing_grants]
    if _format_row is not None:
        out = bytearray()
        tx = _Transformer()
        for row in rows:
            _format_row(row, tx, out)
        return bytes(out)
    return "".join(
        "\t".join("\\N" if v is None else str(v).translate(_COPY_ESCAPES) for v in row) + "\n"
        for row in rows
    ).encode()


def pg_write(conn: Any, target: ImportTarget, job: ChunkJob, imported_before: int) -> int:
    """:func:`write_chunk` and the progress update for PostgreSQL, in one COPY and one
    statement; returns the import's count so far (``imported_before`` + this chunk's)."""
    if not job.new_rows and not job.existing_grants:
        conn.execute(progress_update(target, job, imported_before))
        return imported_before
    # The statement also sets synchronous_commit off for its transaction (SET LOCAL): the
    # commit then does not wait for its WAL flush. A server crash can lose only the last
    # chunks acknowledged before it, each one whole with its progress counter (a chunk's
    # rows and ``processed_rows`` commit together), so the database stays consistent;
    # the batch, left unfinished, is re-run from its file, where addresses already
    # written count as duplicates. Nothing else waits on these rows being durable.
    raw = conn.connection.driver_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {_PG_ROWS} ({_PG_ROWS_COLUMNS}) FROM STDIN") as copy,
    ):
        copy.write(job.payload if job.payload is not None else pg_payload(job))
    risky = consent.is_risky(target.source)
    at = utcnow()
    values = {
        "org_id": target.org_id,
        "list_id": target.id,
        "contact_status": str(ContactStatus.ACTIVE),
        "status": str(SubscriptionStatus.PENDING if risky else SubscriptionStatus.ACTIVE),
        "source": target.source,
        "legal_basis": target.legal_basis,
        "is_risky": risky,
        "purpose": target.purpose,
        "action": str(ConsentAction.GRANT),
        "actor_user_id": target.uploaded_by_id,
        "import_batch_id": target.batch_id,
        "api_token_id": target.api_token_id,
        "at": at,
        "processed": job.processed,
        "duplicates": job.duplicates,
        "imported_before": imported_before,
    }
    created, imported, _ = conn.execute(_PG_WRITE, values).one()
    imported += imported_before
    if created < len(job.new_rows):
        raced = conn.execute(_PG_RACED, {"org_id": target.org_id, "list_id": target.id})
        imported += write_chunk(
            conn, target, ChunkJob([], {}, [(cid, {"row": n}) for cid, n in raced], 0, 0)
        )
        conn.execute(progress_update(target, job, imported))
    return imported
