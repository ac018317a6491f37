"""Looking at a campaign before and after it is sent: previews, test sends, web versions.

All three render the *stored* compiled version (:func:`campaigns.editing.ensure_compiled`)
by substitution (:mod:`campaigns.personalise`), never by running MJML per view:

- a **preview** uses a chosen contact's values (first name, custom fields, the reason they
  are on the list) or fictional ones, with links pointing straight at their URLs;
- a **test send** goes to at most :data:`MAX_TEST_RECIPIENTS` addresses through the body's
  transport (:func:`campaigns.mailer.send_transactional`), subject prefixed ``[TEST] ``,
  with the ``.ics`` for invitations;
- the **web version** ("voir dans le navigateur", public archive) uses neutral values: no
  name, no address, system links leading to a help page, no open pixel.

The web version's public URL is ``<CRIEUR_PUBLIC_URL>/w/<token>``, the token signed by
:mod:`analytics.tokens` with purpose ``web`` over ``(campaign_id, delivery_id)`` (0 when
no delivery) and the app's ``SECRET_KEY``, as ``campaigns.links`` builds it for the sender.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from analytics import tokens
from campaigns import editing
from campaigns.compose import preview as compose_preview
from campaigns.mailer import send_transactional
from campaigns.message import TEST_SUBJECT_PREFIX, ics_attachment
from campaigns.models import Campaign, CampaignStatus
from campaigns.personalise import (
    FIELD_NAME_RE,
    compile_html,
    compile_text,
    link_values,
    sample_values,
    subscription_reason,
)
from contacts.db import DomainError, db, get_scoped
from contacts.emails import InvalidEmail, clean_email_text, validate_email
from contacts.i18n import Message
from contacts.models import Contact, Organisation, Subscription

MAX_TEST_RECIPIENTS = 5
BLANK_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
# Statuses whose web version and archive page exist: the message has gone out.
PUBLISHED = frozenset({CampaignStatus.SENDING, CampaignStatus.PAUSED, CampaignStatus.SENT})
_SPACE_BEFORE_COMMA = re.compile(r"(?<=\S)[ \u00a0]+,")


# ------------------------------------------------------------------------------- values


def contact_values(org_id: int, campaign: Campaign, contact_id: Any) -> dict[str, str]:
    """A real contact's values for a preview; 404 for an unknown or another body's contact."""
    contact = get_scoped(Contact, org_id, contact_id)
    if contact is None:
        raise DomainError("not_found", "Contact introuvable.", status=404)
    values: dict[str, str] = {
        "first_name": contact.first_name or "",
        "last_name": contact.last_name or "",
        "email": contact.email,
    }
    for key, value in (contact.fields or {}).items():
        if isinstance(key, str) and FIELD_NAME_RE.match(key) and key not in values:
            values[key] = "" if value is None else str(value)
    lists = editing.target_lists(org_id, campaign.list_ids or [])
    for lst in lists:
        sub = db.session.scalars(
            db.select(Subscription).where(
                Subscription.organisation_id == org_id,
                Subscription.list_id == lst.id,
                Subscription.contact_id == contact.id,
            )
        ).first()
        if sub is not None:
            values["list_name"] = lst.name
            values["subscription_reason"] = subscription_reason(sub.source, sub.legal_basis)
            break
    else:
        if lists:
            values["list_name"] = lists[0].name
    return values


def _fields(org_id: int, campaign: Campaign) -> list[str]:
    return editing.custom_fields_for(org_id, campaign.list_ids or [])


def preview_parts(
    org_id: int,
    campaign: Campaign,
    *,
    contact_id: Any = None,
    compiler: editing.Compiler | None = None,
) -> dict[str, str]:
    """``{"html", "text", "mjml", "subject"}`` of the current version for one recipient.

    Compiles the version first if needed (raises :class:`~campaigns.mjml.MjmlError`).
    """
    editing.ensure_compiled(org_id, campaign, compiler=compiler)
    values: dict[str, str] = {}
    if contact_id not in (None, ""):
        values = contact_values(org_id, campaign, contact_id)
    else:
        lists = editing.target_lists(org_id, campaign.list_ids or [])
        if lists:
            values["list_name"] = lists[0].name
    compiled = editing.stored_compiled(org_id, campaign)
    fields = _fields(org_id, campaign)
    parts = compose_preview(compiled, fields, **values)
    subject_values = sample_values(compiled.links, **values)
    parts["subject"] = compile_text(campaign.subject, fields).render(subject_values)
    return parts


# ---------------------------------------------------------------------------- test send


def clean_test_recipients(emails: Any) -> list[str]:
    """1 to 5 valid, distinct addresses; DomainError (400) naming the first bad one."""
    if isinstance(emails, str):
        emails = [e for e in re.split(r"[,;\s]+", emails) if e]
    if not isinstance(emails, list | tuple) or not emails:
        raise DomainError("invalid_emails", "Indiquez au moins une adresse pour l'envoi de test.")
    found: list[str] = []
    for raw in emails:
        if not isinstance(raw, str):
            raise DomainError("invalid_emails", "Les adresses doivent être du texte.")
        try:
            address = validate_email(clean_email_text(raw))
        except InvalidEmail as exc:
            raise DomainError(
                "invalid_emails",
                "Adresse « %(email)s » refusée : %(reason)s.",
                params={"email": raw[:80], "reason": Message(exc.reason)},
            ) from None
        if address not in found:
            found.append(address)
    if len(found) > MAX_TEST_RECIPIENTS:
        raise DomainError(
            "too_many_emails",
            "Un envoi de test part vers %(max)s adresses au plus.",
            params={"max": MAX_TEST_RECIPIENTS},
        )
    return found


def send_test(
    org: Organisation,
    campaign: Campaign,
    emails: Any,
    *,
    smtp_url: str,
    contact_id: Any = None,
    compiler: editing.Compiler | None = None,
) -> list[dict[str, str]]:
    """Send the current version to up to 5 addresses now, marked ``[TEST]``.

    Returns ``[{"email", "outcome" (sent|deferred|failed|unknown), "message"}]``.
    """
    if campaign is None or campaign.organisation_id != org.id:
        raise DomainError("not_found", "Campagne introuvable.", status=404)
    recipients = clean_test_recipients(emails)
    parts = preview_parts(org.id, campaign, contact_id=contact_id, compiler=compiler)
    data = editing.invitation_ics(org, campaign)
    attachment = ics_attachment(data) if data else None
    subject = TEST_SUBJECT_PREFIX + (parts["subject"] or "(sans objet)")
    results = []
    for address in recipients:
        result = send_transactional(
            org,
            address,
            subject,
            parts["text"],
            parts["html"],
            smtp_url=smtp_url,
            attachment=attachment,
        )
        results.append(
            {"email": address, "outcome": str(result.outcome), "message": result.message[:300]}
        )
    return results


# -------------------------------------------------------------------------- web version


def web_version_token(secret: str | bytes, campaign_id: int, delivery_id: int = 0) -> str:
    """The signed token of a campaign's web version (``delivery_id`` only for statistics)."""
    return tokens.sign(secret, tokens.TokenPurpose.WEB, campaign_id, delivery_id)


