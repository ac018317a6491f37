"""Segments: saved filters over a body's contacts, built from a safe structure, never SQL text.

A filter is JSON the user's browser (or an API client) sends::

    {"match": "all",                      # or "any"
     "rules": [
        {"field": "list", "op": "in", "value": [3, 4]},
        {"field": "status", "op": "in", "value": ["active"]},
        {"field": "source", "op": "not_in", "value": ["purchased", "unknown"]},
        {"field": "field:quartier", "op": "eq", "value": "Centre-ville"},
        {"field": "last_activity", "op": "within_days", "value": 180},
     ]}

Every field and operator is looked up in :data:`FIELDS`; anything else (an unknown
field, an operator not allowed for that field, a value of the wrong type, a custom field
no list of the body declares) is refused with a 400 ``invalid_filter`` before any query
is built. Values only ever reach the database as bound parameters.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, or_, select, true

from contacts.db import DomainError, db, get_scoped, scoped, utcnow
from contacts.i18n import N_
from contacts.models import (
    Contact,
    ContactStatus,
    MailingList,
    Segment,
    Source,
    Subscription,
    SubscriptionStatus,
)

MAX_RULES = 20
MAX_VALUES = 100
MAX_TEXT = 200
MAX_DAYS = 36500

FIELDS: dict[str, dict[str, Any]] = {
    "list": {"label": N_("Liste"), "ops": ("in", "not_in"), "value": "list_ids"},
    "status": {"label": N_("Statut du contact"), "ops": ("in", "not_in"), "value": "statuses"},
    "source": {"label": N_("Origine du consentement"), "ops": ("in", "not_in"), "value": "sources"},
    "last_activity": {
        "label": N_("Dernière activité"),
        "ops": ("within_days", "older_than_days", "never"),
        "value": "days",
    },
    "created": {"label": N_("Ajouté"), "ops": ("within_days", "older_than_days"), "value": "days"},
    "email_domain": {"label": N_("Domaine de l'adresse"), "ops": ("eq", "neq"), "value": "text"},
}
CUSTOM_OPS = ("eq", "neq", "contains", "empty", "not_empty")
CUSTOM_PREFIX = "field:"
OP_LABELS = {
    "in": N_("parmi"),
    "not_in": N_("hors de"),
    "eq": N_("égal à"),
    "neq": N_("différent de"),
    "contains": N_("contient"),
    "empty": N_("est vide"),
    "not_empty": N_("est renseigné"),
    "within_days": N_("dans les N derniers jours"),
    "older_than_days": N_("il y a plus de N jours"),
    "never": N_("jamais"),
}
NO_VALUE_OPS = ("empty", "not_empty", "never")


def _refuse(message: str, **params: Any) -> DomainError:
    """An ``invalid_filter`` refusal; ``message`` is a French msgid marked with ``N_``."""
    return DomainError("invalid_filter", message, status=400, params=params)


def custom_field_names(org_id: int) -> list[str]:
    """Every custom field declared by one of the body's lists: the allowlist for ``field:``."""
    names: list[str] = []
    for fields in db.session.scalars(
        select(MailingList.custom_fields).where(MailingList.organisation_id == org_id)
    ):
        for name in fields or []:
            if name not in names:
                names.append(name)
    return sorted(names)


