"""Campaign pages: the list, new from a model, the block editor, review and test sends.

The editor (``campaign-editor.js``) saves the whole content as JSON to :func:`save_content`
and reloads the two preview frames, which are served by :func:`preview_html` under a CSP
that runs no script (the e-mail's own inline styles are the only thing allowed).
Sending, scheduling, pausing and cancelling live in the ``sending`` blueprint.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (
    Blueprint,
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
from sqlalchemy import select

from campaigns import editing, preview, workflow
from campaigns.blocks import BLOCK_TYPES, SOCIAL_NETWORKS, TYPE_LABELS
from campaigns.checks import has_errors
from campaigns.ics import PARIS
from campaigns.mjml import MjmlError
from campaigns.models import Campaign, CampaignStatus
from contacts.db import DomainError, db, scoped
from contacts.models import Contact, MailingList, Organisation, Subscription
from webapp.api.campaigns import TEST_SEND_LIMIT
from webapp.auth import audit, current_org_id, roles_required
from webapp.extensions import limiter
from webapp.i18n import error_text, translate, translate_all
from webapp.models import User
from webapp.templating import STATUS_LABELS
from webapp.views.outbox import PREVIEW_CSP

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

READ = ("officer", "director", "admin")
MAX_PREVIEW_CONTACTS = 50


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = editing.get_campaign(current_org_id(), campaign_id)
    if campaign is None:
        audit("not_found", f"{request.method} {request.path}")
        abort(404)
    return campaign


def _org() -> Organisation:
    return db.session.get(Organisation, current_org_id())


def _lists() -> list[MailingList]:
    return list(
        db.session.scalars(scoped(MailingList, current_org_id()).order_by(MailingList.name))
    )


def _trail(campaign: Campaign) -> list[dict[str, Any]]:
    rows = workflow.transitions_of(campaign.organisation_id, campaign.id)
    ids = {r.user_id for r in rows if r.user_id}
    emails = (
        dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all())
        if ids
        else {}
    )
    return [{"row": r, "user": emails.get(r.user_id, "")} for r in rows]


def _checks(campaign: Campaign) -> tuple[list[dict[str, Any]], str]:
    """The checks, or none and the layout engine's message when it failed."""
    try:
        return editing.campaign_checks(campaign.organisation_id, campaign), ""
    except MjmlError as exc:
        return [], error_text(exc)


def _preview_contacts(campaign: Campaign) -> list[Contact]:
    """A few contacts of the campaign's lists to preview with (their own values)."""
    if not campaign.list_ids:
        return []
    members = select(Subscription.contact_id).where(
        Subscription.organisation_id == campaign.organisation_id,
        Subscription.list_id.in_([i for i in campaign.list_ids if isinstance(i, int)]),
    )
    # No DISTINCT over the rows themselves: PostgreSQL cannot compare JSON columns.
    return list(
        db.session.scalars(
            scoped(Contact, campaign.organisation_id)
            .where(Contact.id.in_(members))
            .order_by(Contact.id)
            .limit(MAX_PREVIEW_CONTACTS)
        )
    )


def _contact_id() -> int | None:
    return request.args.get("contact_id", type=int) or None


# ----------------------------------------------------------------------------- pages


