"""``/contacts``: lookup by address, one contact with its consent history, GDPR export and
erasure (CONTRACT.md).

A ``PUT`` changes names and custom fields only: ``organisation_id``, ``status``,
``consent`` or ``suppressed`` in the body are ignored, since they belong to the ledger and
the suppression list. Another body's contact is a 404; an analyst gets 403.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request

from analytics import contact_data
from contacts import consent_history, memberships, people, segments
from contacts.db import db
from webapp.api import api_roles, bp, json_body, not_found, org_id

READ = ("officer", "director", "admin")
WRITE = ("officer", "admin")
MAX_LIMIT = 500


def contact_json(oid: int, contact) -> dict[str, Any]:
    out = people.contact_as_dict(contact)
    out["subscriptions"] = [
        {
            "list_id": m.id,
            "list_name": m.name,
            "status": s.status,
            "source": s.source,
            "legal_basis": s.legal_basis,
            "is_risky": s.is_risky,
            "sendable": memberships.subscription_is_sendable(s, contact),
            "confirmed_at": s.confirmed_at.isoformat() if s.confirmed_at else None,
        }
        for s, m in memberships.subscriptions_of(oid, contact.id)
    ]
    return out


def _contact_or_404(oid: int, contact_id: int):
    contact = people.get_contact(oid, contact_id)
    if contact is None:
        raise not_found("contact")
    return contact


@bp.get("/contacts")
@api_roles(*READ)
def find_contacts():
    """Contacts of the body: by exact address (``?email=``), else a page of them.
    ---
    get:
      summary: Find contacts
      parameters:
        - {in: query, name: email, schema: {type: string}, description: any case or spacing}
        - {in: query, name: q, schema: {type: string}}
        - {in: query, name: limit, schema: {type: integer, maximum: 500}}
        - {in: query, name: offset, schema: {type: integer}}
      responses:
        200: {description: "{contacts: [...]}"}
        403: {description: analyst}
    """
    oid = org_id()
    if "email" in request.args:
        found = people.find_contact(oid, request.args.get("email", "")[:400])
        return {"contacts": [contact_json(oid, found)] if found is not None else []}
    limit = min(max(request.args.get("limit", 100, type=int) or 100, 1), MAX_LIMIT)
    offset = max(request.args.get("offset", 0, type=int) or 0, 0)
    page = people.search_contacts(
        oid, q=request.args.get("q", "")[:200], limit=limit, offset=offset
    )
    return {"contacts": [people.contact_as_dict(c) for c in page]}


@bp.get("/contacts/<int:contact_id>")
@api_roles(*READ)
def get_contact(contact_id: int):
    """One contact, its lists and its consent history (oldest first).
    ---
    get:
      summary: A contact with its consent history
      parameters:
        - {in: path, name: contact_id, required: true, schema: {type: integer}}
      responses:
        200: {description: "the contact, subscriptions and consent_history"}
        404: {description: not found or another body's}
    """
    oid = org_id()
    contact = _contact_or_404(oid, contact_id)
    out = contact_json(oid, contact)
    history = consent_history.consent_history(oid, contact.id)
    names = consent_history.list_names(oid, [e.list_id for e in history])
    out["consent_history"] = [consent_history.event_as_dict(e, names) for e in history]
    return out


@bp.put("/contacts/<int:contact_id>")
@api_roles(*WRITE)
def update_contact(contact_id: int):
    """Change a contact's names and custom fields; other keys are ignored.
    ---
    put:
      summary: Update a contact
      parameters:
        - {in: path, name: contact_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                first_name: {type: string}
                last_name: {type: string}
                fields: {type: object}
      responses:
        200: {description: the contact}
        404: {description: not found or another body's}
    """
    oid = org_id()
    contact = _contact_or_404(oid, contact_id)
    body = json_body()
    values = {k: body[k] for k in people.EDITABLE if k in body}
    people.update_contact(oid, contact.id, values, segments.custom_field_names(oid))
    db.session.commit()
    return contact_json(oid, contact)


@bp.get("/contacts/<int:contact_id>/export")
@api_roles(*WRITE)
def export_contact(contact_id: int):
    """GDPR access export: fields, lists, consent history, deliveries and events.
    ---
    get:
      summary: Access export of a contact (GDPR Art. 15)
      parameters:
        - {in: path, name: contact_id, required: true, schema: {type: integer}}
      responses:
        200: {description: "{contact, subscriptions, consent_history, deliveries, events, answers}"}
        404: {description: not found or another body's}
    """
    oid = org_id()
    _contact_or_404(oid, contact_id)
    return contact_data.full_export(oid, contact_id)


@bp.post("/contacts/<int:contact_id>/erase")
@api_roles(*WRITE)
def erase_contact(contact_id: int):
    """GDPR erasure: personal data removed, the address kept only as a suppression hash.
    ---
    post:
      summary: Erase a contact (GDPR Art. 17)
      parameters:
        - {in: path, name: contact_id, required: true, schema: {type: integer}}
      responses:
        200: {description: "{id, status: erased}"}
        404: {description: not found or another body's}
    """
    oid = org_id()
    _contact_or_404(oid, contact_id)
    contact = contact_data.erase_everywhere(
        oid,
        contact_id,
        current_app.config["CRIEUR_SECRET_KEY"],
        actor_user_id=g.api_user.id,
        api_token_id=g.api_token.id,
    )
    db.session.commit()
    return {"id": contact.id, "status": contact.status}