def web_version_url(
    public_url: str, secret: str | bytes, campaign_id: int, delivery_id: int = 0
) -> str:
    """``<public_url>/w/<token>``: what ``{{ web_version_url }}`` becomes."""
    token = web_version_token(secret, campaign_id, delivery_id)
    return f"{public_url.rstrip('/')}/w/{token}"


def read_web_token(secret: str | bytes, token: str) -> tuple[Campaign, int] | None:
    """The published campaign and delivery id (0: none) a web-version token names.

    None for a bad token, an unknown campaign or one not sent yet.
    """
    try:
        values = tokens.verify(secret, tokens.TokenPurpose.WEB, token)
    except tokens.BadToken:
        return None
    if not values or not all(isinstance(v, int) and v >= 0 for v in values) or len(values) > 2:
        return None
    campaign = db.session.get(Campaign, values[0])
    if campaign is None or campaign.status not in PUBLISHED:
        return None
    return campaign, (values[1] if len(values) > 1 else 0)


def neutral_values(
    links: Iterable[object],
    *,
    list_name: str,
    help_url: str,
    self_url: str,
    custom_fields: Iterable[str] = (),
) -> dict[str, str]:
    """Values that name nobody: for the web version and the public archive."""
    values: dict[str, str] = {name: "" for name in custom_fields}
    values.update(
        {
            "first_name": "",
            "last_name": "",
            "email": "",
            "list_name": list_name,
            "subscription_reason": subscription_reason("", "consent"),
            "unsubscribe_url": help_url,
            "preferences_url": help_url,
            "web_version_url": self_url,
            "open_pixel_url": BLANK_GIF,
            "confirm_url": help_url,  # a public copy confirms nobody
            "rsvp_yes_url": help_url,
            "rsvp_no_url": help_url,
            "rsvp_maybe_url": help_url,
            **{f"poll_url_{n}": help_url for n in range(1, 6)},
            **link_values(list(links)),
        }
    )
    return values


def render_web_version(
    org_id: int,
    campaign: Campaign,
    *,
    help_url: str,
    self_url: str,
    list_name: str | None = None,
) -> dict[str, str]:
    """``{"html", "text", "subject"}`` of a sent campaign with neutral values."""
    editing.ensure_compiled(org_id, campaign)
    compiled = editing.stored_compiled(org_id, campaign)
    if list_name is None:
        lists = editing.target_lists(org_id, campaign.list_ids or [])
        list_name = lists[0].name if lists else ""
    fields = _fields(org_id, campaign)
    values = neutral_values(
        compiled.links,
        list_name=list_name,
        help_url=help_url,
        self_url=self_url,
        custom_fields=fields,
    )
    html = compile_html(compiled.html, fields).render(values)
    text = compile_text(compiled.text, fields).render(values)
    subject = compile_text(campaign.subject, fields).render(values)
    return {
        "html": _SPACE_BEFORE_COMMA.sub(",", html),
        "text": _SPACE_BEFORE_COMMA.sub(",", text),
        "subject": _SPACE_BEFORE_COMMA.sub(",", subject),
    }


def neutral_subject(org_id: int, campaign: Campaign) -> str:
    """The subject as a public copy shows it: placeholders replaced by nothing."""
    subject = compile_text(campaign.subject, _fields(org_id, campaign)).render({})
    return _SPACE_BEFORE_COMMA.sub(",", subject)
