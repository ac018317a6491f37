"""The suppression list: addresses a body must never write to again, kept as salted hashes.

Suppression wins over everything: an unsubscribed, hard-bounced, complaining or erased
address is never re-imported, never re-added by an officer, and never sent to. Only the
person can lift it, by confirming a new subscription through the double opt-in link
(:func:`contacts.consent.confirm_subscription`).

The list stores ``HMAC-SHA256(key, normalised address)`` and nothing else, so an erased
person's address is not kept in clear (GDPR Art. 17) while a later import of the same
address, in any case or spacing, still matches. The key is derived from the app secret
and the body's id: two bodies' hashes of one address differ, so the lists cannot be
correlated across tenants. Consequence: changing ``CRIEUR_SECRET_KEY`` makes existing
hashes unmatchable; the secret is generated once and must be kept.

``Contact.status`` mirrors suppression (``active`` means "not suppressed"), so that
freezing an audience needs no hash computation: :func:`suppress` keeps them in step.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from contacts.db import DomainError, db, scoped
from contacts.emails import hash_email, normalise_email
from contacts.i18n import N_
from contacts.models import Contact, ContactStatus, Suppression

REASONS = ("unsubscribed", "bounced", "complained", "erased")
REASON_LABELS = {
    "unsubscribed": N_("désinscription"),
    "bounced": N_("adresse en échec définitif"),
    "complained": N_("signalement comme indésirable"),
    "erased": N_("effacement (RGPD)"),
}
# The contact status each reason gives, and how strong it is: a stronger one wins.
REASON_STATUS = {
    "unsubscribed": ContactStatus.UNSUBSCRIBED,
    "bounced": ContactStatus.BOUNCED,
    "complained": ContactStatus.COMPLAINED,
    "erased": ContactStatus.ERASED,
}
_SEVERITY = {
    ContactStatus.ACTIVE: 0,
    ContactStatus.UNSUBSCRIBED: 1,
    ContactStatus.BOUNCED: 2,
    ContactStatus.COMPLAINED: 3,
    ContactStatus.ERASED: 4,
}


def suppression_key(secret: str | bytes, org_id: int) -> bytes:
    """The per-body hashing key, derived from the app secret (``CRIEUR_SECRET_KEY``)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    if not raw:
        raise ValueError("the suppression key needs the app secret")
    return hmac.new(raw, f"crieur-suppression:{int(org_id)}".encode(), hashlib.sha256).digest()


def email_hash(org_id: int, email: str, secret: str | bytes) -> str:
    """The suppression hash of ``email`` for one body (64 hex characters)."""
    return hash_email(email, suppression_key(secret, org_id))


def hash_normalised(key: bytes, email: str) -> str:
    """:func:`email_hash` for an address already normalised by ``contacts.emails``.

    Imports hash every row: this skips the second validation ``hash_email`` does, and
    gives the same hash for such an address.
    """
    return hmac.new(key, email.encode(), hashlib.sha256).hexdigest()


def _check_reason(reason: str) -> str:
    if reason not in REASONS:
        raise DomainError(
            "invalid_reason",
            "Motif de suppression inconnu « %(reason)s ».",
            params={"reason": reason},
        )
    return reason


def suppress(org_id: int, email: str, reason: str, secret: str | bytes) -> bool:
    """Add ``email`` to the body's suppression list; True when it was not there yet.

    Also moves the matching contact (if any) to the status the reason gives, unless it
    already has a stronger one. Safe to call twice and from concurrent requests.
    """
    _check_reason(reason)
    digest = email_hash(org_id, email, secret)
    added = False
    if not _exists(org_id, digest):
        try:
            with db.session.begin_nested():
                db.session.add(
                    Suppression(organisation_id=org_id, email_hash=digest, reason=reason)
                )
            added = True
        except IntegrityError:  # a concurrent request suppressed it first
            added = False
    contact = db.session.scalars(
        scoped(Contact, org_id).where(Contact.email == normalise_email(email))
    ).first()
    if contact is not None:
        mark_contact(contact, reason)
    return added


def mark_contact(contact: Contact, reason: str) -> None:
    """Give ``contact`` the status ``reason`` implies, never weakening a stronger one."""
    new = REASON_STATUS[_check_reason(reason)]
    if _SEVERITY[new] > _SEVERITY.get(ContactStatus(contact.status), 0):
        contact.status = new


def _exists(org_id: int, digest: str) -> bool:
    found = db.session.scalar(
        select(Suppression.id).where(
            Suppression.organisation_id == org_id, Suppression.email_hash == digest
        )
    )
    return found is not None


def get_suppression(org_id: int, email: str, secret: str | bytes) -> Suppression | None:
    digest = email_hash(org_id, email, secret)
    return db.session.scalars(
        scoped(Suppression, org_id).where(Suppression.email_hash == digest)
    ).first()


def is_suppressed(org_id: int, email: str, secret: str | bytes) -> bool:
    """True when ``email`` (in any case or spacing) is on the body's suppression list."""
    return _exists(org_id, email_hash(org_id, email, secret))


def suppressed_among(org_id: int, hashes: Iterable[str]) -> set[str]:
    """Which of ``hashes`` are suppressed: one query per call (imports pass a chunk)."""
    from contacts.dialect import dialect_name, pg_any_lookup

    wanted = list(set(hashes))
    if not wanted:
        return set()
    if dialect_name() == "postgresql":
        rows = pg_any_lookup(
            db.session,
            "SELECT email_hash FROM suppressions WHERE organisation_id = %s "
            "AND email_hash = ANY(%s)",
            org_id,
            wanted,
        )
        return {h for (h,) in rows}
    found: set[str] = set()
    for i in range(0, len(wanted), 1000):
        part = wanted[i : i + 1000]
        found.update(
            db.session.scalars(
                select(Suppression.email_hash).where(
                    Suppression.organisation_id == org_id, Suppression.email_hash.in_(part)
                )
            )
        )
    return found


def lift_suppression(org_id: int, email: str, secret: str | bytes) -> bool:
    """Remove ``email`` from the list; only the person's own confirmation may call this."""
    row = get_suppression(org_id, email, secret)
    if row is None:
        return False
    db.session.delete(row)
    return True


def list_suppressions(org_id: int, limit: int = 100, offset: int = 0) -> list[Suppression]:
    """The most recent suppressions first (hashes only: the addresses are not kept)."""
    return list(
        db.session.scalars(
            scoped(Suppression, org_id)
            .order_by(Suppression.created_at.desc(), Suppression.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def count_by_reason(org_id: int) -> dict[str, int]:
    rows = db.session.execute(
        select(Suppression.reason, func.count())
        .where(Suppression.organisation_id == org_id)
        .group_by(Suppression.reason)
    )
    return {reason: n for reason, n in rows}
