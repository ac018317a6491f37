"""Mailing lists: a purpose, a description shown to subscribers, double opt-in, custom fields.

Counts shown on the list pages (members by status, by consent source, risky, sendable)
are read from the subscription projection, never from the ledger.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import case, func, select

from contacts.db import DomainError, db, get_scoped, scoped
from contacts.i18n import N_
from contacts.memberships import sendable_clause
from contacts.models import (
    Contact,
    MailingList,
    Purpose,
    Subscription,
    SubscriptionStatus,
)

NAME_MAX = 200
DESCRIPTION_MAX = 2000
MAX_CUSTOM_FIELDS = 20
PURPOSE_LABELS = {
    Purpose.NEWSLETTER: N_("lettre d'information"),
    Purpose.INVITATIONS: N_("invitations"),
    Purpose.SURVEYS: N_("enquêtes"),
    Purpose.PRESS: N_("presse"),
}


def field_key(label: str) -> str:
    """A custom field name usable as an e-mail placeholder: ``Rôle élu`` → ``role_elu``."""
    text = unicodedata.normalize("NFKD", str(label))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:64]
    if text and text[0].isdigit():
        text = "f_" + text[:62]
    return text


def _clean_custom_fields(values: Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [v for v in re.split(r"[,;\n]", values)]
    if not isinstance(values, list | tuple):
        raise DomainError("invalid_fields", "Les champs personnalisés doivent être une liste.")
    keys: list[str] = []
    for value in values:
        key = field_key(value)
        if key and key not in keys and key not in ("email", "first_name", "last_name"):
            keys.append(key)
    if len(keys) > MAX_CUSTOM_FIELDS:
        raise DomainError(
            "too_many_fields",
            "%(max)s champs personnalisés au plus par liste.",
            params={"max": MAX_CUSTOM_FIELDS},
        )
    return keys


def _clean_name(name: Any) -> str:
    text = " ".join(str(name or "").split())
    if not text or len(text) > NAME_MAX:
        raise DomainError(
            "invalid_name",
            "Le nom de la liste est obligatoire (%(max)s caractères au plus).",
            params={"max": NAME_MAX},
        )
    return text


def _check_purpose(purpose: Any) -> str:
    if purpose not in {p.value for p in Purpose}:
        allowed = ", ".join(p.value for p in Purpose)
        raise DomainError(
            "invalid_purpose",
            "Finalité inconnue (attendu : %(allowed)s).",
            params={"allowed": allowed},
        )
    return str(purpose)


def create_list(
    org_id: int,
    name: str,
    purpose: str = Purpose.NEWSLETTER,
    *,
    description: str = "",
    double_opt_in: bool = True,
    custom_fields: Any = None,
) -> MailingList:
    if not isinstance(double_opt_in, bool):
        raise DomainError("invalid_double_opt_in", "« double_opt_in » doit valoir true ou false.")
    description = str(description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise DomainError(
            "too_long",
            "Description : %(max)s caractères au plus.",
            params={"max": DESCRIPTION_MAX},
        )
    mlist = MailingList(
        organisation_id=org_id,
        name=_clean_name(name),
        purpose=_check_purpose(purpose),
        description=description,
        double_opt_in=double_opt_in,
        custom_fields=_clean_custom_fields(custom_fields),
    )
    db.session.add(mlist)
    db.session.flush()
    return mlist


def update_list(org_id: int, list_id: int, values: dict[str, Any]) -> MailingList:
    mlist = get_list(org_id, list_id)
    if mlist is None:
        raise DomainError("not_found", "Liste introuvable.", status=404)
    if "name" in values:
        mlist.name = _clean_name(values["name"])
    if "purpose" in values:
        mlist.purpose = _check_purpose(values["purpose"])
    if "description" in values:
        description = str(values["description"] or "").strip()
        if len(description) > DESCRIPTION_MAX:
            raise DomainError(
                "too_long",
                "Description : %(max)s caractères au plus.",
                params={"max": DESCRIPTION_MAX},
            )
        mlist.description = description
    if "double_opt_in" in values:
        mlist.double_opt_in = bool(values["double_opt_in"])
    if "custom_fields" in values:
        mlist.custom_fields = _clean_custom_fields(values["custom_fields"])
    db.session.flush()
    return mlist


def get_list(org_id: int, list_id: int) -> MailingList | None:
    return get_scoped(MailingList, org_id, list_id)


def all_lists(org_id: int) -> list[MailingList]:
    return list(db.session.scalars(scoped(MailingList, org_id).order_by(MailingList.name)))


def member_counts(org_id: int) -> dict[int, dict[str, int]]:
    """Per list: ``active``, ``pending``, ``withdrawn``, ``risky`` and ``sendable`` counts."""
    active = Subscription.status == SubscriptionStatus.ACTIVE
    rows = db.session.execute(
        select(
            Subscription.list_id,
            func.sum(case((active, 1), else_=0)),
            func.sum(case((Subscription.status == SubscriptionStatus.PENDING, 1), else_=0)),
            func.sum(case((Subscription.status == SubscriptionStatus.WITHDRAWN, 1), else_=0)),
            func.sum(
                case(
                    (
                        (Subscription.is_risky.is_(True))
                        & (Subscription.status != SubscriptionStatus.WITHDRAWN),
                        1,
                    ),
                    else_=0,
                )
            ),
            func.sum(case((sendable_clause(), 1), else_=0)),
        )
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(Subscription.organisation_id == org_id)
        .group_by(Subscription.list_id)
    )
    return {
        list_id: {
            "active": int(a or 0),
            "pending": int(p or 0),
            "withdrawn": int(w or 0),
            "risky": int(r or 0),
            "sendable": int(s or 0),
        }
        for list_id, a, p, w, r, s in rows
    }


def counts_by_source(org_id: int, list_id: int) -> list[dict[str, Any]]:
    """Members of one list by consent source: the figure the issue asks the officer to see."""
    rows = db.session.execute(
        select(
            Subscription.source,
            Subscription.status,
            Subscription.is_risky,
            func.count(),
        )
        .where(Subscription.organisation_id == org_id, Subscription.list_id == list_id)
        .group_by(Subscription.source, Subscription.status, Subscription.is_risky)
    )
    by_source: dict[str, dict[str, Any]] = {}
    for source, status, risky, n in rows:
        entry = by_source.setdefault(
            source,
            {"source": source, "active": 0, "pending": 0, "withdrawn": 0, "risky": False},
        )
        entry[status] = entry.get(status, 0) + int(n)
        entry["risky"] = entry["risky"] or bool(risky)
    return sorted(by_source.values(), key=lambda e: (-e["active"] - e["pending"], e["source"]))


def list_as_dict(mlist: MailingList, counts: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": mlist.id,
        "name": mlist.name,
        "purpose": mlist.purpose,
        "description": mlist.description,
        "double_opt_in": mlist.double_opt_in,
        "custom_fields": list(mlist.custom_fields or []),
        "created_at": mlist.created_at.isoformat() if mlist.created_at else None,
    }
    if counts is not None:
        out["counts"] = counts
    return out