@bp.route("/")
@roles_required(*READ)
def index():
    status = request.args.get("status") or None
    if status and status not in {s.value for s in CampaignStatus}:
        status = None
    campaigns = editing.list_campaigns(current_org_id(), status=status)
    return render_template(
        "campaigns/index.html",
        campaigns=campaigns,
        status=status,
        statuses=[s.value for s in CampaignStatus],
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required("officer")
def new():
    if request.method == "POST":
        key = request.form.get("template", "")
        # A list preselected by the page the officer came from (the re-permission link of a
        # list page); checked like any audience: a foreign list id is refused.
        list_ids = [int(v) for v in request.form.getlist("list_id") if v.isdigit()]
        campaign = editing.create_from_starter(
            current_org_id(),
            key,
            user_id=current_user.id,
            list_ids=editing.check_list_ids(current_org_id(), list_ids) if list_ids else None,
        )
        db.session.commit()
        flash(_("Campagne créée : complétez-la puis soumettez-la pour relecture."), "success")
        return redirect(url_for("campaigns.edit", campaign_id=campaign.id))
    past = [
        c
        for c in editing.list_campaigns(current_org_id(), limit=50)
        if c.status in (CampaignStatus.SENT, CampaignStatus.APPROVED, CampaignStatus.SCHEDULED)
    ][:10]
    return render_template("campaigns/new.html", starters=editing.starters(), past=past)


@bp.route("/<int:campaign_id>")
@roles_required(*READ)
def show(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    found, layout_error = _checks(campaign)
    db.session.commit()  # a first compile is stored
    role = current_user.role
    text = ""
    if not layout_error:
        try:
            text = preview.preview_parts(
                campaign.organisation_id, campaign, contact_id=_contact_id()
            )["text"]
        except DomainError as exc:
            if exc.status != 404:
                raise
            abort(404)
    return render_template(
        "campaigns/show.html",
        text=text,
        campaign=campaign,
        lists=editing.target_lists(campaign.organisation_id, campaign.list_ids or []),
        checks=found,
        layout_error=layout_error,
        can_submit=not has_errors(found) and not layout_error,
        trail=_trail(campaign),
        can_edit=role in workflow.EDIT_ROLES and campaign.status in workflow.EDITABLE,
        can_test=role in workflow.TEST_SEND_ROLES,
        next_statuses=workflow.next_statuses(campaign.status, role),
        contacts=_preview_contacts(campaign),
        contact_id=_contact_id(),
    )


@bp.route("/<int:campaign_id>/edit")
@roles_required("officer")
def edit(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    if campaign.status not in workflow.EDITABLE:
        flash(_("Cette campagne ne peut plus être modifiée : dupliquez-la."), "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    found, layout_error = _checks(campaign)
    db.session.commit()
    data = {
        "id": campaign.id,
        "kind": campaign.kind,
        "version": campaign.version,
        "blocks": campaign.blocks,
        "saveUrl": url_for("campaigns.save_content", campaign_id=campaign.id),
        "previewUrl": url_for("campaigns.preview_html", campaign_id=campaign.id),
        "previewJsonUrl": url_for("campaigns.preview_json", campaign_id=campaign.id),
        "types": [
            {"type": t, "label": translate(TYPE_LABELS[t])}
            for t in BLOCK_TYPES
            if t != "confirm" or campaign.is_repermission
        ],
        "networks": [
            {"key": k, "label": translate(v)} for k, v in SOCIAL_NETWORKS.items() if k != "twitter"
        ],
    }
    return render_template(
        "campaigns/edit.html",
        campaign=campaign,
        all_lists=_lists(),
        event=_event_form(campaign.event),
        checks=found,
        layout_error=layout_error,
        can_submit=not has_errors(found) and not layout_error,
        trail=_trail(campaign),
        editor_data=data,
        text=_text_or_blank(campaign),
        can_test=True,
        contact_id=None,
        contacts=[],
    )


def _event_form(event: dict[str, Any] | None) -> dict[str, Any]:
    """The event as the form shows it: ``datetime-local`` values in Paris time."""
    out = dict(event or {})
    for key in ("starts_at", "ends_at", "rsvp_deadline"):
        value = out.get(key)
        if value:
            try:
                when = dt.datetime.fromisoformat(str(value))
            except ValueError:
                continue
            if when.tzinfo is not None:
                when = when.astimezone(PARIS)
            out[key] = when.strftime("%Y-%m-%dT%H:%M")
    return out


def _text_or_blank(campaign: Campaign) -> str:
    try:
        return preview.preview_parts(campaign.organisation_id, campaign)["text"]
    except MjmlError:
        return ""


@bp.route("/<int:campaign_id>/content", methods=["POST"])
@roles_required("officer")
def save_content(campaign_id: int):
    """The editor's JSON save: the whole content; answers the checks of the new version."""
    campaign = _campaign_or_404(campaign_id)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise DomainError("invalid_json", "Le contenu envoyé n'est pas un objet JSON.")
    was = campaign.status
    changed = editing.update_campaign(
        current_org_id(), campaign, data, user_id=current_user.id, role=current_user.role
    )
    db.session.commit()
    found, layout_error = _checks(campaign)
    db.session.commit()
    notice = ""
    if was != campaign.status and campaign.status == CampaignStatus.IN_REVIEW:
        notice = _("La campagne a été modifiée après approbation : elle repart en relecture.")
    return jsonify(
        {
            "saved": changed,
            "version": campaign.version,
            "status": campaign.status,
            "status_label": str(STATUS_LABELS.get(campaign.status, campaign.status)),
            "notice": notice,
            "layout_error": layout_error,
            "checks": translate_all(found),
            "can_submit": not has_errors(found) and not layout_error,
        }
    )


@bp.route("/<int:campaign_id>/preview.html")
@roles_required(*READ)
def preview_html(campaign_id: int):
    """The message's HTML alone, framed by the editor and the review page; runs no script."""
    campaign = _campaign_or_404(campaign_id)
    try:
        parts = preview.preview_parts(current_org_id(), campaign, contact_id=_contact_id())
    except MjmlError as exc:
        return (
            render_template("campaigns/preview_error.html", message=error_text(exc)),
            503,
            {"Content-Security-Policy": PREVIEW_CSP},
        )
    db.session.commit()
    response = current_app.response_class(parts["html"], mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:campaign_id>/preview.json")
@roles_required(*READ)
def preview_json(campaign_id: int):
    """Subject and plain text of the current version, for the editor's text pane."""
    campaign = _campaign_or_404(campaign_id)
    parts = preview.preview_parts(current_org_id(), campaign, contact_id=_contact_id())
    db.session.commit()
    return jsonify(
        {"subject": parts["subject"], "text": parts["text"], "version": campaign.version}
    )


# --------------------------------------------------------------------------- actions


@bp.route("/<int:campaign_id>/test-send", methods=["POST"])
@limiter.limit(TEST_SEND_LIMIT, key_func=lambda: f"test-send:{current_user.get_id()}")
@roles_required(*workflow.TEST_SEND_ROLES)
def test_send(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    back = _back(campaign)
    try:
        results = preview.send_test(
            _org(),
            campaign,
            request.form.get("emails", ""),
            smtp_url=current_app.config.get("CRIEUR_SMTP_URL", ""),
            contact_id=request.form.get("contact_id", type=int) or None,
        )
    except DomainError as exc:
        db.session.rollback()
        flash(error_text(exc), "error")
        return redirect(back)
    db.session.commit()
    sent = [r["email"] for r in results if r["outcome"] == "sent"]
    failed = [
        f"{r['email']} ({r['message'] or r['outcome']})" for r in results if r["outcome"] != "sent"
    ]
    if sent:
        flash(_("Message de test envoyé à : %(who)s.", who=", ".join(sent)), "success")
    if failed:
        flash(_("Échec de l'envoi de test : %(who)s.", who=", ".join(failed)), "error")
    return redirect(back)


def _back(campaign: Campaign) -> str:
    if request.form.get("back") == "edit" and campaign.status in workflow.EDITABLE:
        return url_for("campaigns.edit", campaign_id=campaign.id)
    return url_for("campaigns.show", campaign_id=campaign.id)


def _act(campaign: Campaign, action, success: str):
    try:
        action()
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        flash(error_text(exc), "error")
        return redirect(_back(campaign))
    db.session.commit()
    flash(success, "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.route("/<int:campaign_id>/submit", methods=["POST"])
@roles_required("officer")
def submit(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    return _act(
        campaign,
        lambda: editing.submit_campaign(
            current_org_id(),
            campaign,
            user_id=current_user.id,
            role=current_user.role,
            comment=request.form.get("comment", ""),
        ),
        _("Campagne soumise pour relecture."),
    )


@bp.route("/<int:campaign_id>/approve", methods=["POST"])
@roles_required("director")
def approve(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    return _act(
        campaign,
        lambda: editing.approve_campaign(
            current_org_id(),
            campaign,
            user_id=current_user.id,
            role=current_user.role,
            comment=request.form.get("comment", ""),
            version=request.form.get("version", type=int),
        ),
        _("Campagne approuvée : elle peut être envoyée ou programmée."),
    )


@bp.route("/<int:campaign_id>/send-back", methods=["POST"])
@roles_required("director")
def send_back(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    return _act(
        campaign,
        lambda: workflow.send_back_campaign(
            current_org_id(),
            campaign,
            current_user.id,
            current_user.role,
            request.form.get("comment", ""),
        ),
        _("Campagne renvoyée en brouillon avec votre commentaire."),
    )


@bp.route("/<int:campaign_id>/duplicate", methods=["POST"])
@roles_required("officer")
def duplicate(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    copy = editing.duplicate_campaign(current_org_id(), campaign, user_id=current_user.id)
    db.session.commit()
    flash(_("Copie créée : vous pouvez la modifier."), "success")
    return redirect(url_for("campaigns.edit", campaign_id=copy.id))
