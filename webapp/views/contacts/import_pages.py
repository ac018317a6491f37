"""Contacts pages: the import wizard (upload, preview and mapping, run) and the imports'
history, progress and per-row reports."""

from __future__ import annotations

import json
from pathlib import Path

from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from contacts import consent_history, imports, lists, uploads
from contacts.column_mapping import mapping_choices, mapping_from_choices, preview
from contacts.db import DomainError, db
from contacts.import_report import REPORT_HEADER, rejected_for_api, report_rows
from contacts.importfile import FileFormat, ImportFileError, Limits, file_sha256, safe_filename
from contacts.models import LegalBasis, Source
from contacts.spreadsheet import rows_to_csv_bytes
from webapp.auth import current_org_id, roles_required
from webapp.i18n import error_text, translate
from webapp.models import User
from webapp.views.contacts import PAGE, READ, WRITE, bp, download, or_404, page_number

REPORT_SHOWN = 500
IMPORT_SOURCES = [s for s in Source if s != Source.API]


def _limits() -> Limits:
    return Limits(max_bytes=current_app.config["CRIEUR_IMPORT_MAX_BYTES"])


def _upload_root() -> Path:
    return Path(current_app.instance_path) / "imports"


@bp.route("/lists/<int:list_id>/import", methods=["GET", "POST"])
@roles_required(*WRITE)
def import_upload(list_id: int):
    """Step 1: upload; step 2 (the answer to the POST): preview and column mapping."""
    org_id = current_org_id()
    mlist = or_404(lists.get_list(org_id, list_id))
    if request.method == "GET":
        return render_template("contacts/import_upload.html", mlist=mlist, error="")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _upload_error(mlist, _("Choisissez un fichier CSV ou XLSX."))
    try:
        stored = uploads.store_upload(
            _upload_root(), org_id, upload.stream, upload.filename, _limits().max_bytes
        )
    except ImportFileError as exc:
        return _upload_error(mlist, error_text(exc))
    try:
        found = preview(stored.path, limits=_limits(), known_fields=list(mlist.custom_fields))
    except ImportFileError as exc:
        uploads.discard_upload(stored.path)
        return _upload_error(mlist, error_text(exc))
    return _preview_page(mlist, stored.upload_id, stored.filename, found)


def _upload_error(mlist, message: str):
    return render_template("contacts/import_upload.html", mlist=mlist, error=message), 400


def _preview_page(mlist, upload_id: str, filename: str, found, error: str = "", form=None):
    if form is not None:
        choices = [form.get(f"col-{i}", "") for i in range(len(found.headers))]
    else:
        choices = mapping_choices(found.guessed_mapping, len(found.headers))
    return render_template(
        "contacts/import_preview.html",
        mlist=mlist,
        upload_id=upload_id,
        filename=filename,
        found=found,
        choices=choices,
        field_key=lists.field_key,
        format_json=json.dumps(found.format.to_dict()),
        sources=IMPORT_SOURCES,
        bases=list(LegalBasis),
        error=error,
        form=form or {},
    ), (400 if error else 200)


@bp.route("/lists/<int:list_id>/import/run", methods=["POST"])
@roles_required(*WRITE)
def import_run(list_id: int):
    """Step 3: record the batch with its evidence and hand it to the import job."""
    from contacts.actors import enqueue_import

    org_id = current_org_id()
    mlist = or_404(lists.get_list(org_id, list_id))
    form = request.form
    path = or_404(uploads.find_upload(_upload_root(), org_id, form.get("upload_id", "")))
    try:
        fmt = FileFormat.from_dict(json.loads(form.get("format", "{}")))
        found = preview(path, limits=_limits(), known_fields=list(mlist.custom_fields))
        width = min(len(found.headers), 500)
        mapping = mapping_from_choices([form.get(f"col-{i}", "") for i in range(width)])
    except (ImportFileError, ValueError) as exc:
        message = error_text(exc) if isinstance(exc, ImportFileError) else _("Formulaire invalide.")
        if not path.exists():
            return _upload_error(mlist, message)
        return _preview_page(
            mlist,
            form.get("upload_id", ""),
            form.get("filename", ""),
            preview(path, limits=_limits(), known_fields=list(mlist.custom_fields)),
            error=message,
            form=form,
        )
    stored = uploads.StoredFile(
        form["upload_id"],
        path,
        safe_filename(form.get("filename", ""), path.name),
        file_sha256(path),
        path.stat().st_size,
    )
    try:
        batch = imports.create_import(
            org_id,
            mlist.id,
            source=form.get("source", ""),
            legal_basis=form.get("legal_basis", ""),
            attestation=form.get("attestation", ""),
            stored=stored,
            uploaded_by_id=current_user.id,
            mapping=mapping,
            fmt=fmt,
        )
    except DomainError as exc:
        db.session.rollback()
        return _preview_page(
            mlist, stored.upload_id, stored.filename, found, error=error_text(exc), form=form
        )
    db.session.commit()
    enqueue_import(org_id, batch.id)
    return redirect(url_for("contacts.import_detail", batch_id=batch.id))


@bp.route("/imports")
@roles_required(*READ)
def import_history():
    org_id = current_org_id()
    page = page_number()
    batches = imports.list_imports(org_id, limit=PAGE, offset=(page - 1) * PAGE)
    names = consent_history.list_names(org_id, [b.list_id for b in batches])
    return render_template(
        "contacts/imports.html", batches=batches, list_names=names, page=page, page_size=PAGE
    )


@bp.route("/imports/<int:batch_id>")
@roles_required(*READ)
def import_detail(batch_id: int):
    org_id = current_org_id()
    batch = or_404(imports.get_import(org_id, batch_id))
    mlist = lists.get_list(org_id, batch.list_id)
    uploader = db.session.get(User, batch.uploaded_by_id) if batch.uploaded_by_id else None
    report = batch.rejected or []
    return render_template(
        "contacts/import_detail.html",
        batch=batch,
        mlist=mlist,
        uploader=uploader,
        # Reasons are stored French text; the constant ones are in the catalogue.
        report=[{**e, "reason": translate(e["reason"])} for e in report[:REPORT_SHOWN]],
        report_total=len(report),
        rejected_total=len(rejected_for_api(batch)),
    )


@bp.route("/imports/<int:batch_id>/status")
@roles_required(*READ)
def import_status(batch_id: int):
    """Polled by import-progress.js for the progress bar."""
    batch = or_404(imports.get_import(current_org_id(), batch_id))
    return jsonify(
        {
            "status": batch.status,
            "total_rows": batch.total_rows,
            "processed_rows": batch.processed_rows,
            "imported": batch.imported,
            "duplicates": batch.duplicates,
        }
    )


@bp.route("/imports/<int:batch_id>/report.csv")
@roles_required(*READ)
def import_report(batch_id: int):
    batch = or_404(imports.get_import(current_org_id(), batch_id))
    lines = (
        [row, value, translate(reason), translate(kind)]
        for row, value, reason, kind in report_rows(batch)
    )
    data = rows_to_csv_bytes([translate(title) for title in REPORT_HEADER], lines)
    return download(data, f"rapport-import-{batch.id}.csv", "text/csv; charset=utf-8")
