"""Imports, database side: the batch record and the job that fills a list from a file.

Reading the file (sniffing, mapping, per-row validation) is ``contacts.importfile`` and
the modules it names; the upload is stored and hashed by ``contacts.uploads`` (SHA-256,
uploader, attestation: the ledger's evidence for every address it brings). The job
claims a pending batch, then streams the reader's rows in chunks:

- ``contacts.chunk_planning``: one query per chunk finds existing contacts, their
  subscriptions on the list and the suppressed addresses (by hash); a suppressed address
  is never re-added, a person who left the list is not put back, and an address already
  on the list counts as a duplicate (report lines: ``contacts.import_report``);
- ``contacts.import_writers``: new contacts, subscriptions and ledger rows are written in
  bulk (``contacts.chunk_writing``; PostgreSQL: COPY into a temporary table then one
  statement, from a writer thread that works on chunk N while chunk N+1 is read; SQLite:
  multi-row INSERTs);
- each chunk is committed with the batch's progress (``processed_rows``), so the progress
  bar moves and SQLite's write lock is released between chunks.

A batch whose worker died (server crash, process killed) would stay ``running`` forever:
the job writes a heartbeat with every chunk, and ``contacts.import_recovery`` (called by
the reconciler) marks a batch whose heartbeat stopped as failed, telling the officer the
file can be imported again safely (addresses already written come out as duplicates).

A file that cannot be read fails before any row is written (the reader checks the whole
CSV first; an XLSX is walked once before the import for the same reason), with one
message in ``ImportBatch.error``. Row problems go to the per-row report and never stop
the import.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import text, update

from contacts import consent, dialect
from contacts.chunk_planning import ImportTarget, Progress, plan_chunk
from contacts.db import DomainError, db, get_scoped, scoped, utcnow
from contacts.import_reader import ImportReader
from contacts.import_report import rejected_for_api
from contacts.import_writers import InlineWriter, ThreadWriter
from contacts.importfile import (
    LIMITS,
    ColumnMapping,
    FileFormat,
    ImportFileError,
    Limits,
    safe_filename,
)
from contacts.lists import field_key
from contacts.models import ImportBatch, MailingList
from contacts.uploads import StoredFile

log = logging.getLogger(__name__)

CHUNK_ROWS = 5000  # rows per transaction: fewer round trips, a progress step per chunk


class ImportStatus:
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def check_import_request(
    org_id: int, list_id: int, source: str, legal_basis: str, attestation: str
) -> tuple[MailingList, str]:
    """Refuse an import request before its file is stored: list, origin, basis, attestation."""
    mlist = get_scoped(MailingList, org_id, list_id)
    if mlist is None:
        raise DomainError("not_found", "Liste introuvable.", status=404)
    consent.check_source(source)
    consent.check_legal_basis(legal_basis)
    if source == "api":
        raise DomainError("invalid_source", "Indiquez d'où vient le fichier.")
    attestation = " ".join(str(attestation or "").split())
    if not attestation:
        raise DomainError(
            "attestation_required",
            "Indiquez d'où vient le fichier et sur quelle base ces personnes ont accepté "
            "de recevoir vos messages.",
        )
    if len(attestation) > 2000:
        raise DomainError("too_long", "Attestation : 2 000 caractères au plus.")
    return mlist, attestation


def create_import(
    org_id: int,
    list_id: int,
    *,
    source: str,
    legal_basis: str,
    attestation: str,
    stored: StoredFile | None,
    filename: str = "",
    uploaded_by_id: int | None = None,
    api_token_id: int | None = None,
    mapping: ColumnMapping | None = None,
    fmt: FileFormat | None = None,
    error: ImportFileError | None = None,
) -> ImportBatch:
    """Record an import of a stored file into a list; the job is enqueued by the caller.

    With ``error`` (the upload itself was refused, e.g. too large) the batch is created
    already ``failed``, so the refusal shows in the import history and the API.
    """
    mlist, attestation = check_import_request(org_id, list_id, source, legal_basis, attestation)
    batch = ImportBatch(
        organisation_id=org_id,
        list_id=mlist.id,
        filename=(stored.filename if stored else safe_filename(filename, "import"))[:255],
        file_path=str(stored.path) if stored else "",
        sha256=stored.sha256 if stored else "",
        uploaded_by_id=uploaded_by_id,
        api_token_id=api_token_id,
        source=source,
        legal_basis=legal_basis,
        attestation=attestation,
        mapping={
            "columns": mapping.to_dict() if mapping else None,
            "format": fmt.to_dict() if fmt else None,
        },
        status=ImportStatus.FAILED if error else ImportStatus.PENDING,
        error=error.message if error else "",
        finished_at=utcnow() if error else None,
    )
    db.session.add(batch)
    db.session.flush()
    return batch


def get_import(org_id: int, batch_id: int) -> ImportBatch | None:
    return get_scoped(ImportBatch, org_id, batch_id)


def list_imports(org_id: int, limit: int = 50, offset: int = 0) -> list[ImportBatch]:
    return list(
        db.session.scalars(
            scoped(ImportBatch, org_id).order_by(ImportBatch.id.desc()).limit(limit).offset(offset)
        )
    )


def imports_by_id(org_id: int, batch_ids: Iterable[int | None]) -> dict[int, ImportBatch]:
    """The body's batches among ``batch_ids`` (a contact's ledger names the ones it came from)."""
    ids = {i for i in batch_ids if i}
    if not ids:
        return {}
    return {
        b.id: b
        for b in db.session.scalars(scoped(ImportBatch, org_id).where(ImportBatch.id.in_(ids)))
    }


def import_as_dict(batch: ImportBatch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "list_id": batch.list_id,
        "status": batch.status,
        "total_rows": batch.total_rows,
        "processed_rows": batch.processed_rows,
        "imported": batch.imported,
        "duplicates": batch.duplicates,
        "rejected": rejected_for_api(batch),
        "error": batch.error or None,
        "filename": batch.filename,
        "sha256": batch.sha256,
        "source": batch.source,
        "legal_basis": batch.legal_basis,
        "created_at": batch.created_at.isoformat() if batch.created_at else None,
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
    }


def process_import(
    org_id: int,
    batch_id: int,
    *,
    secret: str | bytes,
    limits: Limits = LIMITS,
    chunk_rows: int = CHUNK_ROWS,
    parallel: bool | None = None,
) -> ImportBatch | None:
    """Run a pending import to the end; commits per chunk (see the module docstring).

    Only a ``pending`` batch runs: a second delivery of the job message finds it running
    or finished and does nothing. Returns the batch, or None when there is nothing to do.
    ``parallel`` (default: on PostgreSQL) writes each chunk from a second thread and
    connection while the next one is read and validated (``import_writers.ThreadWriter``).
    """
    if not _claim(org_id, batch_id):
        return None
    batch = get_import(org_id, batch_id)
    report: list[dict[str, Any]] = []
    progress = Progress()
    writer: InlineWriter | ThreadWriter | None = None
    try:
        mlist = db.session.get(MailingList, batch.list_id)
        if mlist is None or mlist.organisation_id != org_id:
            raise ImportFileError("list_gone", "La liste a été supprimée.")
        reader = _open_reader(batch, mlist, limits)
        if reader.format.kind == "xlsx":
            # Walk the workbook once before writing anything: a sheet whose declared
            # size lies, or whose XML breaks halfway, then fails with nothing imported.
            batch.total_rows = sum(1 for _ in reader)
        else:
            batch.total_rows = reader.total_rows or 0
        _add_new_fields(mlist, reader.mapping)
        target = ImportTarget(
            org_id,
            batch.id,
            mlist.id,
            mlist.purpose,
            batch.source,
            batch.legal_basis,
            batch.uploaded_by_id,
            batch.api_token_id,
        )
        db.session.commit()
        if parallel is None:
            parallel = dialect.dialect_name() == "postgresql"
        writer = ThreadWriter(db.engine, target) if parallel else InlineWriter(target)
        rows = iter(reader)
        while chunk := list(islice(rows, chunk_rows)):
            job = plan_chunk(target, chunk, secret, report, progress)
            db.session.commit()  # names filled in on existing contacts
            writer.submit(job)
        progress.imported = writer.close()
        writer = None
    except ImportFileError as exc:
        db.session.rollback()
        progress.imported = writer.abort() if writer else progress.imported
        return _fail(org_id, batch_id, exc.message, report, progress)
    except Exception:
        db.session.rollback()
        progress.imported = writer.abort() if writer else progress.imported
        log.exception("import %s failed", batch_id)
        _fail(
            org_id,
            batch_id,
            "L'import s'est arrêté sur une erreur interne après "
            f"{progress.processed} lignes ; l'équipe technique a été prévenue.",
            report,
            progress,
        )
        raise
    report.sort(key=lambda e: e["row"])
    batch = get_import(org_id, batch_id)
    batch.status = ImportStatus.DONE
    batch.rejected = report
    batch.processed_rows = progress.processed
    batch.imported = progress.imported
    batch.duplicates = progress.duplicates
    batch.total_rows = max(batch.total_rows, progress.processed)
    batch.finished_at = utcnow()
    db.session.commit()
    if progress.imported >= ANALYZE_AFTER_ROWS:
        _refresh_statistics()
    return batch


# An import this large changes the tables' statistics enough for the planner to go wrong
# on the next freeze (a sequential scan where an index lookup is due) until autovacuum
# runs ANALYZE: the job runs it itself.
ANALYZE_AFTER_ROWS = 10_000


def _refresh_statistics() -> None:
    """PostgreSQL: ``ANALYZE`` the tables an import fills (sampled: under a second)."""
    if dialect.dialect_name() == "postgresql":
        db.session.execute(text("ANALYZE contacts, subscriptions"))
        db.session.commit()


def _claim(org_id: int, batch_id: int) -> bool:
    """Move a pending batch to running in one conditional UPDATE: of two deliveries of
    the job message (or a re-queued one), only the first runs the import."""
    claimed = db.session.execute(
        update(ImportBatch)
        .where(
            ImportBatch.id == batch_id,
            ImportBatch.organisation_id == org_id,
            ImportBatch.status == ImportStatus.PENDING,
        )
        .values(status=ImportStatus.RUNNING, heartbeat_at=utcnow())
    ).rowcount
    db.session.commit()
    return claimed == 1


def _fail(
    org_id: int, batch_id: int, message: str, report: list[dict[str, Any]], progress: Progress
) -> ImportBatch | None:
    batch = get_import(org_id, batch_id)
    if batch is None:
        return None
    batch.status = ImportStatus.FAILED
    batch.error = message
    batch.rejected = report
    batch.processed_rows = progress.processed
    batch.imported = progress.imported
    batch.duplicates = progress.duplicates
    batch.finished_at = utcnow()
    db.session.commit()
    return batch


def _open_reader(batch: ImportBatch, mlist: MailingList, limits: Limits) -> ImportReader:
    if not batch.file_path or not Path(batch.file_path).is_file():
        raise ImportFileError("file_missing", "Le fichier importé n'est plus disponible.")
    saved = batch.mapping or {}
    mapping = ColumnMapping.from_dict(saved["columns"]) if saved.get("columns") else None
    fmt = FileFormat.from_dict(saved["format"]) if saved.get("format") else None
    return ImportReader(
        batch.file_path,
        mapping,
        fmt=fmt,
        limits=limits,
        known_fields=list(mlist.custom_fields or []),
    )


def _add_new_fields(mlist: MailingList, mapping: ColumnMapping) -> None:
    """Custom fields the mapping brings that the list does not have yet are added to it."""
    known = list(mlist.custom_fields or [])
    for name in mapping.fields:
        key = field_key(name)
        if key and key not in known and len(known) < 20:
            known.append(key)
    if known != list(mlist.custom_fields or []):
        mlist.custom_fields = known
