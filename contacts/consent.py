"""The consent ledger and its projection: who agreed to what, when, how, and who may be sent to.

Every grant, confirmation and withdrawal is appended to :class:`ConsentEvent` (GDPR
Art. 7(1): the body must be able to *demonstrate* consent) and, in the same call, folded
into :class:`Subscription`, the current state of one contact on one list. This module is
the only writer of both: membership is never edited in place, so the subscription table
can always be explained by the ledger.

Rules:
- A grant from a risky source (``exchanged``, ``purchased``, ``unknown``: the sector survey's
  bad practices) leaves the subscription ``pending`` and ``is_risky`` until the person
  confirms (re-permission campaign or double opt-in). A risky subscription stays flagged
  after confirmation, so the UI can still tell where the address came from.
- A web-form grant on a double opt-in list is ``pending`` until the person confirms.
- A grant for a contact whose address is suppressed (status other than ``active``) is
  recorded but stays ``pending``: only the person's own confirmation lifts suppression.
- After a withdrawal from a list, only the person (``web_form``, ``event_signup``) can
  subscribe again: an officer's file must not override an objection.
- "Sendable" is derived, never stored: subscription ``active``, not risky-and-unconfirmed,
  contact ``active`` (``Contact.status`` mirrors suppression, see ``contacts.suppression``);
  the rule, and reading who is on which list, are ``contacts.memberships``'.

Grants in bulk (imports) are ``contacts.consent_bulk``'s; reading the ledger back (a
contact's history, the labels pages show) is ``contacts.consent_history``'s.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from contacts.db import DomainError, db, get_scoped, scoped, utcnow
from contacts.models import (
    RISKY_SOURCES,
    ConsentAction,
    ConsentEvent,
    Contact,
    ContactStatus,
    LegalBasis,
    MailingList,
    Source,
    Subscription,
    SubscriptionStatus,
)

PERSON_SOURCES = frozenset({Source.WEB_FORM, Source.EVENT_SIGNUP})
"""Sources where the person acted themselves: only these may re-subscribe after a withdrawal."""

TRACKING_PURPOSE = "tracking"
"""Ledger purpose of the consent to per-contact open and click measurement (CNIL)."""


def check_source(source: str) -> str:
    if source not in {s.value for s in Source}:
        allowed = ", ".join(s.value for s in Source)
        raise DomainError(
            "invalid_source",
            "Origine inconnue « %(source)s » (attendu : %(allowed)s).",
            params={"source": source, "allowed": allowed},
        )
    return source


def check_legal_basis(legal_basis: str) -> str:
    if legal_basis not in {b.value for b in LegalBasis}:
        raise DomainError(
            "invalid_legal_basis",
            "Base légale inconnue « %(basis)s » (attendu : consent ou public_task).",
            params={"basis": legal_basis},
        )
    return legal_basis


def is_risky(source: str) -> bool:
    return source in RISKY_SOURCES


def needs_confirmation(mlist: MailingList, source: str) -> bool:
    """Whether a grant from ``source`` must wait for the person's confirmation."""
    return is_risky(source) or (source == Source.WEB_FORM and bool(mlist.double_opt_in))


def get_subscription(org_id: int, contact_id: int, list_id: int) -> Subscription | None:
    return db.session.scalars(
        scoped(Subscription, org_id).where(
            Subscription.contact_id == contact_id, Subscription.list_id == list_id
        )
    ).first()


def _contact_and_list(org_id: int, contact_id: int, list_id: int) -> tuple[Contact, MailingList]:
    contact = get_scoped(Contact, org_id, contact_id)
    if contact is None:
        raise DomainError("not_found", "Contact introuvable.", status=404)
    mlist = get_scoped(MailingList, org_id, list_id)
    if mlist is None:
        raise DomainError("not_found", "Liste introuvable.", status=404)
    return contact, mlist


