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
  contact ``active`` (``Contact.status`` mirrors suppression, see ``contacts.suppression``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, event, false, or_, select, text

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

SOURCE_LABELS = {
    Source.WEB_FORM: "formulaire web",
    Source.EVENT_SIGNUP: "inscription à un événement",
    Source.INTERNAL_FILE: "fichier interne",
    Source.DIRECTORY: "annuaire",
    Source.EXCHANGED: "fichier échangé avec un autre organisme",
    Source.PURCHASED: "fichier acheté",
    Source.UNKNOWN: "origine inconnue",
    Source.API: "API",
}
LEGAL_BASIS_LABELS = {
    LegalBasis.CONSENT: "consentement",
    LegalBasis.PUBLIC_TASK: "mission de service public",
}
ACTION_LABELS = {
    ConsentAction.GRANT: "inscription",
    ConsentAction.CONFIRM: "confirmation",
    ConsentAction.WITHDRAW: "retrait",
}


# The ledger is append-only: refuse any ORM update or delete of one of its rows.
@event.listens_for(ConsentEvent, "before_update")
def _refuse_update(mapper: Any, connection: Any, target: ConsentEvent) -> None:
    raise DomainError("ledger_append_only", "Le registre des consentements ne se modifie pas.")


@event.listens_for(ConsentEvent, "before_delete")
def _refuse_delete(mapper: Any, connection: Any, target: ConsentEvent) -> None:
    raise DomainError("ledger_append_only", "Le registre des consentements ne s'efface pas.")


def check_source(source: str) -> str:
    if source not in {s.value for s in Source}:
        allowed = ", ".join(s.value for s in Source)
        raise DomainError("invalid_source", f"Origine inconnue « {source} » (attendu : {allowed}).")
    return source


def check_legal_basis(legal_basis: str) -> str:
    if legal_basis not in {b.value for b in LegalBasis}:
        raise DomainError(
            "invalid_legal_basis",
            f"Base légale inconnue « {legal_basis} » (attendu : consent ou public_task).",
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
        raise DomainError("invalid_action", f"Action de consentement inconnue « {action} ».")
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


def bulk_grant(
    org_id: int,
    mlist: MailingList,
    grants: Sequence[tuple[int, dict[str, Any]]],
    *,
    source: str,
    legal_basis: str,
    import_batch_id: int | None = None,
    actor_user_id: int | None = None,
    api_token_id: int | None = None,
    at: dt.datetime | None = None,
    executor: Any = None,
) -> int:
    """Grant many contacts on one list in bulk (imports); returns how many were granted.

    ``grants`` are ``(contact_id, evidence)`` for active contacts with no subscription on
    the list yet: the caller (``contacts.imports``) has sorted out duplicates, withdrawals
    and suppressed addresses. The rule is :func:`record_consent`'s for a file: active at
    once, or pending and flagged when the source is risky (double opt-in concerns forms).
    A subscription created meanwhile by a concurrent sign-up is left alone (not counted).
    ``mlist`` needs only ``id`` and ``purpose``; ``executor`` is the session (default) or
    a Connection (the import's writer thread). The caller commits.
    """
    if not grants:
        return 0
    check_source(source)
    check_legal_basis(legal_basis)
    at = at or utcnow()
    risky = is_risky(source)
    status = SubscriptionStatus.PENDING if risky else SubscriptionStatus.ACTIVE
    from contacts.dialect import dialect_of

    executor = executor if executor is not None else db.session
    if dialect_of(executor) == "postgresql":
        return _pg_bulk_grant(
            executor, org_id, mlist, grants, status, source, legal_basis, risky, at,
            import_batch_id, actor_user_id, api_token_id,
        )  # fmt: skip
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    table = Subscription.__table__
    inserted = executor.execute(
        sqlite_insert(table)
        .on_conflict_do_nothing(index_elements=["list_id", "contact_id"])
        .returning(table.c.contact_id),
        [
            {
                "organisation_id": org_id,
                "list_id": mlist.id,
                "contact_id": contact_id,
                "status": status,
                "source": source,
                "legal_basis": legal_basis,
                "is_risky": risky,
                "tracking_consent": False,
                "created_at": at,
            }
            for contact_id, _ in grants
        ],
    )
    done = {contact_id for (contact_id,) in inserted}
    grants = [(contact_id, evidence) for contact_id, evidence in grants if contact_id in done]
    if not grants:
        return 0
    executor.execute(
        ConsentEvent.__table__.insert(),
        [
            {
                "organisation_id": org_id,
                "contact_id": contact_id,
                "list_id": mlist.id,
                "purpose": mlist.purpose,
                "action": ConsentAction.GRANT,
                "legal_basis": legal_basis,
                "source": source,
                "evidence": evidence,
                "actor_user_id": actor_user_id,
                "import_batch_id": import_batch_id,
                "api_token_id": api_token_id,
                "created_at": at,
            }
            for contact_id, evidence in grants
        ],
    )
    return len(grants)


# PostgreSQL: the grants go in by COPY into a temporary table, then two INSERT ... SELECT
# (see contacts.dialect.pg_copy_rows and bench/reports/import.md for why).
_PG_GRANT_ROWS = "crieur_import_grants"
# One statement: subscriptions first, then a ledger row for each subscription really
# inserted (a concurrent sign-up for the same address and list wins, and is not doubled).
_PG_INSERT_GRANTS = text(
    f"""
    WITH inserted AS (
        INSERT INTO subscriptions (organisation_id, list_id, contact_id, status, source,
                                   legal_basis, is_risky, tracking_consent, created_at)
        SELECT :org_id, :list_id, t.contact_id, :status, :source, :legal_basis, :is_risky,
               false, :at
        FROM {_PG_GRANT_ROWS} AS t
        ON CONFLICT (list_id, contact_id) DO NOTHING
        RETURNING contact_id
    )
    INSERT INTO consent_events (organisation_id, contact_id, list_id, purpose, action,
                                legal_basis, source, evidence, actor_user_id,
                                import_batch_id, api_token_id, created_at)
    SELECT :org_id, t.contact_id, :list_id, :purpose, :action, :legal_basis, :source,
           CAST(t.evidence AS json), :actor_user_id, :import_batch_id, :api_token_id, :at
    FROM inserted JOIN {_PG_GRANT_ROWS} AS t ON t.contact_id = inserted.contact_id
    """
)


def _pg_bulk_grant(
    executor: Any,
    org_id: int,
    mlist: MailingList,
    grants: Sequence[tuple[int, dict[str, Any]]],
    status: str,
    source: str,
    legal_basis: str,
    risky: bool,
    at: dt.datetime,
    import_batch_id: int | None,
    actor_user_id: int | None,
    api_token_id: int | None,
) -> int:
    from contacts.dialect import pg_copy_rows

    pg_copy_rows(
        executor,
        _PG_GRANT_ROWS,
        "contact_id integer, evidence text",
        [(contact_id, json.dumps(evidence)) for contact_id, evidence in grants],
    )
    result = executor.execute(
        _PG_INSERT_GRANTS,
        {
            "org_id": org_id,
            "list_id": mlist.id,
            "source": source,
            "legal_basis": legal_basis,
            "at": at,
            "status": str(status),
            "is_risky": risky,
            "purpose": mlist.purpose,
            "action": str(ConsentAction.GRANT),
            "actor_user_id": actor_user_id,
            "import_batch_id": import_batch_id,
            "api_token_id": api_token_id,
        },
    )
    return result.rowcount


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


# ---------------------------------------------------------------------------- reading


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


def consent_history(org_id: int, contact_id: int) -> list[ConsentEvent]:
    """The contact's ledger, oldest first."""
    return list(
        db.session.scalars(
            scoped(ConsentEvent, org_id)
            .where(ConsentEvent.contact_id == contact_id)
            .order_by(ConsentEvent.created_at, ConsentEvent.id)
        )
    )


def subscriptions_of(org_id: int, contact_id: int) -> list[tuple[Subscription, MailingList]]:
    rows = db.session.execute(
        select(Subscription, MailingList)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.organisation_id == org_id, Subscription.contact_id == contact_id)
        .order_by(MailingList.name, MailingList.id)
    )
    return [(s, m) for s, m in rows]


def event_as_dict(entry: ConsentEvent, list_names: dict[int, str] | None = None) -> dict[str, Any]:
    """A ledger row as JSON (API, access export)."""
    return {
        "id": entry.id,
        "at": entry.created_at.isoformat() if entry.created_at else None,
        "action": entry.action,
        "list_id": entry.list_id,
        "list_name": (list_names or {}).get(entry.list_id or 0),
        "purpose": entry.purpose,
        "legal_basis": entry.legal_basis,
        "source": entry.source,
        "evidence": entry.evidence or {},
        "actor_user_id": entry.actor_user_id,
        "import_batch_id": entry.import_batch_id,
        "api_token_id": entry.api_token_id,
    }


def list_names(org_id: int, list_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in list_ids if i}
    if not ids:
        return {}
    rows = db.session.execute(
        select(MailingList.id, MailingList.name).where(
            MailingList.organisation_id == org_id, MailingList.id.in_(ids)
        )
    )
    return {i: n for i, n in rows}
