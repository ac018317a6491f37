"""Contacts pages: lists, contacts and their consent timeline, the import wizard, the
suppression list, segments, GDPR export and erasure.

Thin views over ``contacts`` services: parse, call, commit, render. Every id in a URL is
looked up within the signed-in user's body; another body's id is a 404 and an audit line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from analytics import contact_data, links
from contacts import (
    consent,
    consent_history,
    gdpr,
    imports,
    lists,
    memberships,
    people,
    segments,
    suppression,
    uploads,
)
from contacts.column_mapping import preview
from contacts.db import DomainError, db
from contacts.import_report import KIND_LABELS, REPORT_HEADER, rejected_for_api, report_rows
from contacts.importfile import (
    ColumnMapping,
    FileFormat,
    ImportFileError,
    Limits,
    file_sha256,
    safe_filename,
)
from contacts.models import (
    RISKY_SOURCES,
    Contact,
    ContactStatus,
    LegalBasis,
    Purpose,
    Source,
    Subscription,
)
from contacts.spreadsheet import rows_to_csv_bytes
from webapp.auth import audit, current_org_id, roles_required
from webapp.models import User
from webapp.templating import current_org

bp = Blueprint("contacts", __name__, url_prefix="/contacts")

READ = ("officer", "director", "admin")
WRITE = ("officer", "admin")
PAGE = 50
REPORT_SHOWN = 500
IMPORT_SOURCES = [s for s in Source if s != Source.API]


def _secret() -> str:
    return current_app.config["CRIEUR_SECRET_KEY"]


def _limits() -> Limits:
    return Limits(max_bytes=current_app.config["CRIEUR_IMPORT_MAX_BYTES"])


def _upload_root() -> Path:
    return Path(current_app.instance_path) / "imports"


def _found(obj: Any) -> Any:
    if obj is None:
        audit("not_found", f"{request.method} {request.path}")
        abort(404)
    return obj


def _page() -> int:
    return max(request.args.get("page", 1, type=int) or 1, 1)


@bp.context_processor
def labels() -> dict[str, Any]:
    return {
        "source_labels": consent_history.SOURCE_LABELS,
        "basis_labels": consent_history.LEGAL_BASIS_LABELS,
        "action_labels": consent_history.ACTION_LABELS,
        "purpose_labels": lists.PURPOSE_LABELS,
        "risky_sources": RISKY_SOURCES,
        "reason_labels": suppression.REASON_LABELS,
        "kind_labels": KIND_LABELS,
    }


# ---------------------------------------------------------------------------- lists


@bp.route("/")
@roles_required(*READ)
def index():
    org_id = current_org_id()
    counts = lists.member_counts(org_id)
    stale = gdpr.count_stale(org_id, current_org().retention_months)
    return render_template(
        "contacts/index.html",
        lists=lists.all_lists(org_id),
        counts=counts,
        stale=stale,
        total=db.session.scalar(
            select(func.count()).select_from(people.search_query(org_id).subquery())
        ),
    )


@bp.route("/lists/new", methods=["GET", "POST"])
@roles_required(*WRITE)
def new_list():
    if request.method == "POST":
        form = request.form
        mlist = lists.create_list(
            current_org_id(),
            form.get("name", ""),
            form.get("purpose", "newsletter"),
            description=form.get("description", ""),
            double_opt_in=bool(form.get("double_opt_in")),
            custom_fields=form.get("custom_fields", ""),
        )
        db.session.commit()
        flash(_("Liste créée."), "success")
        return redirect(url_for("contacts.list_detail", list_id=mlist.id))
    return render_template("contacts/list_form.html", mlist=None, purposes=list(Purpose))


@bp.route("/lists/<int:list_id>/edit", methods=["GET", "POST"])
@roles_required(*WRITE)
def edit_list(list_id: int):
    org_id = current_org_id()
    mlist = _found(lists.get_list(org_id, list_id))
    if request.method == "POST":
        form = request.form
        lists.update_list(
            org_id,
            mlist.id,
            {
                "name": form.get("name", ""),
                "purpose": form.get("purpose", "newsletter"),
                "description": form.get("description", ""),
                "double_opt_in": bool(form.get("double_opt_in")),
                "custom_fields": form.get("custom_fields", ""),
            },
        )
        db.session.commit()
        flash(_("Liste enregistrée."), "success")
        return redirect(url_for("contacts.list_detail", list_id=mlist.id))
    return render_template("contacts/list_form.html", mlist=mlist, purposes=list(Purpose))


@bp.route("/lists/<int:list_id>")
@roles_required(*READ)
def list_detail(list_id: int):
    org_id = current_org_id()
    mlist = _found(lists.get_list(org_id, list_id))
    page = _page()
    query = (
        select(Subscription, Contact)
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(Subscription.organisation_id == org_id, Subscription.list_id == mlist.id)
        .order_by(Subscription.id.desc())
        .limit(PAGE)
        .offset((page - 1) * PAGE)
    )
    members = db.session.execute(query).all()
    form_url = links.subscribe_url(
        current_app.config["CRIEUR_PUBLIC_URL"], _secret(), org_id, mlist.id
    )
    snippet = (
        f'<iframe src="{form_url}?embed=1" title="Inscription : {mlist.name}" '
        'width="100%" height="560" style="border:0" loading="lazy"></iframe>'
    )
    return render_template(
        "contacts/list_detail.html",
        mlist=mlist,
        counts=lists.member_counts(org_id).get(mlist.id, {}),
        by_source=lists.counts_by_source(org_id, mlist.id),
        members=members,
        page=page,
        page_size=PAGE,
        form_url=form_url,
        snippet=snippet,
        sendable=memberships.subscription_is_sendable,
    )


@bp.route("/lists/<int:list_id>/export.csv")
@roles_required(*WRITE)
def export_list(list_id: int):
    """The list's members as CSV for a spreadsheet (formula-safe)."""
    org_id = current_org_id()
    mlist = _found(lists.get_list(org_id, list_id))
    fields = list(mlist.custom_fields or [])
    rows = db.session.execute(
        select(Subscription, Contact)
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(Subscription.organisation_id == org_id, Subscription.list_id == mlist.id)
        .order_by(Contact.id)
    )
    header = ["E-mail", "Prénom", "Nom", "Statut", "Inscription", "Origine", "Base légale"]
    body = (
        [
            c.email,
            c.first_name,
            c.last_name,
            c.status,
            s.status,
            s.source,
            s.legal_basis,
            *[(c.fields or {}).get(f, "") for f in fields],
        ]
        for s, c in rows
    )
    data = rows_to_csv_bytes(header + fields, body)
    audit("export_list", f"list {mlist.id}")
    return _download(data, f"liste-{mlist.id}.csv", "text/csv; charset=utf-8")


