"""Builders for contacts, through the real services (the consent ledger, suppression).

``make_contact(org, list=lst)`` gives a sendable contact on ``lst``; pass ``source`` /
``confirmed`` / ``status`` to build the other cases::

    make_contact(org, lst, source="purchased", confirmed=False)  # risky, awaiting re-permission
    make_contact(org, lst, status="bounced")                      # suppressed
"""

from __future__ import annotations

import itertools
from typing import Any

from flask import current_app

from contacts.db import db

_counter = itertools.count(1)


def secret() -> str:
    """The app secret, as the services expect it (``CRIEUR_SECRET_KEY``)."""
    return current_app.config["CRIEUR_SECRET_KEY"]


def make_contact(
    org,
    list=None,  # noqa: A002 - the name the brief and the other builders use
    source: str = "web_form",
    legal_basis: str = "consent",
    email: str | None = None,
    status: str = "active",
    confirmed: bool = True,
    first_name: str = "",
    last_name: str = "",
    fields: dict[str, Any] | None = None,
    tracking_consent: bool | None = None,
):
    """A contact of ``org``, optionally granted on ``list`` (and confirmed when it waits).

    ``confirmed=True`` confirms whatever is pending (double opt-in, re-permission);
    ``status`` other than ``active`` suppresses the address with that reason.
    """
    from contacts import consent, people, suppression

    n = next(_counter)
    contact = people.create_contact(
        org.id,
        email or f"contact{n}@habitants.example.fr",
        secret=secret(),
        first_name=first_name or f"Prénom{n}",
        last_name=last_name or f"Nom{n}",
        fields=fields,
    )
    if list is not None:
        consent.record_consent(
            org.id,
            contact.id,
            list.id,
            "grant",
            legal_basis,
            source,
            {"factory": True},
            tracking_consent=tracking_consent,
        )
        sub = consent.get_subscription(org.id, contact.id, list.id)
        if confirmed and sub is not None and sub.status == "pending":
            consent.confirm_subscription(org.id, contact.id, list.id, secret())
    if status != "active":
        reason = {"unsubscribed": "unsubscribed"}.get(status, status)
        suppression.suppress(org.id, contact.email, reason, secret())
    db.session.flush()
    return contact


def make_suppressed(org, email: str, reason: str = "unsubscribed") -> None:
    from contacts import suppression

    suppression.suppress(org.id, email, reason, secret())
    db.session.flush()