def validate_filter(org_id: int, raw: Any) -> dict[str, Any]:
    """The filter, checked against the allowlist and normalised; raises ``invalid_filter``."""
    if not isinstance(raw, dict):
        raise _refuse(N_("Le filtre doit être un objet JSON."))
    unknown = set(raw) - {"match", "rules"}
    if unknown:
        raise _refuse(N_("Clé de filtre inconnue : %(key)s."), key=sorted(unknown)[0])
    match = raw.get("match", "all")
    if match not in ("all", "any"):
        raise _refuse(N_("« match » vaut « all » ou « any »."))
    rules = raw.get("rules", [])
    if not isinstance(rules, list):
        raise _refuse(N_("« rules » doit être une liste."))
    if len(rules) > MAX_RULES:
        raise _refuse(N_("%(max)s règles au plus."), max=MAX_RULES)
    custom = None
    checked = []
    for rule in rules:
        if not isinstance(rule, dict) or set(rule) - {"field", "op", "value"}:
            raise _refuse(
                N_("Chaque règle a un champ « field », un opérateur « op » et une valeur.")
            )
        field, op = rule.get("field"), rule.get("op")
        if not isinstance(field, str) or not isinstance(op, str):
            raise _refuse(N_("Règle incomplète."))
        if field.startswith(CUSTOM_PREFIX):
            if custom is None:
                custom = custom_field_names(org_id)
            if field[len(CUSTOM_PREFIX) :] not in custom:
                raise _refuse(N_("Champ inconnu : « %(field)s »."), field=field[:100])
            if op not in CUSTOM_OPS:
                raise _refuse(N_("Opérateur non permis pour ce champ : « %(op)s »."), op=op[:50])
            kind = "none" if op in NO_VALUE_OPS else "text"
        else:
            spec = FIELDS.get(field)
            if spec is None:
                raise _refuse(N_("Champ inconnu : « %(field)s »."), field=field[:100])
            if op not in spec["ops"]:
                raise _refuse(N_("Opérateur non permis pour ce champ : « %(op)s »."), op=op[:50])
            kind = "none" if op in NO_VALUE_OPS else spec["value"]
        checked.append({"field": field, "op": op, "value": _value(org_id, kind, rule.get("value"))})
    return {"match": match, "rules": checked}


def _value(org_id: int, kind: str, value: Any) -> Any:
    if kind == "none":
        return None
    if kind == "text":
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _refuse(N_("Valeur de texte attendue."))
        text = " ".join(str(value).split())
        if len(text) > MAX_TEXT:
            raise _refuse(N_("Valeur trop longue (%(max)s caractères au plus)."), max=MAX_TEXT)
        return text
    if kind == "days":
        try:
            days = int(value)
        except (TypeError, ValueError):
            raise _refuse(N_("Nombre de jours attendu.")) from None
        if isinstance(value, bool) or not 0 <= days <= MAX_DAYS:
            raise _refuse(N_("Nombre de jours hors des limites."))
        return days
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_VALUES:
        raise _refuse(N_("Choisissez au moins une valeur."))
    if kind == "list_ids":
        try:
            ids = sorted({int(v) for v in values if not isinstance(v, bool)})
        except (TypeError, ValueError):
            raise _refuse(N_("Identifiant de liste invalide.")) from None
        known = set(
            db.session.scalars(
                select(MailingList.id).where(
                    MailingList.organisation_id == org_id, MailingList.id.in_(ids)
                )
            )
        )
        if known != set(ids):
            raise _refuse(N_("Liste inconnue."))
        return ids
    allowed = {s.value for s in ContactStatus} if kind == "statuses" else {s.value for s in Source}
    if any(not isinstance(v, str) or v not in allowed for v in values):
        raise _refuse(N_("Valeur non permise."))
    return sorted(set(values))


