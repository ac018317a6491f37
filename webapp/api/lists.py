"""``/lists`` and ``/imports``: mailing lists and file imports into them (CONTRACT.md).

Thin handlers over ``contacts.lists`` and ``contacts.imports``. Another body's list or
import is a 404; an analyst gets 403; directors read, officers and admins write.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app, g, request

from contacts import imports, lists, uploads
from contacts.db import db
from contacts.importfile import ImportFileError
from webapp.api import ApiError, api_roles, bp, json_body, not_found, org_id

READ = ("officer", "director", "admin")
WRITE = ("officer", "admin")


@bp.get("/lists")
@api_roles(*READ)
def get_lists():
    """The body's lists with their member counts.
    ---
    get:
      summary: List the body's mailing lists
      responses:
        200:
          description: >-
            {lists: [{id, name, purpose, double_opt_in, description, custom_fields,
            counts}]}
        403: {description: analyst}
    """
    oid = org_id()
    counts = lists.member_counts(oid)
    empty = {"active": 0, "pending": 0, "withdrawn": 0, "risky": 0, "sendable": 0}
    return {
        "lists": [
            lists.list_as_dict(m, counts.get(m.id, dict(empty))) for m in lists.all_lists(oid)
        ]
    }


@bp.post("/lists")
@api_roles(*WRITE)
def create_list():
    """Create a list.
    ---
    post:
      summary: Create a mailing list
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [name]
              properties:
                name: {type: string}
                purpose: {type: string, enum: [newsletter, invitations, surveys, press]}
                double_opt_in: {type: boolean}
                description: {type: string}
                custom_fields: {type: array, items: {type: string}}
      responses:
        201: {description: the new list}
        400: {description: invalid field}
        403: {description: director or analyst}
    """
    body = json_body()
    mlist = lists.create_list(
        org_id(),
        body.get("name", ""),
        body.get("purpose", "newsletter"),
        description=body.get("description", "") or "",
        double_opt_in=body.get("double_opt_in", True),
        custom_fields=body.get("custom_fields"),
    )
    db.session.commit()
    return lists.list_as_dict(mlist), 201


@bp.get("/lists/<int:list_id>")
@api_roles(*READ)
def get_list(list_id: int):
    """One list with its counts, by consent source too.
    ---
    get:
      summary: A mailing list
      parameters:
        - {in: path, name: list_id, required: true, schema: {type: integer}}
      responses:
        200: {description: the list}
        404: {description: not found or another body's}
    """
    oid = org_id()
    mlist = lists.get_list(oid, list_id)
    if mlist is None:
        raise not_found("liste")
    out = lists.list_as_dict(mlist, lists.member_counts(oid).get(mlist.id, {}))
    out["by_source"] = lists.counts_by_source(oid, mlist.id)
    return out


@bp.post("/lists/<int:list_id>/imports")
@api_roles(*WRITE)
def create_import(list_id: int):
    """Import a CSV or XLSX file into a list; runs as a background job.
    ---
    post:
      summary: Start an import
      parameters:
        - {in: path, name: list_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          multipart/form-data:
            schema:
              type: object
              required: [file, source, legal_basis, attestation]
              properties:
                file: {type: string, format: binary}
                source:
                  type: string
                  enum: [web_form, event_signup, internal_file, directory, exchanged,
                         purchased, unknown]
                legal_basis: {type: string, enum: [consent, public_task]}
                attestation: {type: string, description: where the file comes from}
      responses:
        202:
          description: "{id}: follow it with GET /imports/{id}"
        400: {description: missing file, unknown source or basis, no attestation}
        404: {description: not found or another body's list}
    """
    from contacts.actors import enqueue_import

    oid = org_id()
    mlist = lists.get_list(oid, list_id)
    if mlist is None:
        raise not_found("liste")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError("missing_file", "Joignez le fichier dans le champ « file ».")
    form = request.form
    # Check the form before storing anything, so a bad request leaves no file behind.
    imports.check_import_request(
        oid,
        mlist.id,
        form.get("source", ""),
        form.get("legal_basis", ""),
        form.get("attestation", ""),
    )
    root = Path(current_app.instance_path) / "imports"
    stored, error = None, None
    try:
        stored = uploads.store_upload(
            root, oid, upload.stream, upload.filename, current_app.config["CRIEUR_IMPORT_MAX_BYTES"]
        )
    except ImportFileError as exc:
        error = exc
    batch = imports.create_import(
        oid,
        mlist.id,
        source=form["source"],
        legal_basis=form["legal_basis"],
        attestation=form["attestation"],
        stored=stored,
        filename=upload.filename,
        uploaded_by_id=g.api_user.id,
        api_token_id=g.api_token.id,
        error=error,
    )
    db.session.commit()
    if error is None:
        enqueue_import(oid, batch.id)
    return {"id": batch.id}, 202


@bp.get("/imports/<int:batch_id>")
@api_roles(*READ)
def get_import(batch_id: int):
    """An import's progress and its per-row report.
    ---
    get:
      summary: Import status
      parameters:
        - {in: path, name: batch_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: >-
            {status: pending|running|done|failed, total_rows, imported, duplicates,
            rejected: [{row, reason}], error}
        404: {description: not found or another body's}
    """
    batch = imports.get_import(org_id(), batch_id)
    if batch is None:
        raise not_found("import")
    return imports.import_as_dict(batch)