def _download(data: bytes, filename: str, mimetype: str) -> Response:
    return Response(
        data,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# ---------------------------------------------------------------------------- contacts


@bp.route("/people")
@roles_required(*READ)
def people_index():
    org_id = current_org_id()
    q = request.args.get("q", "")[:200]
    list_id = request.args.get("list", type=int)
    status = request.args.get("status") or None
    if status and status not in {s.value for s in ContactStatus}:
        status = None
    page = _page()
    stale = request.args.get("stale") == "1"
    if stale:
        months = current_org().retention_months
        query = gdpr.stale_contacts_query(org_id, months).order_by(Contact.id)
        found = list(db.session.scalars(query.limit(PAGE).offset((page - 1) * PAGE)))
    else:
        found = people.search_contacts(
            org_id, q=q, list_id=list_id, status=status, limit=PAGE, offset=(page - 1) * PAGE
        )
    return render_template(
        "contacts/people.html",
        contacts=found,
        q=q,
        list_id=list_id,
        status=status,
        statuses=list(ContactStatus),
        lists=lists.all_lists(org_id),
        page=page,
        page_size=PAGE,
        stale=stale,
    )


@bp.route("/people/<int:contact_id>", methods=["GET", "POST"])
@roles_required(*READ)
def contact_detail(contact_id: int):
    org_id = current_org_id()
    contact = _found(people.get_contact(org_id, contact_id))
    if request.method == "POST":
        if current_user.role not in WRITE:
            abort(403)
        values = {
            "first_name": request.form.get("first_name", ""),
            "last_name": request.form.get("last_name", ""),
            "fields": {
                k.removeprefix("field-"): v
                for k, v in request.form.items()
                if k.startswith("field-")
            },
        }
        people.update_contact(org_id, contact.id, values, _known_fields(org_id))
        db.session.commit()
        flash(_("Contact enregistré."), "success")
        return redirect(url_for("contacts.contact_detail", contact_id=contact.id))
    history = consent_history.consent_history(org_id, contact.id)
    names = consent_history.list_names(org_id, [e.list_id for e in history])
    batch_ids = {e.import_batch_id for e in history if e.import_batch_id}
    batches = {b.id: b for b in imports.list_imports(org_id, limit=1000) if b.id in batch_ids}
    user_ids = {e.actor_user_id for e in history if e.actor_user_id}
    users = (
        {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))}
        if user_ids
        else {}
    )
    org = current_org()
    return render_template(
        "contacts/contact_detail.html",
        contact=contact,
        subs=memberships.subscriptions_of(org_id, contact.id),
        history=history,
        list_names=names,
        batches=batches,
        users=users,
        fields=_known_fields(org_id),
        stale=gdpr.is_stale(contact, org.retention_months),
        retention_months=org.retention_months,
        sendable=memberships.subscription_is_sendable,
    )


