"""Imports, database side: the stored file, the batch record and the job that fills a list.

Reading the file (sniffing, mapping, per-row validation) is ``contacts.importfile``'s;
this module stores the upload (SHA-256, uploader, attestation: the ledger's evidence for
every address it brings), then streams the reader's rows in chunks:

- one query per chunk finds existing contacts, their subscriptions on the list and the
  suppressed addresses (by hash); new contacts, subscriptions and ledger rows are written
  in bulk (PostgreSQL: COPY into a temporary table then INSERT ... SELECT, from a writer
  thread that works on chunk N while chunk N+1 is read; SQLite: multi-row INSERTs);
- a suppressed address is never re-added, a person who left the list is not put back,
  and an address already on the list counts as a duplicate;
- each chunk is committed with the batch's progress (``processed_rows``), so the progress
  bar moves and SQLite's write lock is released between chunks.

A batch whose worker died (server crash, process killed) would stay ``running`` forever:
the job writes a heartbeat with every chunk, and :func:`recover_imports` (called by the
reconciler) marks a batch whose heartbeat stopped as failed, telling the officer the
file can be imported again safely (addresses already written come out as duplicates).

A file that cannot be read fails before any row is written (the reader checks the whole
CSV first; an XLSX is walked once before the import for the same reason), with one
message in ``ImportBatch.error``. Row problems go to the per-row report and never stop
the import.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import queue
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select, text, update

from contacts import consent, people, suppression
from contacts.db import DomainError, db, get_scoped, scoped, utcnow
from contacts.importfile import (
    LIMITS,
    ColumnMapping,
    FileFormat,
    ImportFileError,
    ImportReader,
    Limits,
    RowResult,
    RowStatus,
    safe_filename,
)
from contacts.lists import field_key
from contacts.models import (
    ConsentAction,
    Contact,
    ContactStatus,
    ImportBatch,
    MailingList,
    Subscription,
    SubscriptionStatus,
    Suppression,
)

log = logging.getLogger(__name__)

CHUNK_ROWS = 5000  # rows per transaction: fewer round trips, a progress step per chunk
# A running batch without a heartbeat for this long was left by a dead worker. A chunk
# takes well under a second; walking a large XLSX before the first chunk, a minute.
STALE_SECONDS = 15 * 60
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
ALLOWED_EXTENSIONS = {"csv", "txt", "tsv", "xlsx"}


class ImportStatus:
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# Kinds of report lines; the API's "rejected" leaves out duplicates and warnings.
INVALID, DUPLICATE, SUPPRESSED, WITHDRAWN, WARNING = (
    "invalid",
    "duplicate",
    "suppressed",
    "withdrawn",
    "warning",
)
KIND_LABELS = {
    INVALID: "adresse invalide",
    DUPLICATE: "doublon",
    SUPPRESSED: "adresse bloquée",
    WITHDRAWN: "désinscription",
    WARNING: "importé avec remarque",
}
SUPPRESSED_REASON = (
    "Adresse sur la liste d'opposition (désinscription, échec définitif ou effacement) : "
    "jamais réimportée"
)
ON_LIST_REASON = "Déjà inscrit sur cette liste"


# ---------------------------------------------------------------------------- the upload


@dataclass(frozen=True)
class StoredFile:
    upload_id: str
    path: Path
    filename: str
    sha256: str
    size: int


def upload_folder(root: Path | str, org_id: int) -> Path:
    return Path(root) / str(int(org_id))


def store_upload(
    root: Path | str, org_id: int, stream: IO[bytes], filename: str, max_bytes: int
) -> StoredFile:
    """Copy an uploaded file under ``root/<org_id>/``, hashing it on the way.

    The stored name is random (the person's file name is kept for display only, made
    safe). Over ``max_bytes`` the partial copy is deleted and ``file_too_large`` raised.
    """
    name = safe_filename(filename or "", "import.csv")
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else "csv"
    ext = ext if ext in ALLOWED_EXTENSIONS else "dat"
    folder = upload_folder(root, org_id)
    folder.mkdir(parents=True, exist_ok=True)
    upload_id = uuid.uuid4().hex
    path = folder / f"{upload_id}.{ext}"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise ImportFileError(
                        "file_too_large",
                        f"Le fichier dépasse la taille maximale "
                        f"({max(max_bytes // (1024 * 1024), 1)} Mo). "
                        "Découpez-le en plusieurs fichiers.",
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StoredFile(upload_id, path, name, digest.hexdigest(), size)


def find_upload(root: Path | str, org_id: int, upload_id: str) -> Path | None:
    """The stored file of an upload id from a form, only inside the body's own folder."""
    if not UPLOAD_ID.match(upload_id or ""):
        return None
    folder = upload_folder(root, org_id)
    for ext in (*ALLOWED_EXTENSIONS, "dat"):
        path = folder / f"{upload_id}.{ext}"
        if path.is_file():
            return path
    return None


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def discard_upload(path: Path | str) -> None:
    Path(path).unlink(missing_ok=True)


