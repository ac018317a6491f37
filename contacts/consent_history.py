"""The consent ledger read back: a contact's history, for pages, the API and the access export.

The label tables name the ledger's values (origins, legal bases, actions) for people.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from contacts.db import db, scoped
from contacts.i18n import N_
from contacts.models import ConsentAction, ConsentEvent, LegalBasis, MailingList, Source

SOURCE_LABELS = {
    Source.WEB_FORM: N_("formulaire web"),
    Source.EVENT_SIGNUP: N_("inscription à un événement"),
    Source.INTERNAL_FILE: N_("fichier interne"),
    Source.DIRECTORY: N_("annuaire"),
    Source.EXCHANGED: N_("fichier échangé avec un autre organisme"),
    Source.PURCHASED: N_("fichier acheté"),
    Source.UNKNOWN: N_("origine inconnue"),
    Source.API: N_("API"),
}
LEGAL_BASIS_LABELS = {
    LegalBasis.CONSENT: N_("consentement"),
    LegalBasis.PUBLIC_TASK: N_("mission de service public"),
}
ACTION_LABELS = {
    ConsentAction.GRANT: N_("inscription"),
    ConsentAction.CONFIRM: N_("confirmation"),
    ConsentAction.WITHDRAW: N_("retrait"),
}


def consent_history(org_id: int, contact_id: int) -> list[ConsentEvent]:
    """The contact's ledger, oldest first."""
    return list(
        db.session.scalars(
            scoped(ConsentEvent, org_id)
            .where(ConsentEvent.contact_id == contact_id)
            .order_by(ConsentEvent.created_at, ConsentEvent.id)
        )
    )


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