def _known_fields(org_id: int) -> list[str]:
    return segments.custom_field_names(org_id)


@bp.route("/people/<int:contact_id>/export")
@roles_required(*WRITE)
def export_contact(contact_id: int):
    """GDPR access export (Art. 15): everything held about the contact, as JSON."""
    org_id = current_org_id()
    _found(people.get_contact(org_id, contact_id))
    data = contact_data.full_export(org_id, contact_id)
    audit("gdpr_export", f"contact {contact_id}")
    body = json.dumps(data, ensure_ascii=False, indent=2).encode()
    return _download(body, f"contact-{contact_id}.json", "application/json")


@bp.route("/people/<int:contact_id>/erase", methods=["POST"])
@roles_required(*WRITE)
def erase_contact(contact_id: int):
    """GDPR erasure (Art. 17): personal data removed, the address's hash kept as an objection."""
    org_id = current_org_id()
    _found(people.get_contact(org_id, contact_id))
    if request.form.get("confirm") != "1":
        flash(_("Cochez la case de confirmation pour effacer ce contact."), "error")
        return redirect(url_for("contacts.contact_detail", contact_id=contact_id))
    contact_data.erase_everywhere(org_id, contact_id, _secret(), actor_user_id=current_user.id)
    db.session.commit()
    audit("gdpr_erase", f"contact {contact_id}")
    flash(_("Les données personnelles du contact ont été effacées."), "success")
    return redirect(url_for("contacts.contact_detail", contact_id=contact_id))


@bp.route("/people/<int:contact_id>/unsubscribe", methods=["POST"])
@roles_required(*WRITE)
def unsubscribe_contact(contact_id: int):
    """An officer records an objection received by phone, letter or at the counter."""
    org_id = current_org_id()
    _found(people.get_contact(org_id, contact_id))
    consent.withdraw_all(
        org_id,
        contact_id,
        _secret(),
        method="officer",
        actor_user_id=current_user.id,
        evidence={"note": request.form.get("note", "")[:500]},
    )
    db.session.commit()
    flash(
        _("Désinscription enregistrée : l'adresse est ajoutée à la liste d'opposition."), "success"
    )
    return redirect(url_for("contacts.contact_detail", contact_id=contact_id))


# ---------------------------------------------------------------------------- imports


@bp.route("/lists/<int:list_id>/import", methods=["GET", "POST"])
@roles_required(*WRITE)
def import_upload(list_id: int):
    """Step 1: upload; step 2 (the answer to the POST): preview and column mapping."""
    org_id = current_org_id()
    mlist = _found(lists.get_list(org_id, list_id))
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
        return _upload_error(mlist, exc.message)
    try:
        found = preview(stored.path, limits=_limits(), known_fields=list(mlist.custom_fields))
    except ImportFileError as exc:
        uploads.discard_upload(stored.path)
        return _upload_error(mlist, exc.message)
    return _preview_page(mlist, stored.upload_id, stored.filename, found)


def _upload_error(mlist, message: str):
    return render_template("contacts/import_upload.html", mlist=mlist, error=message), 400