def record_consent(
    org_id: int,
    contact_id: int,
    list_id: int,
    action: str,
    legal_basis: str | None = None,
    source: str | None = None,
    evidence: dict[str, Any] | None = None,
    *,
    actor_user_id: int | None = None,
    import_batch_id: int | None = None,
    api_token_id: int | None = None,
    tracking_consent: bool | None = None,
    at: dt.datetime | None = None,
) -> ConsentEvent:
    """Append one grant, confirmation or withdrawal to the ledger and update the projection.

    ``legal_basis`` and ``source`` are required for a grant; a confirmation or withdrawal
    defaults them to the subscription's. ``evidence`` is stored as given (JSON): the form
    URL and wording, the confirmation time, the channel of a withdrawal… never the address.
    Flushes; the caller commits.
    """
    at = at or utcnow()
    if action not in {a.value for a in ConsentAction}:
        raise DomainError(
            "invalid_action",
            "Action de consentement inconnue « %(action)s ».",
            params={"action": action},
        )
    contact, mlist = _contact_and_list(org_id, contact_id, list_id)
    sub = get_subscription(org_id, contact_id, list_id)
    if action == ConsentAction.GRANT:
        if legal_basis is None or source is None:
            raise DomainError("missing_basis", "Une inscription exige une origine et une base.")
        check_legal_basis(legal_basis)
        check_source(source)
        if contact.status == ContactStatus.ERASED:
            raise DomainError("erased", "Ce contact a été effacé.", status=409)
        sub = _apply_grant(org_id, contact, mlist, sub, source, legal_basis, at)
    else:
        if sub is None and action == ConsentAction.CONFIRM:
            raise DomainError(
                "not_subscribed", "Aucune inscription à confirmer sur cette liste.", status=409
            )
        if sub is None:  # an objection to a list never joined: recorded, and remembered
            sub = Subscription(
                organisation_id=org_id,
                list_id=mlist.id,
                contact_id=contact.id,
                status=SubscriptionStatus.WITHDRAWN,
                source=check_source(source or Source.UNKNOWN),
                legal_basis=check_legal_basis(legal_basis or LegalBasis.CONSENT),
                created_at=at,
                withdrawn_at=at,
            )
            db.session.add(sub)
        legal_basis = check_legal_basis(legal_basis or sub.legal_basis)
        source = check_source(source or sub.source)
        if action == ConsentAction.CONFIRM:
            if contact.status == ContactStatus.ERASED:
                raise DomainError("erased", "Ce contact a été effacé.", status=409)
            sub.status = SubscriptionStatus.ACTIVE
            sub.confirmed_at = at
            sub.withdrawn_at = None
            contact.last_activity_at = at  # a contact initiated by the person (CNIL)
        else:
            sub.status = SubscriptionStatus.WITHDRAWN
            sub.withdrawn_at = at
    if tracking_consent is not None:
        sub.tracking_consent = bool(tracking_consent)
    entry = ConsentEvent(
        organisation_id=org_id,
        contact_id=contact.id,
        list_id=mlist.id,
        purpose=mlist.purpose,
        action=action,
        legal_basis=legal_basis,
        source=source,
        evidence=dict(evidence or {}),
        actor_user_id=actor_user_id,
        import_batch_id=import_batch_id,
        api_token_id=api_token_id,
        created_at=at,
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def _apply_grant(
    org_id: int,
    contact: Contact,
    mlist: MailingList,
    sub: Subscription | None,
    source: str,
    legal_basis: str,
    at: dt.datetime,
) -> Subscription:
    waits = needs_confirmation(mlist, source) or contact.status != ContactStatus.ACTIVE
    if sub is None:
        sub = Subscription(
            organisation_id=org_id,
            list_id=mlist.id,
            contact_id=contact.id,
            status=SubscriptionStatus.PENDING if waits else SubscriptionStatus.ACTIVE,
            source=source,
            legal_basis=legal_basis,
            is_risky=is_risky(source),
            created_at=at,
        )
        db.session.add(sub)
        if source in PERSON_SOURCES:
            contact.last_activity_at = at
        return sub
    if sub.status == SubscriptionStatus.ACTIVE:
        return sub  # already in: the new grant is recorded, the provenance kept
    if sub.status == SubscriptionStatus.WITHDRAWN:
        if source not in PERSON_SOURCES:
            raise DomainError(
                "withdrawn",
                "Cette personne s'est désinscrite de cette liste : seule une nouvelle "
                "inscription de sa part peut l'y remettre.",
                status=409,
            )
        sub.withdrawn_at = None
        sub.confirmed_at = None
    # pending (or re-subscribing after a withdrawal)
    sub.source, sub.legal_basis = source, legal_basis
    sub.is_risky = bool(sub.is_risky and sub.status == SubscriptionStatus.PENDING) or is_risky(
        source
    )
    still_waits = waits or sub.is_risky
    sub.status = SubscriptionStatus.PENDING if still_waits else SubscriptionStatus.ACTIVE
    if source in PERSON_SOURCES:
        contact.last_activity_at = at
    return sub


def confirm_subscription(
    org_id: int,
    contact_id: int,
    list_id: int,
    secret: str | bytes,
    evidence: dict[str, Any] | None = None,
    *,
    asked_at: dt.datetime | None = None,
    at: dt.datetime | None = None,
) -> ConsentEvent | None:
    """The person confirmed (double opt-in or re-permission link): make them sendable.

    Lifts a suppression of their address, since they asked again themselves and proved
    they read the mailbox. Returns None when the subscription was already confirmed since
    ``asked_at`` (the link's issue time: a link clicked twice), so nothing new is written.
    """
    from contacts import suppression

    at = at or utcnow()
    contact, _ = _contact_and_list(org_id, contact_id, list_id)
    sub = get_subscription(org_id, contact_id, list_id)
    if sub is None or sub.status == SubscriptionStatus.WITHDRAWN:
        raise DomainError(
            "not_subscribed", "Aucune inscription à confirmer sur cette liste.", status=409
        )
    already = (
        sub.status == SubscriptionStatus.ACTIVE
        and contact.status == ContactStatus.ACTIVE
        and sub.confirmed_at is not None
        and (asked_at is None or sub.confirmed_at >= asked_at)
    )
    if already:
        return None
    if contact.status == ContactStatus.ERASED:
        raise DomainError("erased", "Ce contact a été effacé.", status=409)
    if contact.status != ContactStatus.ACTIVE:
        suppression.lift_suppression(org_id, contact.email, secret)
        contact.status = ContactStatus.ACTIVE
    details = {"confirmed_at": at.isoformat(), **(evidence or {})}
    return record_consent(
        org_id, contact_id, list_id, ConsentAction.CONFIRM, evidence=details, at=at
    )


def withdraw_all(
    org_id: int,
    contact_id: int,
    secret: str | bytes,
    *,
    method: str,
    reason: str = "unsubscribed",
    evidence: dict[str, Any] | None = None,
    actor_user_id: int | None = None,
    api_token_id: int | None = None,
    at: dt.datetime | None = None,
) -> int:
    """Withdraw the contact from every list of the body and suppress the address.

    Used by the one-click unsubscribe, "unsubscribe from all" and erasure. Idempotent:
    a second call writes nothing and returns 0; otherwise returns the ledger rows added.
    ``method`` says how (``one_click``, ``unsubscribe_page``, ``preference_centre``,
    ``erasure``, ``officer``, ``api``, ``bounce``, ``complaint``) and goes into the evidence.
    """
    from contacts import suppression

    at = at or utcnow()
    contact = get_scoped(Contact, org_id, contact_id)
    if contact is None:
        raise DomainError("not_found", "Contact introuvable.", status=404)
    subs = db.session.scalars(
        scoped(Subscription, org_id)
        .where(
            Subscription.contact_id == contact.id,
            Subscription.status != SubscriptionStatus.WITHDRAWN,
        )
        .order_by(Subscription.id)
    ).all()
    details = {"method": method, **(evidence or {})}
    for sub in subs:
        record_consent(
            org_id,
            contact.id,
            sub.list_id,
            ConsentAction.WITHDRAW,
            evidence=details,
            actor_user_id=actor_user_id,
            api_token_id=api_token_id,
            at=at,
        )
    if contact.status != ContactStatus.ERASED:
        suppression.suppress(org_id, contact.email, reason, secret)
    return len(subs)


def record_tracking_consent(
    org_id: int,
    contact_id: int,
    granted: bool,
    evidence: dict[str, Any] | None = None,
    *,
    at: dt.datetime | None = None,
) -> ConsentEvent | None:
    """Record consent to (or refusal of) per-contact measurement; None when unchanged.

    The choice is provable like any consent: one ledger row with purpose ``tracking`` and
    no list, and every subscription of the contact follows it.
    """
    at = at or utcnow()
    contact = get_scoped(Contact, org_id, contact_id)
    if contact is None:
        raise DomainError("not_found", "Contact introuvable.", status=404)
    subs = db.session.scalars(
        scoped(Subscription, org_id).where(Subscription.contact_id == contact.id)
    ).all()
    if subs and all(s.tracking_consent == granted for s in subs):
        return None
    for sub in subs:
        sub.tracking_consent = granted
    entry = ConsentEvent(
        organisation_id=org_id,
        contact_id=contact.id,
        list_id=None,
        purpose=TRACKING_PURPOSE,
        action=ConsentAction.GRANT if granted else ConsentAction.WITHDRAW,
        legal_basis=LegalBasis.CONSENT,
        source=Source.WEB_FORM,
        evidence=dict(evidence or {}),
        created_at=at,
    )
    db.session.add(entry)
    db.session.flush()
    return entry
