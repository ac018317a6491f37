"""Contacts pages: segments (saved filters over contacts) and the editor's live count."""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from contacts import lists, segments
from contacts.db import DomainError, db
from contacts.models import ContactStatus, Source
from webapp.auth import current_org_id, roles_required
from webapp.i18n import error_text
from webapp.views.contacts import READ, WRITE, bp, or_404


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
            flt=flt, name=request.form.get("name", ""), error=error_text(exc), status=400
        )
    db.session.commit()
    flash(_("Segment enregistré."), "success")
    return redirect(url_for("contacts.edit_segment", segment_id=seg.id))


@bp.route("/segments/<int:segment_id>", methods=["GET", "POST"])
@roles_required(*READ)
def edit_segment(segment_id: int):
    org_id = current_org_id()
    seg = or_404(segments.get_segment(org_id, segment_id))
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
            seg, flt=flt, name=request.form.get("name", ""), error=error_text(exc), status=400
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
        return jsonify({"error": {"code": exc.code, "message": error_text(exc)}}), 400