def _preview_page(mlist, upload_id: str, filename: str, found, error: str = "", form=None):
    guessed = found.guessed_mapping
    choices: list[str] = []
    for i in range(len(found.headers)):
        if guessed.email == i:
            choices.append("email")
        elif guessed.first_name == i:
            choices.append("first_name")
        elif guessed.last_name == i:
            choices.append("last_name")
        else:
            name = next((k for k, v in guessed.fields.items() if v == i), None)
            choices.append(f"field:{name}" if name else "")
    if form is not None:
        choices = [form.get(f"col-{i}", "") for i in range(len(found.headers))]
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


def _mapping_from_form(form, width: int) -> ColumnMapping:
    email = first = last = None
    fields: dict[str, int] = {}
    for i in range(min(width, 500)):
        choice = form.get(f"col-{i}", "")
        if choice == "email":
            if email is not None:
                raise ImportFileError(
                    "invalid_mapping", "Une seule colonne peut contenir les adresses e-mail."
                )
            email = i
        elif choice == "first_name" and first is None:
            first = i
        elif choice == "last_name" and last is None:
            last = i
        elif choice.startswith(("field:", "new:")):
            key = lists.field_key(choice.split(":", 1)[1])
            if key and key not in fields:
                fields[key] = i
    if email is None:
        raise ImportFileError("no_email_column", "Choisissez la colonne des adresses e-mail.")
    return ColumnMapping(email=email, first_name=first, last_name=last, fields=fields)


@bp.route("/lists/<int:list_id>/import/run", methods=["POST"])
@roles_required(*WRITE)
def import_run(list_id: int):
    """Step 3: record the batch with its evidence and hand it to the import job."""
    from contacts.actors import enqueue_import

    org_id = current_org_id()
    mlist = _found(lists.get_list(org_id, list_id))
    form = request.form
    path = _found(uploads.find_upload(_upload_root(), org_id, form.get("upload_id", "")))
    try:
        fmt = FileFormat.from_dict(json.loads(form.get("format", "{}")))
        found = preview(path, limits=_limits(), known_fields=list(mlist.custom_fields))
        mapping = _mapping_from_form(form, len(found.headers))
    except (ImportFileError, ValueError) as exc:
        message = exc.message if isinstance(exc, ImportFileError) else _("Formulaire invalide.")
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
            mlist, stored.upload_id, stored.filename, found, error=exc.message, form=form
        )
    db.session.commit()
    enqueue_import(org_id, batch.id)
    return redirect(url_for("contacts.import_detail", batch_id=batch.id))


@bp.route("/imports")
@roles_required(*READ)
def import_history():
    org_id = current_org_id()
    page = _page()
    batches = imports.list_imports(org_id, limit=PAGE, offset=(page - 1) * PAGE)
    names = consent_history.list_names(org_id, [b.list_id for b in batches])
    return render_template(
        "contacts/imports.html", batches=batches, list_names=names, page=page, page_size=PAGE
    )


@bp.route("/imports/<int:batch_id>")
@roles_required(*READ)
def import_detail(batch_id: int):
    org_id = current_org_id()
    batch = _found(imports.get_import(org_id, batch_id))
    mlist = lists.get_list(org_id, batch.list_id)
    uploader = db.session.get(User, batch.uploaded_by_id) if batch.uploaded_by_id else None
    report = batch.rejected or []
    return render_template(
        "contacts/import_detail.html",
        batch=batch,
        mlist=mlist,
        uploader=uploader,
        report=report[:REPORT_SHOWN],
        report_total=len(report),
        rejected_total=len(rejected_for_api(batch)),
    )


@bp.route("/imports/<int:batch_id>/status")
@roles_required(*READ)
def import_status(batch_id: int):
    """Polled by import-progress.js for the progress bar."""
    batch = _found(imports.get_import(current_org_id(), batch_id))
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
    batch = _found(imports.get_import(current_org_id(), batch_id))
    data = rows_to_csv_bytes(REPORT_HEADER, report_rows(batch))
    return _download(data, f"rapport-import-{batch.id}.csv", "text/csv; charset=utf-8")


# ---------------------------------------------------------------------------- suppression