def _member(org_id: int, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists(
        select(Subscription.id).where(
            Subscription.organisation_id == org_id,
            Subscription.contact_id == Contact.id,
            Subscription.status != SubscriptionStatus.WITHDRAWN,
            *conditions,
        )
    )


def _rule(org_id: int, rule: dict[str, Any], now: dt.datetime) -> ColumnElement[bool]:
    field, op, value = rule["field"], rule["op"], rule["value"]
    if field.startswith(CUSTOM_PREFIX):
        cell = Contact.fields[field[len(CUSTOM_PREFIX) :]].as_string()
        if op == "empty":
            return or_(cell.is_(None), cell == "")
        if op == "not_empty":
            return and_(cell.is_not(None), cell != "")
        if op == "contains":
            escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return func.lower(cell).like(f"%{escaped}%", escape="\\")
        same = func.lower(cell) == value.lower()
        return same if op == "eq" else or_(cell.is_(None), not_(same))
    if field == "list":
        found = _member(org_id, Subscription.list_id.in_(value))
    elif field == "source":
        found = _member(org_id, Subscription.source.in_(value))
    elif field == "status":
        found = Contact.status.in_(value)
    elif field == "email_domain":
        suffix = "@" + value.lower().lstrip("@")
        found = Contact.email.like("%" + suffix.replace("%", "").replace("_", "\\_"), escape="\\")
        return found if op == "eq" else not_(found)
    elif field == "last_activity":
        if op == "never":
            return Contact.last_activity_at.is_(None)
        cutoff = now - dt.timedelta(days=value)
        if op == "within_days":
            return Contact.last_activity_at >= cutoff
        return func.coalesce(Contact.last_activity_at, Contact.created_at) < cutoff
    else:  # created
        cutoff = now - dt.timedelta(days=value)
        return Contact.created_at >= cutoff if op == "within_days" else Contact.created_at < cutoff
    return found if op == "in" else not_(found)


def filter_expression(org_id: int, raw: Any, now: dt.datetime | None = None) -> ColumnElement[bool]:
    """The SQL condition over ``Contact`` for a filter (validated here)."""
    checked = validate_filter(org_id, raw)
    now = now or utcnow()
    parts = [_rule(org_id, r, now) for r in checked["rules"]]
    if not parts:
        return true()
    return and_(*parts) if checked["match"] == "all" else or_(*parts)


def segment_query(org_id: int, raw: Any, now: dt.datetime | None = None) -> Select[tuple[Contact]]:
    return scoped(Contact, org_id).where(filter_expression(org_id, raw, now))


def count_matching(org_id: int, raw: Any, now: dt.datetime | None = None) -> int:
    """The live count shown while a segment is edited."""
    query = segment_query(org_id, raw, now).with_only_columns(func.count(Contact.id))
    return db.session.scalar(query) or 0


def segment_contact_ids(org_id: int, segment_id: int) -> Select[tuple[int]]:
    """``SELECT id`` of the segment's contacts, to intersect with a campaign's audience."""
    segment = get_segment(org_id, segment_id)
    if segment is None:
        raise DomainError("not_found", "Segment introuvable.", status=404)
    return segment_query(org_id, segment.filter).with_only_columns(Contact.id)


def _clean_name(name: Any) -> str:
    text = " ".join(str(name or "").split())
    if not text or len(text) > 200:
        raise DomainError("invalid_name", "Le nom du segment est obligatoire (200 caractères).")
    return text


def create_segment(org_id: int, name: str, raw: Any) -> Segment:
    segment = Segment(
        organisation_id=org_id, name=_clean_name(name), filter=validate_filter(org_id, raw)
    )
    db.session.add(segment)
    db.session.flush()
    return segment


def update_segment(org_id: int, segment_id: int, name: str, raw: Any) -> Segment:
    segment = get_segment(org_id, segment_id)
    if segment is None:
        raise DomainError("not_found", "Segment introuvable.", status=404)
    segment.name = _clean_name(name)
    segment.filter = validate_filter(org_id, raw)
    db.session.flush()
    return segment


def delete_segment(org_id: int, segment_id: int) -> None:
    segment = get_segment(org_id, segment_id)
    if segment is None:
        raise DomainError("not_found", "Segment introuvable.", status=404)
    db.session.delete(segment)
    db.session.flush()


def get_segment(org_id: int, segment_id: int) -> Segment | None:
    return get_scoped(Segment, org_id, segment_id)


def all_segments(org_id: int) -> list[Segment]:
    return list(db.session.scalars(scoped(Segment, org_id).order_by(Segment.name)))


def filter_from_form(form: Any, max_rules: int = 6) -> dict[str, Any]:
    """A filter from the segment page's form fields ``rule-N-field|op|value`` (no JS needed).

    Values of ``list``, ``status`` and ``source`` rules may be repeated fields; numbers of
    days stay text here and are checked by :func:`validate_filter`.
    """
    rules = []
    for i in range(max_rules):
        field = (form.get(f"rule-{i}-field") or "").strip()
        if not field:
            continue
        op = (form.get(f"rule-{i}-op") or "").strip()
        values = [
            part.strip()
            for v in form.getlist(f"rule-{i}-value")
            for part in (str(v).split(",") if field in ("list", "status", "source") else [v])
            if str(part).strip() != ""
        ]
        if field in ("list", "status", "source"):
            value: Any = values
        else:
            value = values[0] if values else ""
        if op in NO_VALUE_OPS:
            value = None
        rules.append({"field": field, "op": op, "value": value})
    return {"match": form.get("match", "all"), "rules": rules}
