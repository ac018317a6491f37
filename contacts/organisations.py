"""Bodies: creation, slugs and the settings their administrators may change."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from contacts.db import DomainError, db
from contacts.i18n import N_
from contacts.models import Organisation, OrgKind, TrackingPolicy

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
SMTP_SCHEMES = ("smtp://", "smtp+starttls://", "smtps://")


def slugify(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()
    return text[:60] or "organisme"


def create_organisation(
    name: str, kind: str, region: str, population: int | None = None, **settings: Any
) -> Organisation:
    """A new body with a unique slug; ``kind`` must be one of :class:`OrgKind`."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise DomainError(
            "invalid_name", "Le nom de l'organisme est obligatoire (200 caractères au plus)."
        )
    if kind not in {k.value for k in OrgKind}:
        allowed = ", ".join(k.value for k in OrgKind)
        raise DomainError(
            "invalid_kind",
            "Type d'organisme inconnu « %(kind)s » (attendu : %(allowed)s).",
            params={"kind": kind, "allowed": allowed},
        )
    if population is not None and population < 0:
        raise DomainError("invalid_population", "La population doit être un nombre positif.")
    base = slugify(name)
    slug, n = base, 1
    while db.session.scalar(select(Organisation.id).where(Organisation.slug == slug)):
        n += 1
        slug = f"{base}-{n}"
    org = Organisation(
        name=name, slug=slug, kind=kind, region=(region or "").strip()[:80], population=population
    )
    db.session.add(org)
    if settings:
        update_settings(org, settings)
    db.session.flush()
    return org


def get_by_slug(slug: str) -> Organisation | None:
    return db.session.scalars(select(Organisation).where(Organisation.slug == slug)).first()


def _email_or_blank(value: str, message: str) -> str:
    """The address, or "" when blank; ``message`` (an ``N_`` msgid) refuses an invalid one."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise DomainError("invalid_email", message, params={"reason": str(exc)}) from exc


def update_settings(org: Organisation, values: dict[str, Any]) -> Organisation:
    """Validate and apply the admin-editable settings; unknown keys are ignored."""
    text_fields = {
        "name": 200,
        "region": 80,
        "from_name": 200,
        "postal_address": 1000,
        "website_url": 500,
        "logo_url": 500,
        "dkim_selector": 63,
    }
    for key, limit in text_fields.items():
        if key in values:
            value = str(values[key] or "").strip()
            if len(value) > limit:
                raise DomainError(
                    "too_long",
                    "« %(key)s » : %(max)s caractères au plus.",
                    params={"key": key, "max": limit},
                )
            setattr(org, key, value)
    for key, message in (
        ("from_address", N_("Adresse d'expédition : adresse e-mail invalide (%(reason)s).")),
        ("reply_to", N_("Adresse de réponse : adresse e-mail invalide (%(reason)s).")),
    ):
        if key in values:
            setattr(org, key, _email_or_blank(values[key], message))
    if "dpo_contact" in values:
        org.dpo_contact = str(values["dpo_contact"] or "").strip()[:320]
    for key in ("website_url", "logo_url"):
        value = getattr(org, key)
        if value and not value.startswith(("https://", "http://")):
            raise DomainError("invalid_url", "Les adresses web doivent commencer par https://.")
    if "brand_color" in values:
        colour = str(values["brand_color"] or "").strip()
        if not HEX_COLOUR.match(colour):
            raise DomainError("invalid_colour", "La couleur doit être de la forme #1a2b3c.")
        org.brand_color = colour.lower()
    if "tracking_policy" in values:
        policy = values["tracking_policy"]
        if policy not in {p.value for p in TrackingPolicy}:
            raise DomainError("invalid_policy", "Politique de mesure inconnue.")
        org.tracking_policy = policy
    if "smtp_url" in values:
        url = str(values["smtp_url"] or "").strip()
        if url and not url.startswith(SMTP_SCHEMES):
            raise DomainError(
                "invalid_smtp",
                "Le relais SMTP doit commencer par smtp://, smtp+starttls:// ou smtps://.",
            )
        org.smtp_url = url
    for key in ("hourly_limit", "population", "retention_months"):
        if key in values:
            raw = values[key]
            if raw in (None, ""):
                if key != "retention_months":
                    setattr(org, key, None)
                continue
            try:
                number = int(raw)
            except (TypeError, ValueError) as exc:
                raise DomainError(
                    "invalid_number", "« %(key)s » doit être un nombre entier.", params={"key": key}
                ) from exc
            if number < 0 or (key == "retention_months" and not 1 <= number <= 120):
                raise DomainError(
                    "invalid_number", "« %(key)s » hors des limites permises.", params={"key": key}
                )
            setattr(org, key, number)
    if "dkim_private_key" in values and values["dkim_private_key"]:
        key_pem = str(values["dkim_private_key"]).strip()
        if "PRIVATE KEY" not in key_pem:
            raise DomainError("invalid_dkim", "La clé DKIM doit être une clé privée au format PEM.")
        org.dkim_private_key = key_pem
    return org