@bp.route("/suppressions", methods=["GET", "POST"])
@roles_required(*READ)
def suppressions():
    org_id = current_org_id()
    checked: dict[str, Any] | None = None
    if request.method == "POST":
        if current_user.role not in WRITE:
            abort(403)
        address = people.checked_email(request.form.get("email", ""))
        if request.form.get("action") == "add":
            contact = people.find_contact(org_id, address)
            if contact is not None:
                consent.withdraw_all(
                    org_id, contact.id, _secret(), method="officer", actor_user_id=current_user.id
                )
            else:
                suppression.suppress(org_id, address, "unsubscribed", _secret())
            db.session.commit()
            flash(_("Adresse ajoutée à la liste d'opposition."), "success")
            return redirect(url_for("contacts.suppressions"))
        row = suppression.get_suppression(org_id, address, _secret())
        checked = {"email": address, "row": row}
    page = _page()
    return render_template(
        "contacts/suppressions.html",
        rows=suppression.list_suppressions(org_id, limit=PAGE, offset=(page - 1) * PAGE),
        by_reason=suppression.count_by_reason(org_id),
        checked=checked,
        page=page,
        page_size=PAGE,
    )


# ---------------------------------------------------------------------------- segments


@bp.route("/segments")
@roles_required(*READ)
def segment_index():
    org_id = current_org_id()
    found = segments.all_segments(org_id)
    counts = {}
    for seg in found:
        try:
            counts[seg.id] = segments.count_matching(org_id, seg.filter)
        except DomainError:  # a list or field it used has gone
            counts[seg.id] = None
    return render_template("contacts/segments.html", segments=found, counts=counts)


def _segment_form(segment=None, flt=None, name: str = "", error: str = "", status: int = 200):
    org_id = current_org_id()
    flt = flt or (segment.filter if segment else {"match": "all", "rules": []})
    return render_template(
        "contacts/segment_form.html",
        segment=segment,
        name=name or (segment.name if segment else ""),
        flt=flt,
        rules=(flt.get("rules") or []) + [{}] * max(0, 6 - len(flt.get("rules") or [])),
        fields=segments.FIELDS,
        custom=segments.custom_field_names(org_id),
        op_labels=segments.OP_LABELS,
        custom_ops=segments.CUSTOM_OPS,
        lists=lists.all_lists(org_id),
        statuses=list(ContactStatus),
        sources=list(Source),
        error=error,
    ), status


@bp.route("/segments/new", methods=["GET", "POST"])
@roles_required(*WRITE)
def new_segment():
    if request.method == "GET":
        return _segment_form()
    flt = segments.filter_from_form(request.form)
    try:
        seg = segments.create_segment(current_org_id(), request.form.get("name", ""), flt)
    except DomainError as exc:
        db.session.rollback()
        return _segment_form(
            flt=flt, name=request.form.get("name", ""), error=exc.message, status=400
        )
    db.session.commit()
    flash(_("Segment enregistré."), "success")
    return redirect(url_for("contacts.edit_segment", segment_id=seg.id))


@bp.route("/segments/<int:segment_id>", methods=["GET", "POST"])
@roles_required(*READ)
def edit_segment(segment_id: int):
    org_id = current_org_id()
    seg = _found(segments.get_segment(org_id, segment_id))
    if request.method == "GET":
        return _segment_form(seg)
    if current_user.role not in WRITE:
        abort(403)
    if request.form.get("action") == "delete":
        segments.delete_segment(org_id, seg.id)
        db.session.commit()
        flash(_("Segment supprimé."), "success")
        return redirect(url_for("contacts.segment_index"))
    flt = segments.filter_from_form(request.form)
    try:
        segments.update_segment(org_id, seg.id, request.form.get("name", ""), flt)
    except DomainError as exc:
        db.session.rollback()
        return _segment_form(
            seg, flt=flt, name=request.form.get("name", ""), error=exc.message, status=400
        )
    db.session.commit()
    flash(_("Segment enregistré."), "success")
    return redirect(url_for("contacts.edit_segment", segment_id=seg.id))


@bp.route("/segments/count", methods=["POST"])
@roles_required(*READ)
def segment_count():
    """Live count for the segment editor (contacts-segments.js posts the form)."""
    org_id = current_org_id()
    body = request.get_json(silent=True)
    flt = body.get("filter") if isinstance(body, dict) else segments.filter_from_form(request.form)
    try:
        return jsonify({"count": segments.count_matching(org_id, flt)})
    except DomainError as exc:
        return jsonify({"error": {"code": exc.code, "message": exc.message}}), 400
