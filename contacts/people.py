"""Contacts: the people a body writes to. Creation, lookup by address, names, custom fields.

A contact is one normalised address per body (see ``contacts.emails``), with names and
free custom field values (``quartier``, ``commune``…). List membership is not here: it is
the consent ledger's projection (``contacts.consent``). Fields that the law or the ledger
own (status, consent, organisation) are never changed through :func:`update_contact`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, func, or_, select

from contacts.db import DomainError, db, get_scoped, scoped
from contacts.emails import InvalidEmail, clean_email_text, normalise_email, validate_email
from contacts.models import Contact, ContactStatus, Subscription

NAME_MAX = 200
FIELD_MAX = 1000
MAX_FIELDS = 50
FIELD_KEY_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060\ufeff]")


def clean_text(value: Any, cap: int) -> str:
    """One line of plain text: control characters dropped, spaces collapsed, capped."""
    text = "" if value is None else str(value)
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text[:cap].rstrip()


def clean_fields(values: Any, allowed: list[str] | None = None) -> dict[str, str]:
    """Custom field values as ``{key: text}``; keys outside ``allowed`` (when given) dropped."""
    if not isinstance(values, dict):
        return {}
    out: dict[str, str] = {}
    for key, value in values.items():
        key = str(key)
        if allowed is not None and key not in allowed:
            continue
        if not FIELD_KEY_RE.match(key) and allowed is None:
            continue
        out[key] = clean_text(value, FIELD_MAX)
        if len(out) >= MAX_FIELDS:
            break
    return out


def checked_email(value: str) -> str:
    """The normalised address, or a DomainError with the reason in French."""
    try:
        return validate_email(clean_email_text(str(value or "")))
    except InvalidEmail as exc:
        raise DomainError("invalid_email", exc.reason) from None


def get_contact(org_id: int, contact_id: int) -> Contact | None:
    return get_scoped(Contact, org_id, contact_id)


def find_contact(org_id: int, email: str) -> Contact | None:
    """The body's contact with this address (any case, spacing, IDN form), or None."""
    if not email:
        return None
    return db.session.scalars(
        scoped(Contact, org_id).where(Contact.email == normalise_email(str(email)))
    ).first()


def create_contact(
    org_id: int,
    email: str,
    *,
    secret: str | bytes,
    first_name: str = "",
    last_name: str = "",
    fields: dict[str, Any] | None = None,
) -> Contact:
    """A new contact; its status reflects the suppression list (``secret``: the app secret).

    Raises ``invalid_email`` (400) or ``exists`` (409).
    """
    from contacts import suppression

    address = checked_email(email)
    if find_contact(org_id, address) is not None:
        raise DomainError("exists", "Ce contact existe déjà.", status=409)
    contact = Contact(
        organisation_id=org_id,
        email=address,
        first_name=clean_text(first_name, NAME_MAX),
        last_name=clean_text(last_name, NAME_MAX),
        fields=clean_fields(fields or {}),
        status=ContactStatus.ACTIVE,
    )
    blocked = suppression.get_suppression(org_id, address, secret)
    if blocked is not None:
        suppression.mark_contact(contact, blocked.reason)
    db.session.add(contact)
    db.session.flush()
    return contact


def get_or_create_contact(
    org_id: int,
    email: str,
    *,
    secret: str | bytes,
    first_name: str = "",
    last_name: str = "",
    fields: dict[str, Any] | None = None,
) -> tuple[Contact, bool]:
    """The contact with this address, created if missing; empty names are filled in."""
    address = checked_email(email)
    contact = find_contact(org_id, address)
    if contact is None:
        return (
            create_contact(
                org_id,
                address,
                secret=secret,
                first_name=first_name,
                last_name=last_name,
                fields=fields,
            ),
            True,
        )
    if contact.status == ContactStatus.ERASED:
        raise DomainError("erased", "Ce contact a été effacé.", status=409)
    if first_name and not contact.first_name:
        contact.first_name = clean_text(first_name, NAME_MAX)
    if last_name and not contact.last_name:
        contact.last_name = clean_text(last_name, NAME_MAX)
    if fields:
        merged = dict(contact.fields or {})
        for key, value in clean_fields(fields).items():
            if value and not merged.get(key):
                merged[key] = value
        contact.fields = merged
    return contact, False


EDITABLE = ("first_name", "last_name", "fields")


def update_contact(
    org_id: int, contact_id: int, values: dict[str, Any], allowed_fields: list[str] | None = None
) -> Contact:
    """Change names and custom fields; anything else in ``values`` is ignored on purpose.

    Status, consent, suppression and organisation are the ledger's and the law's: a
    ``PUT`` carrying ``organisation_id`` or ``suppressed=false`` changes nothing of them.
    """
    contact = get_contact(org_id, contact_id)
    if contact is None:
        raise DomainError("not_found", "Contact introuvable.", status=404)
    if contact.status == ContactStatus.ERASED:
        raise DomainError("erased", "Ce contact a été effacé.", status=409)
    if "first_name" in values:
        contact.first_name = clean_text(values["first_name"], NAME_MAX)
    if "last_name" in values:
        contact.last_name = clean_text(values["last_name"], NAME_MAX)
    if "fields" in values:
        if not isinstance(values["fields"], dict):
            raise DomainError("invalid_fields", "Les champs personnalisés doivent être un objet.")
        merged = dict(contact.fields or {})
        for key, value in clean_fields(values["fields"], allowed_fields).items():
            if value:
                merged[key] = value
            else:
                merged.pop(key, None)
        contact.fields = merged
    db.session.flush()
    return contact


def search_query(
    org_id: int,
    *,
    q: str = "",
    list_id: int | None = None,
    status: str | None = None,
) -> Select[tuple[Contact]]:
    """Contacts matching a free-text search (address or names), optionally one list."""
    query = scoped(Contact, org_id)
    q = clean_text(q, 200).lower()
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                Contact.email.like(pattern, escape="\\"),
                func.lower(Contact.first_name).like(pattern, escape="\\"),
                func.lower(Contact.last_name).like(pattern, escape="\\"),
            )
        )
    if list_id is not None:
        query = query.where(
            Contact.id.in_(
                select(Subscription.contact_id).where(
                    Subscription.organisation_id == org_id, Subscription.list_id == list_id
                )
            )
        )
    if status:
        query = query.where(Contact.status == status)
    return query.order_by(Contact.id.desc())


def count_contacts(org_id: int) -> int:
    """How many contacts the body has, whatever their status."""
    return db.session.scalar(select(func.count()).select_from(search_query(org_id).subquery()))


def search_contacts(
    org_id: int,
    *,
    q: str = "",
    list_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Contact]:
    query = search_query(org_id, q=q, list_id=list_id, status=status)
    return list(db.session.scalars(query.limit(limit).offset(offset)))


def contact_as_dict(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "fields": contact.fields or {},
        "status": contact.status,
        "created_at": contact.created_at.isoformat() if contact.created_at else None,
        "last_activity_at": contact.last_activity_at.isoformat()
        if contact.last_activity_at
        else None,
    }
