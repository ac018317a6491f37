"""Who is on which list, read from the ledger's projection, and who may be sent to.

"Sendable" is derived, never stored: subscription ``active``, not risky-and-unconfirmed,
contact ``active`` (``Contact.status`` mirrors suppression, see ``contacts.suppression``).
:func:`sendable_clause` is that rule in SQL, :func:`subscription_is_sendable` in Python.
Writing the projection is ``contacts.consent``'s alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select

from contacts.db import db
from contacts.i18n import N_
from contacts.models import Contact, ContactStatus, MailingList, Subscription, SubscriptionStatus


def sendable_clause() -> ColumnElement[bool]:
    """SQL condition over ``Subscription`` joined to ``Contact``: may this row be sent to?"""
    return and_(
        Subscription.status == SubscriptionStatus.ACTIVE,
        or_(Subscription.is_risky == false(), Subscription.confirmed_at.is_not(None)),
        Contact.status == ContactStatus.ACTIVE,
    )


def sendable_contact_ids(org_id: int, list_ids: Sequence[int]) -> Select[tuple[int]]:
    """``SELECT DISTINCT contact_id`` of the sendable members of ``list_ids`` (for freezing)."""
    return (
        select(Subscription.contact_id)
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(
            Subscription.organisation_id == org_id,
            Contact.organisation_id == org_id,
            Subscription.list_id.in_(list(list_ids)),
            sendable_clause(),
        )
        .distinct()
    )


def is_sendable(org_id: int, contact_id: int, list_id: int) -> bool:
    found = db.session.scalar(
        select(Subscription.id)
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(
            Subscription.organisation_id == org_id,
            Subscription.contact_id == contact_id,
            Subscription.list_id == list_id,
            sendable_clause(),
        )
    )
    return found is not None


def subscription_is_sendable(sub: Subscription, contact: Contact) -> bool:
    """The same rule as :func:`sendable_clause`, in Python, for pages."""
    return (
        sub.status == SubscriptionStatus.ACTIVE
        and (not sub.is_risky or sub.confirmed_at is not None)
        and contact.status == ContactStatus.ACTIVE
    )


def subscriptions_of(org_id: int, contact_id: int) -> list[tuple[Subscription, MailingList]]:
    rows = db.session.execute(
        select(Subscription, MailingList)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.organisation_id == org_id, Subscription.contact_id == contact_id)
        .order_by(MailingList.name, MailingList.id)
    )
    return [(s, m) for s, m in rows]


def list_members(
    org_id: int, list_id: int, *, limit: int = 50, offset: int = 0
) -> list[tuple[Subscription, Contact]]:
    """One page of a list's members, newest subscription first."""
    rows = db.session.execute(
        select(Subscription, Contact)
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(Subscription.organisation_id == org_id, Subscription.list_id == list_id)
        .order_by(Subscription.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [(s, c) for s, c in rows]


EXPORT_HEADER = [
    N_("E-mail"),
    N_("Prénom"),
    N_("Nom"),
    N_("Statut"),
    N_("Inscription"),
    N_("Origine"),
    N_("Base légale"),
]
"""Column titles of a list export (French message ids: the edge translates them)."""


def export_rows(org_id: int, mlist: MailingList) -> tuple[list[str], Iterator[list[Any]]]:
    """The header and rows of a list's members for a spreadsheet, custom fields last.

    Rows are values as stored (status, source and basis codes); the caller writes them
    through ``contacts.spreadsheet``, which makes them formula-safe.
    """
    fields = list(mlist.custom_fields or [])
    rows = db.session.execute(
        select(Subscription, Contact)
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(Subscription.organisation_id == org_id, Subscription.list_id == mlist.id)
        .order_by(Contact.id)
    )
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
    return EXPORT_HEADER + fields, body