# ---------------------------------------------------------------------------- the batch


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


def rejected_for_api(batch: ImportBatch) -> list[dict[str, Any]]:
    """CONTRACT's ``rejected``: rows not imported for a reason other than being a duplicate."""
    return [
        {"row": e["row"], "reason": e["reason"]}
        for e in batch.rejected or []
        if e.get("kind") not in (DUPLICATE, WARNING)
    ]


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


REPORT_HEADER = ["Ligne", "Valeur", "Motif", "Type"]


def report_rows(batch: ImportBatch) -> Iterator[list[Any]]:
    """Lines of the downloadable report (written through ``contacts.spreadsheet``)."""
    for e in batch.rejected or []:
        yield [e["row"], e.get("value", ""), e["reason"], KIND_LABELS.get(e.get("kind"), "")]


# ---------------------------------------------------------------------------- the job


@dataclass
class _Progress:
    processed: int = 0
    imported: int = 0
    duplicates: int = 0


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
    connection while the next one is read and validated (:class:`_ThreadWriter`).
    """
    if not _claim(org_id, batch_id):
        return None
    batch = get_import(org_id, batch_id)
    report: list[dict[str, Any]] = []
    progress = _Progress()
    writer: _InlineWriter | _ThreadWriter | None = None
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
        target = _Target(
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
            parallel = people.dialect_name() == "postgresql"
        writer = _ThreadWriter(db.engine, target) if parallel else _InlineWriter(target)
        rows = iter(reader)
        while chunk := list(islice(rows, chunk_rows)):
            job = _plan_chunk(target, chunk, secret, report, progress)
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
    return batch


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


@dataclass
class Recovery:
    """What :func:`recover_imports` did: batches failed, and pending ones to queue again."""

    failed: list[int]
    requeue: list[tuple[int, int]]  # (org_id, batch_id)


STALE_MESSAGE = (
    "L'import s'est interrompu après {processed} lignes (arrêt du serveur ou du "
    "traitement). Vous pouvez relancer le même fichier sans risque : les adresses déjà "
    "importées seront comptées comme doublons."
)


def recover_imports(
    *,
    stale_seconds: float = STALE_SECONDS,
    queue_lost: bool = False,
    now: dt.datetime | None = None,
) -> Recovery:
    """Fail the batches a dead worker left running; name the pending ones to queue again.

    A running batch whose heartbeat is older than ``stale_seconds`` is failed. A pending
    batch queued that long ago lost its job message (broker down at upload, Redis
    flushed): it is named again, at most once per ``stale_seconds`` (its heartbeat
    records the re-queue), and a second delivery is harmless (:func:`_claim`).
    ``queue_lost`` is the embedded mode's first pass after a start: the previous process
    took its in-memory queue and its worker with it, so every running batch is dead and
    every pending one must be queued again, whatever their age.
    """
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=stale_seconds)
    last_seen = func.coalesce(ImportBatch.heartbeat_at, ImportBatch.created_at)
    running = select(ImportBatch).where(ImportBatch.status == ImportStatus.RUNNING)
    pending = select(ImportBatch).where(ImportBatch.status == ImportStatus.PENDING)
    if not queue_lost:
        running = running.where(last_seen < cutoff)
        pending = pending.where(last_seen < cutoff)
    failed: list[int] = []
    for batch in db.session.scalars(running.order_by(ImportBatch.id)).all():
        batch.status = ImportStatus.FAILED
        batch.error = STALE_MESSAGE.format(processed=batch.processed_rows)
        batch.finished_at = now
        failed.append(batch.id)
    requeue: list[tuple[int, int]] = []
    for batch in db.session.scalars(pending.order_by(ImportBatch.id)).all():
        batch.heartbeat_at = now
        requeue.append((batch.organisation_id, batch.id))
    db.session.commit()
    if failed:
        log.warning("imports left running by a dead worker, marked failed: %s", failed)
    return Recovery(failed, requeue)


@dataclass(frozen=True)
class _Target:
    """What every write of one import needs, as plain values (the writer has no ORM)."""

    org_id: int
    batch_id: int
    id: int  # the list's id: with ``purpose``, what consent.bulk_grant reads of a list
    purpose: str
    source: str
    legal_basis: str
    uploaded_by_id: int | None
    api_token_id: int | None


@dataclass
class _Job:
    """One chunk's writes, decided by :func:`_plan_chunk` from the database's state."""

    new_rows: list[dict[str, Any]]
    new_evidence: dict[str, dict[str, Any]]  # email of a new contact -> ledger evidence
    existing_grants: list[tuple[int, dict[str, Any]]]
    processed: int
    duplicates: int
    payload: bytes | None = None  # PostgreSQL: the rows as COPY text (:func:`_pg_payload`)


def _write(executor: Any, target: _Target, job: _Job) -> int:
    """Create the chunk's contacts, then grant them all on the list; returns the count."""
    created = people.bulk_create_contacts(target.org_id, job.new_rows, executor)
    grants = job.existing_grants + [
        (created[email], evidence)
        for email, evidence in job.new_evidence.items()
        if email in created
    ]
    imported = consent.bulk_grant(
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


def _progress_update(target: _Target, job: _Job, imported: int) -> Any:
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


class _InlineWriter:
    """Writes each chunk in the caller's session and commits it with the progress."""

    def __init__(self, target: _Target) -> None:
        self.target = target
        self.imported = 0

    def submit(self, job: _Job) -> None:
        self.imported += _write(db.session, self.target, job)
        db.session.execute(_progress_update(self.target, job, self.imported))
        db.session.commit()

    def close(self) -> int:
        return self.imported

    def abort(self) -> int:
        return self.imported


class _ThreadWriter:
    """Writes chunks from a second thread and connection, one chunk behind the reader.

    Reading and validating (Python, holding the GIL) and inserting (the PostgreSQL
    server, while this thread waits on its socket without the GIL) then run on two
    cores at once. Chunks never share an address (the reader reports repeats as
    duplicates), so writing chunk N while chunk N+1 is planned needs no ordering. The
    queue holds two chunks at most: memory stays bounded whatever the file's size.
    """

    def __init__(self, engine: Any, target: _Target) -> None:
        self.engine = engine
        self.target = target
        self.imported = 0
        self.error: BaseException | None = None
        self.queue: queue.Queue[_Job | None] = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.engine.connect() as conn:
                fused = conn.dialect.name == "postgresql"
                if fused:
                    _pg_prepare(conn, self.target)
                while (job := self.queue.get()) is not None:
                    if fused:  # progress included
                        self.imported = _pg_write(conn, self.target, job, self.imported)
                    else:
                        self.imported += _write(conn, self.target, job)
                        conn.execute(_progress_update(self.target, job, self.imported))
                    conn.commit()
        except BaseException as exc:  # handed to the reading thread
            self.error = exc
            log.exception("import writer failed")

    def submit(self, job: _Job) -> None:
        if self.engine.dialect.name == "postgresql":
            job.payload = _pg_payload(job)
        while True:
            if self.error is not None:
                raise RuntimeError("the import writer stopped") from self.error
            try:
                self.queue.put(job, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> int:
        self._stop()
        if self.error is not None:
            raise RuntimeError("the import writer stopped") from self.error
        return self.imported

    def abort(self) -> int:
        self._stop()
        return self.imported

    def _stop(self) -> None:
        while self.thread.is_alive():
            try:
                self.queue.put(None, timeout=0.5)
                break
            except queue.Full:
                continue
        self.thread.join()


# PostgreSQL writer: one COPY and one statement per chunk (bench/reports/import.md).
# Every row of the chunk (new addresses, and existing contacts to put on the list) goes
# into one temporary table; one statement then inserts the contacts, their subscriptions
# and the ledger rows (data-modifying CTEs: the foreign-key checks run at the end of the
# statement and see the contacts it inserted). Compared with the general
# ``people.bulk_create_contacts`` + ``consent.bulk_grant`` pair this saves, per chunk, a
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


def _pg_prepare(conn: Any, target: _Target) -> None:
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


def _pg_payload(job: _Job) -> bytes:
    """The chunk's rows as COPY text (``_PG_ROWS_COLUMNS``), ready to send in one write.

    Built by the reading thread (:meth:`_ThreadWriter.submit`): formatting 5,000 rows in
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


def _pg_write(conn: Any, target: _Target, job: _Job, imported_before: int) -> int:
    """:func:`_write` and the progress update for PostgreSQL, in one COPY and one
    statement; returns the import's count so far (``imported_before`` + this chunk's)."""
    if not job.new_rows and not job.existing_grants:
        conn.execute(_progress_update(target, job, imported_before))
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
        copy.write(job.payload if job.payload is not None else _pg_payload(job))
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
        imported += _write(
            conn, target, _Job([], {}, [(cid, {"row": n}) for cid, n in raced], 0, 0)
        )
        conn.execute(_progress_update(target, job, imported))
    return imported


def _fail(
    org_id: int, batch_id: int, message: str, report: list[dict[str, Any]], progress: _Progress
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


def _entry(r: RowResult, kind: str, reason: str) -> dict[str, Any]:
    return {"row": r.row, "value": r.value, "reason": reason, "kind": kind}


def _plan_chunk(
    target: _Target,
    chunk: list[RowResult],
    secret: str | bytes,
    report: list[dict[str, Any]],
    progress: _Progress,
) -> _Job:
    """Sort one chunk's rows against the database: report lines, and the writes to do."""
    org_id = target.org_id
    progress.processed += len(chunk)
    ok: list[RowResult] = []
    for r in chunk:
        if r.status is RowStatus.OK:
            ok.append(r)
        elif r.status is RowStatus.DUPLICATE:
            progress.duplicates += 1
            report.append(_entry(r, DUPLICATE, r.reason))
        else:
            report.append(_entry(r, INVALID, r.reason))
    job = _Job([], {}, [], progress.processed, progress.duplicates)
    if not ok:
        return job
    blocked = _suppressed_emails(org_id, secret, [r.email for r in ok])
    existing = _existing_contacts(org_id, [r.email for r in ok])
    subs = _subscriptions(org_id, target.id, [c.id for c in existing.values()])
    for r in ok:
        contact = existing.get(r.email)
        if r.email in blocked or (contact is not None and contact.status != ContactStatus.ACTIVE):
            report.append(_entry(r, SUPPRESSED, SUPPRESSED_REASON))
            continue
        if contact is not None:
            sub = subs.get(contact.id)
            if sub is not None and sub[0] == SubscriptionStatus.WITHDRAWN:
                when = sub[1].strftime("%d/%m/%Y") if sub[1] else ""
                report.append(
                    _entry(
                        r,
                        WITHDRAWN,
                        f"S'est désinscrit de cette liste{' le ' + when if when else ''} : "
                        "seule une nouvelle inscription de sa part peut l'y remettre",
                    )
                )
                continue
            if sub is not None:
                progress.duplicates += 1
                report.append(_entry(r, DUPLICATE, ON_LIST_REASON))
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
            report.append(_entry(r, WARNING, " ; ".join(r.warnings)))
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
    array into the plan (see ``people.pg_any_lookup``).
    """
    return people.pg_any_lookup(db.session, sql, org_id, "\n".join(values))


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
    if people.dialect_name() == "postgresql":
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
    if people.dialect_name() == "postgresql":
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
        ids = [cid for cid, _ in people.contact_ids_by_email(org_id, emails).values()]
    if not ids:
        return {}
    return {
        c.email: c
        for c in db.session.scalars(
            select(Contact).where(Contact.organisation_id == org_id, people.one_of(Contact.id, ids))
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
            people.one_of(Subscription.contact_id, contact_ids),
        )
    )
    return {cid: (status, at) for cid, status, at in rows}
