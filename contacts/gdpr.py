"""GDPR for one contact: access export (Art. 15), erasure (Art. 17), and retention flags.

Only the contact side is here: the deliveries and tracking events naming a contact sit
in ``campaigns`` and ``analytics``, which this package cannot see;
``analytics.contact_data`` adds them and is what the pages and the API call.

Erasure removes the personal data (address, names, custom fields) and keeps:
- a salted hash of the address in the suppression list, so the address is never
  imported again (CNIL: objections are kept, as hashes);
- the anonymised contact row, so the ledger (proof of consent and of its withdrawal)
  and the campaigns' aggregates still add up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, bindparam, func, or_, update

from contacts import consent, consent_history, memberships
from contacts.db import DomainError, db, scoped, utcnow
from contacts.models import Contact, ContactStatus
from contacts.people import contact_as_dict, get_contact

ERASED_DOMAIN = "erased.invalid"


def _contact_or_404(org_id: int, contact_id: int) -> Contact:
    contact = get_contact(org_id, contact_id)
    if contact is None:
        raise DomainError("not_found", "Contact introuvable.", status=404)
    return contact


def export_contact(org_id: int, contact_id: int) -> dict[str, Any]:
    """What the body holds about the contact, contact side: fields, lists, consent history."""
    contact = _contact_or_404(org_id, contact_id)
    subs = memberships.subscriptions_of(org_id, contact.id)
    history = consent_history.consent_history(org_id, contact.id)
    names = consent_history.list_names(org_id, [e.list_id for e in history])
    return {
        "exported_at": utcnow().isoformat(),
        "contact": contact_as_dict(contact),
        "subscriptions": [
            {
                "list_id": m.id,
                "list_name": m.name,
                "purpose": m.purpose,
                "status": s.status,
                "source": s.source,
                "legal_basis": s.legal_basis,
                "is_risky": s.is_risky,
                "tracking_consent": s.tracking_consent,
                "sendable": memberships.subscription_is_sendable(s, contact),
                "created_at": s.created_at.isoformat() if s.created_at else None,
                "confirmed_at": s.confirmed_at.isoformat() if s.confirmed_at else None,
                "withdrawn_at": s.withdrawn_at.isoformat() if s.withdrawn_at else None,
            }
            for s, m in subs
        ],
        "consent_history": [consent_history.event_as_dict(e, names) for e in history],
    }


def erase_contact(
    org_id: int,
    contact_id: int,
    secret: str | bytes,
    *,
    actor_user_id: int | None = None,
    api_token_id: int | None = None,
) -> Contact:
    """Erase the contact's personal data; idempotent. Flushes; the caller commits."""
    contact = _contact_or_404(org_id, contact_id)
    if contact.status == ContactStatus.ERASED:
        return contact
    consent.withdraw_all(
        org_id,
        contact.id,
        secret,
        method="erasure",
        reason="erased",
        actor_user_id=actor_user_id,
        api_token_id=api_token_id,
    )
    contact.email = f"erased-{contact.id}@{ERASED_DOMAIN}"
    contact.first_name = ""
    contact.last_name = ""
    contact.fields = {}
    contact.last_activity_at = None
    contact.status = ContactStatus.ERASED
    db.session.flush()
    return contact


def stale_cutoff(months: int, now: dt.datetime | None = None) -> dt.datetime:
    """The date before which a contact with no activity needs re-permission."""
    now = now or utcnow()
    return now - dt.timedelta(days=round(months * 30.44))


def stale_contacts_query(
    org_id: int, months: int, now: dt.datetime | None = None
) -> Select[tuple[Contact]]:
    """Active contacts with no activity they initiated for ``months`` (CNIL: 3 years).

    Activity is the last time the person acted (subscribed, confirmed, clicked), else
    the date they were added. An open is not an activity (CNIL), so it does not count.
    """
    cutoff = stale_cutoff(months, now)
    last = func.coalesce(Contact.last_activity_at, Contact.created_at)
    return scoped(Contact, org_id).where(Contact.status == ContactStatus.ACTIVE, last < cutoff)


def count_stale(org_id: int, months: int, now: dt.datetime | None = None) -> int:
    query = stale_contacts_query(org_id, months, now)
    return db.session.scalar(query.with_only_columns(func.count(Contact.id))) or 0


def is_stale(contact: Contact, months: int, now: dt.datetime | None = None) -> bool:
    last = contact.last_activity_at or contact.created_at
    return (
        contact.status == ContactStatus.ACTIVE
        and last is not None
        and last < stale_cutoff(months, now)
    )


def record_activity(executor: Any, activity: dict[int, dt.datetime]) -> None:
    """Move contacts' ``last_activity_at`` forward to when they acted (never back).

    Called for what the person initiates outside the ledger (a click stored per contact,
    an RSVP or poll answer): the retention clock of :func:`stale_contacts_query` starts
    again, as the CNIL counts a click, not an open. One statement for a whole batch
    (``executor``: a session or a connection; the caller commits).
    """
    if not activity:
        return
    table = Contact.__table__  # Core: one executemany, not the ORM's bulk update by key
    executor.execute(
        update(table)
        .where(
            table.c.id == bindparam("cid"),
            or_(table.c.last_activity_at.is_(None), table.c.last_activity_at < bindparam("at")),
        )
        .values(last_activity_at=bindparam("at")),
        [{"cid": cid, "at": at} for cid, at in sorted(activity.items())],
    )
