"""Writing campaigns: create, edit, duplicate, start from a model; compile once per version.

What is stored is always valid: blocks go through :func:`campaigns.blocks.validate_blocks`,
an invitation's event through :func:`campaigns.ics.parse_event`, and the normalised copies
are what the row keeps. A change of subject, preheader, kind, blocks or event bumps
``Campaign.version`` and compiles that version once (:func:`ensure_compiled`, through
:func:`campaigns.compose.compile_campaign` with the body's branding); a change of content
or audience after approval sends the campaign back to review.

Links and placeholders (the contract with the sending engine)
--------------------------------------------------------------
``compiled_html`` and ``compiled_text`` hold the per-recipient placeholders of
:mod:`campaigns.personalise` (``{{ first_name }}``, ``{{ unsubscribe_url }}``…). Every http(s)
link the officer wrote (buttons, images, Markdown links, social links, the map, the body's
website) is the placeholder ``{{ link_N }}``, N = 1, 2, 3… in order of first appearance,
one number per distinct URL. The campaign's :class:`~campaigns.models.CampaignLink` rows
are exactly those URLs, **in the same order by ascending id**: ``link_N`` is the N-th row
of :func:`campaign_links` (:func:`link_map` gives ``{"link_N": CampaignLink}``). The rows
are rewritten only when the list of URLs changes, and only while the campaign is still
editable, so once sending starts they are stable and a click token may carry the
``CampaignLink.id``. To personalise, the sender substitutes, per recipient, ``link_N`` →
the signed click URL for that row (or ``row.url`` when clicks are not tracked: see
:func:`campaigns.personalise.link_values`) using :func:`campaigns.personalise.compile_html`
/ ``compile_text`` on the stored parts: MJML never runs again. ``mailto:`` links stay raw.
An invitation's ``.ics`` is rebuilt by :func:`invitation_ics` (stable UID, SEQUENCE =
version) rather than stored.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select

from campaigns import checks as checks_module
from campaigns import ics, workflow
from campaigns.blocks import Link, normalise_branding, validate_blocks
from campaigns.compose import (
    KINDS,
    MAX_PREHEADER,
    MAX_SUBJECT,
    Compiled,
    clean_line,
    compile_campaign,
    starter_templates,
)
from campaigns.mjml import MjmlError, MjmlResult
from campaigns.models import Campaign, CampaignKind, CampaignLink, CampaignStatus
from contacts.db import DomainError, db, get_scoped, scoped, utcnow
from contacts.i18n import N_, join_messages
from contacts.models import MailingList, Organisation, Segment

log = logging.getLogger(__name__)

Compiler = Callable[[str], MjmlResult]
S = CampaignStatus

CONTENT_KEYS = ("kind", "subject", "preheader", "blocks", "event")
AUDIENCE_KEYS = ("list_ids", "segment_ids")
MAX_NAME = 200
MAX_TARGETS = 50


# ----------------------------------------------------------------------------- lookups


def get_campaign(org_id: int, campaign_id: Any) -> Campaign | None:
    """One of the body's campaigns, or None (unknown id or another body's)."""
    return get_scoped(Campaign, org_id, campaign_id)


def list_campaigns(org_id: int, *, status: str | None = None, limit: int = 500) -> list[Campaign]:
    """The body's campaigns, most recently changed first."""
    query = scoped(Campaign, org_id)
    if status:
        query = query.where(Campaign.status == status)
    query = query.order_by(Campaign.updated_at.desc(), Campaign.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def branding_for(org: Organisation) -> dict[str, Any]:
    """The body's identity as :func:`campaigns.blocks.normalise_branding` expects it."""
    return {
        "from_name": org.from_name or org.name,
        "from_address": org.from_address,
        "logo_url": org.logo_url,
        "brand_color": org.brand_color,
        "postal_address": org.postal_address,
        "dpo_contact": org.dpo_contact,
        "website_url": org.website_url,
        "tracking_policy": org.tracking_policy,
    }


def _org(org_id: int) -> Organisation:
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise DomainError("not_found", "Organisme introuvable.", status=404)
    return org


def target_lists(org_id: int, list_ids: Iterable[int]) -> list[MailingList]:
    """The campaign's lists that still exist, in the order given."""
    ids = [i for i in list_ids if isinstance(i, int)]
    if not ids:
        return []
    found = {
        lst.id: lst
        for lst in db.session.scalars(scoped(MailingList, org_id).where(MailingList.id.in_(ids)))
    }
    return [found[i] for i in ids if i in found]


def custom_fields_for(org_id: int, list_ids: Iterable[int]) -> list[str]:
    """The custom fields of the campaign's lists (placeholders an officer may use)."""
    fields: dict[str, None] = {}
    for lst in target_lists(org_id, list_ids):
        for name in lst.custom_fields or []:
            if isinstance(name, str):
                fields.setdefault(name, None)
    return list(fields)


# -------------------------------------------------------------------------- validation


_LIST_MESSAGES = {
    "too_many": N_("%(max)s listes au plus par campagne."),
    "missing": N_("Liste introuvable (n° %(id)s)."),
}
_SEGMENT_MESSAGES = {
    "too_many": N_("%(max)s segments au plus par campagne."),
    "missing": N_("Segment introuvable (n° %(id)s)."),
}


def _ids(org_id: int, value: Any, model: type, what: Mapping[str, str], key: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise DomainError(
            "invalid_" + key, "« %(key)s » doit être une liste d'identifiants.", params={"key": key}
        )
    ids: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise DomainError(
                "invalid_" + key,
                "« %(key)s » doit être une liste d'identifiants.",
                params={"key": key},
            )
        try:
            number = int(item)
        except ValueError:
            raise DomainError(
                "invalid_" + key,
                "« %(key)s » doit être une liste d'identifiants.",
                params={"key": key},
            ) from None
        if number not in ids:
            ids.append(number)
    if len(ids) > MAX_TARGETS:
        too_many = what["too_many"]  # not inline: extraction would take the key for a message
        raise DomainError("invalid_" + key, too_many, params={"max": MAX_TARGETS})
    if ids:
        found = set(
            db.session.scalars(
                select(model.id).where(model.organisation_id == org_id, model.id.in_(ids))
            )
        )
        missing = [i for i in ids if i not in found]
        if missing:
            message = what["missing"]
            raise DomainError("not_found", message, status=404, params={"id": missing[0]})
    return ids


def check_list_ids(org_id: int, value: Any) -> list[int]:
    """Ids of the body's lists; 400 when malformed, 404 when one is unknown or foreign."""
    return _ids(org_id, value, MailingList, _LIST_MESSAGES, "list_ids")


def check_segment_ids(org_id: int, value: Any) -> list[int]:
    """Ids of the body's segments; 400 when malformed, 404 when one is unknown or foreign."""
    return _ids(org_id, value, Segment, _SEGMENT_MESSAGES, "segment_ids")


def _line(value: Any, limit: int, label: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DomainError(
            "invalid_" + label, "« %(key)s » doit être un texte.", params={"key": label}
        )
    text = clean_line(value, limit + 1)
    if len(text) > limit:
        raise DomainError(
            "invalid_" + label,
            "« %(key)s » dépasse %(max)s caractères.",
            params={"key": label, "max": limit},
        )
    return text


def clean_content(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validated, normalised ``kind``, ``subject``, ``preheader``, ``blocks``, ``event``."""
    kind = data.get("kind") or CampaignKind.NEWSLETTER
    if kind not in KINDS:
        raise DomainError(
            "invalid_kind", "Le type de campagne doit être « newsletter » ou « invitation »."
        )
    event = None
    if kind == CampaignKind.INVITATION:
        event = ics.parse_event(data.get("event")).as_dict()
    blocks = validate_blocks(data.get("blocks"), kind=kind, has_event=event is not None)
    return {
        "kind": str(kind),
        "subject": _line(data.get("subject"), MAX_SUBJECT, "subject"),
        "preheader": _line(data.get("preheader"), MAX_PREHEADER, "preheader"),
        "blocks": blocks,
        "event": event,
    }


# ------------------------------------------------------------------------------ compile


def campaign_links(org_id: int, campaign_id: int) -> list[CampaignLink]:
    """The campaign's links in placeholder order: row N is ``{{ link_N }}``."""
    return list(
        db.session.scalars(
            scoped(CampaignLink, org_id)
            .where(CampaignLink.campaign_id == campaign_id)
            .order_by(CampaignLink.id)
        )
    )


def link_map(org_id: int, campaign_id: int) -> dict[str, CampaignLink]:
    """``{"link_1": CampaignLink, …}``: what each link placeholder stands for."""
    return {f"link_{n}": row for n, row in enumerate(campaign_links(org_id, campaign_id), 1)}


def _sync_links(org_id: int, campaign: Campaign, links: list[Link]) -> None:
    current = campaign_links(org_id, campaign.id)
    if [(r.url, r.label) for r in current] == [(link.url, link.label) for link in links]:
        return
    db.session.execute(
        delete(CampaignLink).where(
            CampaignLink.organisation_id == org_id, CampaignLink.campaign_id == campaign.id
        )
    )
    for link in links:  # one flush per row: ids must follow the placeholder numbers
        db.session.add(
            CampaignLink(
                organisation_id=org_id, campaign_id=campaign.id, url=link.url, label=link.label
            )
        )
        db.session.flush()


def compile_stored(org: Organisation, campaign: Campaign, *, compiler: Compiler | None = None):
    """Compile the campaign's stored content (no storing): a :class:`Compiled`."""
    return compile_campaign(
        campaign.blocks,
        campaign.kind,
        campaign.event,
        branding_for(org),
        campaign.subject,
        campaign.preheader,
        campaign_uid=campaign.uuid,
        compiler=compiler,
    )


def ensure_compiled(
    org_id: int, campaign: Campaign, *, compiler: Compiler | None = None
) -> list[str]:
    """Compile the current version once and store HTML, text, MJML and links.

    Returns MJML's warnings when it compiled now ([] when it was already up to date).
    Raises :class:`~campaigns.mjml.MjmlError` when the layout engine fails.
    """
    if campaign.compiled_version == campaign.version and campaign.compiled_html:
        return []
    compiled = compile_stored(_org(org_id), campaign, compiler=compiler)
    campaign.compiled_html = compiled.html
    campaign.compiled_text = compiled.text
    campaign.compiled_mjml = compiled.mjml
    campaign.compiled_version = campaign.version
    _sync_links(org_id, campaign, compiled.links)
    db.session.flush()
    return list(compiled.warnings)


def _try_compile(org_id: int, campaign: Campaign, compiler: Compiler | None) -> None:
    """Compile after a save; a layout-engine failure must not lose the officer's work."""
    try:
        ensure_compiled(org_id, campaign, compiler=compiler)
    except MjmlError as exc:
        log.warning("campaign %s v%s not compiled: %s", campaign.id, campaign.version, exc.code)


def stored_compiled(org_id: int, campaign: Campaign) -> Compiled:
    """The compiled parts of the current version as a :class:`Compiled` (compile first)."""
    links = [
        Link(n, row.url, row.label) for n, row in enumerate(campaign_links(org_id, campaign.id), 1)
    ]
    return Compiled(
        html=campaign.compiled_html,
        text=campaign.compiled_text,
        mjml=campaign.compiled_mjml,
        links=links,
        subject=campaign.subject,
        preheader=campaign.preheader,
        blocks=list(campaign.blocks or []),
        event=campaign.event,
    )


def invitation_ics(org: Organisation, campaign: Campaign) -> bytes | None:
    """The ``.ics`` of an invitation (None for a newsletter): stable UID, SEQUENCE = version."""
    if campaign.kind != CampaignKind.INVITATION or not campaign.event:
        return None
    brand = normalise_branding(branding_for(org))
    return ics.build_ics(
        ics.parse_event(campaign.event),
        campaign_uid=campaign.uuid,
        organizer_name=brand["from_name"],
        organizer_email=brand["from_address"],
        description=campaign.subject,
        sequence=max(campaign.version - 1, 0),
    )


# ----------------------------------------------------------------------- create, update


def _content_of(campaign: Campaign) -> dict[str, Any]:
    return {key: getattr(campaign, key) for key in CONTENT_KEYS}


def create_campaign(
    org_id: int,
    data: Mapping[str, Any],
    *,
    user_id: int | None,
    comment: str = N_("Création de la campagne."),
    parent_id: int | None = None,
    compiler: Compiler | None = None,
) -> Campaign:
    """A new draft from the API/editor shape (CONTRACT ``POST /campaigns``), compiled."""
    if not isinstance(data, Mapping):
        raise DomainError("invalid_json", "Le corps de la requête doit être un objet JSON.")
    content = clean_content(data)
    list_ids = check_list_ids(org_id, data.get("list_ids"))
    segment_ids = check_segment_ids(org_id, data.get("segment_ids"))
    name = _line(data.get("name"), MAX_NAME, "name") or content["subject"][:MAX_NAME]
    campaign = Campaign(
        organisation_id=org_id,
        name=name or "Campagne sans titre",
        status=S.DRAFT,
        list_ids=list_ids,
        segment_ids=segment_ids,
        version=1,
        compiled_version=0,
        parent_campaign_id=parent_id,
        created_by_id=user_id,
        is_repermission=_repermission_flag(data.get("repermission")),
        **content,
    )
    db.session.add(campaign)
    db.session.flush()
    workflow.record_creation(org_id, campaign, user_id, comment)
    _try_compile(org_id, campaign, compiler)
    return campaign


def _repermission_flag(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise DomainError("invalid_repermission", "« repermission » doit valoir true ou false.")
    return value


def update_campaign(
    org_id: int,
    campaign: Campaign,
    data: Mapping[str, Any],
    *,
    user_id: int | None,
    role: str,
    compiler: Compiler | None = None,
) -> bool:
    """Apply the keys present in ``data``; True when something changed.

    Content changes bump the version and recompile. Any change to an approved (or
    scheduled, or held) campaign sends it back to review.
    """
    if campaign is None or campaign.organisation_id != org_id:
        raise DomainError("not_found", "Campagne introuvable.", status=404)
    if role not in workflow.EDIT_ROLES:
        raise DomainError(
            "forbidden", "Seul·e un·e chargé·e de communication modifie le contenu.", status=403
        )
    if campaign.status not in workflow.EDITABLE:
        raise DomainError(
            "not_editable",
            "Cette campagne ne peut plus être modifiée (envoi commencé, terminé ou annulé) : "
            "dupliquez-la pour en faire une nouvelle.",
            status=409,
        )
    if not isinstance(data, Mapping):
        raise DomainError("invalid_json", "Le corps de la requête doit être un objet JSON.")
    old = _content_of(campaign)
    merged = {**old, **{k: data[k] for k in CONTENT_KEYS if k in data}}
    content = clean_content(merged)
    changes: dict[str, Any] = {k: v for k, v in content.items() if v != old[k]}
    if "list_ids" in data:
        list_ids = check_list_ids(org_id, data["list_ids"])
        if list_ids != list(campaign.list_ids or []):
            changes["list_ids"] = list_ids
    if "segment_ids" in data:
        segment_ids = check_segment_ids(org_id, data["segment_ids"])
        if segment_ids != list(campaign.segment_ids or []):
            changes["segment_ids"] = segment_ids
    name_changed = False
    if "name" in data:
        name = _line(data.get("name"), MAX_NAME, "name") or campaign.name
        name_changed = name != campaign.name
        campaign.name = name
    if not changes:
        return name_changed
    for key, value in changes.items():
        setattr(campaign, key, value)
    if any(k in CONTENT_KEYS for k in changes):
        campaign.version = (campaign.version or 1) + 1
    campaign.updated_at = utcnow()
    db.session.flush()
    if campaign.status in workflow.NEEDS_NEW_REVIEW:
        workflow.transition(
            org_id,
            campaign,
            S.IN_REVIEW,
            user_id,
            role,
            N_("Modifiée après approbation : une nouvelle relecture est nécessaire."),
        )
    _try_compile(org_id, campaign, compiler)
    return True


def duplicate_campaign(
    org_id: int, campaign: Campaign, *, user_id: int | None, compiler: Compiler | None = None
) -> Campaign:
    """A new draft with the same content and audience (any status may be duplicated)."""
    if campaign is None or campaign.organisation_id != org_id:
        raise DomainError("not_found", "Campagne introuvable.", status=404)
    data = {
        **_content_of(campaign),
        "name": f"Copie de {campaign.name}"[:MAX_NAME],
        "repermission": bool(campaign.is_repermission),
        "list_ids": [i for i in campaign.list_ids or [] if isinstance(i, int)],
        "segment_ids": [i for i in campaign.segment_ids or [] if isinstance(i, int)],
    }
    # Lists deleted since then are dropped rather than refusing the copy.
    data["list_ids"] = [lst.id for lst in target_lists(org_id, data["list_ids"])]
    data["segment_ids"] = [
        s
        for s in data["segment_ids"]
        if db.session.scalar(
            select(Segment.id).where(Segment.organisation_id == org_id, Segment.id == s)
        )
    ]
    return create_campaign(
        org_id,
        data,
        user_id=user_id,
        comment=f"Copie de la campagne n° {campaign.id} « {campaign.name} ».",
        parent_id=campaign.id,
        compiler=compiler,
    )


# ---------------------------------------------------------------------- starting points


def default_event(now: dt.datetime | None = None, title: str = "Réunion publique") -> dict:
    """A plausible event four weeks ahead, 18 h 30–20 h 30 Paris time, answers 3 days before."""
    today = (now or utcnow()).astimezone(ics.PARIS).date() + dt.timedelta(days=28)
    start = dt.datetime.combine(today, dt.time(18, 30), ics.PARIS)
    return {
        "title": title,
        "starts_at": start.isoformat(),
        "ends_at": (start + dt.timedelta(hours=2)).isoformat(),
        "location": "Salle du conseil, hôtel de ville",
        "rsvp_deadline": (start - dt.timedelta(days=3)).replace(hour=12, minute=0).isoformat(),
        "capacity": None,
    }


def blank_content(kind: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """The smallest valid start for a blank campaign of ``kind``."""
    if kind == CampaignKind.INVITATION:
        return {
            "kind": "invitation",
            "subject": "",
            "preheader": "",
            "event": default_event(now),
            "blocks": [
                {"type": "heading", "text": "Vous êtes invité·e"},
                {"type": "text", "markdown": "Bonjour {{ first_name }},\n\nVotre texte ici."},
                {"type": "event"},
                {"type": "rsvp"},
            ],
        }
    if kind != CampaignKind.NEWSLETTER:
        raise DomainError(
            "invalid_kind", "Le type de campagne doit être « newsletter » ou « invitation »."
        )
    return {
        "kind": "newsletter",
        "subject": "",
        "preheader": "",
        "blocks": [
            {"type": "heading", "text": "Titre de votre lettre"},
            {"type": "text", "markdown": "Bonjour {{ first_name }},\n\nVotre texte ici."},
        ],
    }


def starters() -> list[dict[str, str]]:
    """The ready-made models offered on the "new campaign" page: key, name, kind (and
    ``repermission`` for the re-permission request)."""
    return [
        {"key": s["key"], "name": s["name"], "kind": s["kind"]}
        | ({"repermission": True} if s.get("repermission") else {})
        for s in starter_templates()
    ]


def create_from_starter(
    org_id: int,
    key: str,
    *,
    user_id: int | None,
    list_ids: Any = None,
    now: dt.datetime | None = None,
    compiler: Compiler | None = None,
) -> Campaign:
    """A new draft from one of :func:`campaigns.compose.starter_templates` (or ``blank-*``).

    Invitation models leave the dates empty; they get :func:`default_event` dates, which the
    officer then changes, so the draft is valid from the start. The re-permission model
    makes an ``is_repermission`` campaign (it goes to the pending members of its lists).
    """
    if key in ("blank-newsletter", "blank-invitation"):
        data = blank_content(key.removeprefix("blank-"), now)
        comment = N_("Création d'une campagne vierge.")
    else:
        found = next((s for s in starter_templates() if s["key"] == key), None)
        if found is None:
            raise DomainError("not_found", "Modèle introuvable.", status=404)
        data = dict(found)
        if data["kind"] == CampaignKind.INVITATION:
            event = {**default_event(now, data.get("event", {}).get("title") or "Événement")}
            for k, v in (found.get("event") or {}).items():
                if v not in (None, ""):
                    event[k] = v
            data["event"] = event
        data["name"] = found["name"]
        comment = f"Création à partir du modèle « {found['name']} »."
    data["list_ids"] = list_ids or []
    return create_campaign(org_id, data, user_id=user_id, comment=comment, compiler=compiler)


# ------------------------------------------------------------------- checks and submit


def campaign_checks(
    org_id: int, campaign: Campaign, *, compiler: Compiler | None = None, now=None
) -> list[dict[str, Any]]:
    """The pre-review checks of the current version (compiles it if needed).

    :func:`campaigns.checks.run_checks` plus what needs the database: an audience, and an
    invitation's dates still ahead.
    """
    warnings = ensure_compiled(org_id, campaign, compiler=compiler)
    org = _org(org_id)
    found = checks_module.run_checks(
        campaign.blocks,
        subject=campaign.subject,
        preheader=campaign.preheader,
        html=campaign.compiled_html,
        branding=branding_for(org),
        custom_fields=custom_fields_for(org_id, campaign.list_ids or []),
        extra=warnings,
    )
    if not target_lists(org_id, campaign.list_ids or []):
        found.append(
            {
                "code": "no_audience",
                "level": "error",
                "message": N_("Choisissez au moins une liste de destinataires."),
            }
        )
    has_confirm = any(
        isinstance(b, Mapping) and b.get("type") == "confirm" for b in campaign.blocks or []
    )
    if campaign.is_repermission and not has_confirm:
        found.append(
            {
                "code": "no_confirm_button",
                "level": "error",
                "message": N_(
                    "Une demande de reconsentement doit contenir le bouton de "
                    "confirmation : sans lui, personne ne peut confirmer son inscription."
                ),
            }
        )
    elif has_confirm and not campaign.is_repermission:
        found.append(
            {
                "code": "confirm_outside_repermission",
                "level": "warning",
                "message": N_(
                    "Le bouton de confirmation n'a de sens que dans une campagne de "
                    "reconsentement : les destinataires de celle-ci sont déjà inscrits."
                ),
            }
        )
    if not org.from_address:
        found.append(
            {
                "code": "no_sender",
                "level": "error",
                "message": N_(
                    "L'organisme n'a pas d'adresse d'expédition : renseignez-la dans Paramètres."
                ),
            }
        )
    if campaign.kind == CampaignKind.INVITATION and campaign.event:
        info = ics.parse_event(campaign.event)
        current = now or utcnow()
        if info.starts_at <= current:
            found.append(
                {
                    "code": "event_past",
                    "level": "error",
                    "message": N_("L'événement a déjà commencé : changez ses dates."),
                }
            )
        elif info.rsvp_deadline and info.rsvp_deadline <= current:
            found.append(
                {
                    "code": "rsvp_deadline_past",
                    "level": "warning",
                    "message": N_(
                        "La date limite de réponse est passée : personne ne pourra "
                        "répondre à l'invitation."
                    ),
                }
            )
    return found


def submit_campaign(
    org_id: int,
    campaign: Campaign,
    *,
    user_id: int | None,
    role: str,
    comment: str = "",
    compiler: Compiler | None = None,
):
    """The officer submits the campaign for review, once the checks show no error."""
    # Wrong status or role is said first; the checks only matter for a possible move.
    roles = workflow.allowed_roles(campaign.status, S.IN_REVIEW)
    if campaign.status == S.DRAFT and role in roles:
        found = campaign_checks(org_id, campaign, compiler=compiler)
        if checks_module.has_errors(found):
            errors = [f for f in found if f["level"] == "error"]
            raise DomainError(
                "checks_failed",
                "La campagne ne peut pas partir en relecture : %(problems)s",
                params={"problems": join_messages(f["message"] for f in errors[:3])},
                checks=found,
            )
    return workflow.transition(org_id, campaign, S.IN_REVIEW, user_id, role, comment)


def approve_campaign(
    org_id: int,
    campaign: Campaign,
    *,
    user_id: int | None,
    role: str,
    comment: str = "",
    version: int | None = None,
    compiler: Compiler | None = None,
):
    """A director approves the campaign, if the version under review still passes the checks.

    The officer may have edited it during the review (removed the last list, emptied the
    subject): what is approved must be what could be submitted.
    """
    roles = workflow.allowed_roles(campaign.status, S.APPROVED)
    if campaign.status == S.IN_REVIEW and role in roles:
        found = campaign_checks(org_id, campaign, compiler=compiler)
        if checks_module.has_errors(found):
            errors = [f for f in found if f["level"] == "error"]
            raise DomainError(
                "checks_failed",
                "La campagne ne peut pas être approuvée en l'état : %(problems)s",
                params={"problems": join_messages(f["message"] for f in errors[:3])},
                checks=found,
            )
    return workflow.approve_campaign(org_id, campaign, user_id, role, comment, version=version)
