"""Contacts pages: the people (search, one contact's page and consent timeline, GDPR
access export and erasure, an objection recorded by an officer)."""

from __future__ import annotations

import json

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from analytics import contact_data
from contacts import consent, consent_history, gdpr, imports, lists, memberships, people, segments
from contacts.db import db
from contacts.models import Contact, ContactStatus
from webapp.auth import audit, current_org_id, roles_required
from webapp.models import User
from webapp.templating import current_org
from webapp.views.contacts import PAGE, READ, WRITE, bp, download, or_404, page_number, secret


@bp.route("/people")
@roles_required(*READ)
def people_index():
    org_id = current_org_id()
    q = request.args.get("q", "")[:200]
    list_id = request.args.get("list", type=int)
    status = request.args.get("status") or None
    if status and status not in {s.value for s in ContactStatus}:
        status = None
    page = page_number()
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
    contact = or_404(people.get_contact(org_id, contact_id))
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
    batches = imports.imports_by_id(org_id, batch_ids)
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
    or_404(people.get_contact(org_id, contact_id))
    data = contact_data.full_export(org_id, contact_id)
    audit("gdpr_export", f"contact {contact_id}")
    body = json.dumps(data, ensure_ascii=False, indent=2).encode()
    return download(body, f"contact-{contact_id}.json", "application/json")


@bp.route("/people/<int:contact_id>/erase", methods=["POST"])
@roles_required(*WRITE)
def erase_contact(contact_id: int):
    """GDPR erasure (Art. 17): personal data removed, the address's hash kept as an objection."""
    org_id = current_org_id()
    or_404(people.get_contact(org_id, contact_id))
    if request.form.get("confirm") != "1":
        flash(_("Cochez la case de confirmation pour effacer ce contact."), "error")
        return redirect(url_for("contacts.contact_detail", contact_id=contact_id))
    contact_data.erase_everywhere(org_id, contact_id, secret(), actor_user_id=current_user.id)
    db.session.commit()
    audit("gdpr_erase", f"contact {contact_id}")
    flash(_("Les données personnelles du contact ont été effacées."), "success")
    return redirect(url_for("contacts.contact_detail", contact_id=contact_id))


@bp.route("/people/<int:contact_id>/unsubscribe", methods=["POST"])
@roles_required(*WRITE)
def unsubscribe_contact(contact_id: int):
    """An officer records an objection received by phone, letter or at the counter."""
    org_id = current_org_id()
    or_404(people.get_contact(org_id, contact_id))
    consent.withdraw_all(
        org_id,
        contact_id,
        secret(),
        method="officer",
        actor_user_id=current_user.id,
        evidence={"note": request.form.get("note", "")[:500]},
    )
    db.session.commit()
    flash(
        _("Désinscription enregistrée : l'adresse est ajoutée à la liste d'opposition."), "success"
    )
    return redirect(url_for("contacts.contact_detail", contact_id=contact_id))
