"""Contacts pages: the suppression list (objections, hard bounces, erasures)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from contacts import consent, people, suppression
from contacts.db import db
from webapp.auth import current_org_id, roles_required
from webapp.views.contacts import PAGE, READ, WRITE, bp, page_number, secret


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
                    org_id, contact.id, secret(), method="officer", actor_user_id=current_user.id
                )
            else:
                suppression.suppress(org_id, address, "unsubscribed", secret())
            db.session.commit()
            flash(_("Adresse ajoutée à la liste d'opposition."), "success")
            return redirect(url_for("contacts.suppressions"))
        row = suppression.get_suppression(org_id, address, secret())
        checked = {"email": address, "row": row}
    page = page_number()
    return render_template(
        "contacts/suppressions.html",
        rows=suppression.list_suppressions(org_id, limit=PAGE, offset=(page - 1) * PAGE),
        by_reason=suppression.count_by_reason(org_id),
        checked=checked,
        page=page,
        page_size=PAGE,
    )
