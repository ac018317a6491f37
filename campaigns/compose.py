"""Composition's one entry point: blocks, event and branding in; HTML, text, MJML, links out.

No database access: the caller passes plain values (the body's branding as a dict, the
list's custom fields) and stores what comes back (``Campaign.compiled_*``, one
``CampaignLink`` per :class:`~campaigns.blocks.Link`). The HTML and text carry the
per-recipient placeholders documented in :mod:`campaigns.personalise`; links are
``{{ link_N }}`` placeholders when ``track_links`` is on, numbered as in ``links``.
Also home to the ready-made French starting points offered in the editor.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from campaigns import ics
from campaigns.blocks import Link, LinkRegistry, normalise_branding, render_mjml, validate_blocks
from campaigns.mjml import MjmlResult, compile_mjml
from campaigns.personalise import compile_html, compile_text, sample_values
from campaigns.plaintext import render_text
from contacts.db import DomainError
from contacts.i18n import N_

KINDS = ("newsletter", "invitation")
MAX_SUBJECT = 255
MAX_PREHEADER = 255
_LINE_BREAKS_RE = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")

Compiler = Callable[[str], MjmlResult]


@dataclass(frozen=True)
class Compiled:
    """A campaign compiled once, ready for per-recipient substitution."""

    html: str
    text: str
    mjml: str
    links: list[Link]
    subject: str = ""
    preheader: str = ""
    ics: bytes | None = None
    warnings: list[str] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    event: dict[str, Any] | None = None

    @property
    def html_size(self) -> int:
        """Size of the HTML in bytes (Gmail clips past ~102 KB)."""
        return len(self.html.encode("utf-8"))


def clean_line(value: Any, limit: int) -> str:
    """A one-line text (subject, preheader): no CR/LF or control characters, trimmed."""
    text = _LINE_BREAKS_RE.sub(" ", str(value or ""))
    return " ".join(text.split())[:limit]


def compile_campaign(
    blocks: Sequence[Mapping[str, Any]],
    kind: str = "newsletter",
    event: Mapping[str, Any] | None = None,
    branding: Mapping[str, Any] | None = None,
    subject: str = "",
    preheader: str = "",
    *,
    track_links: bool = True,
    campaign_uid: str | None = None,
    timeout: float | None = None,
    compiler: Compiler | None = None,
) -> Compiled:
    """Validate and compile a campaign (raises DomainError with a French message).

    ``branding``: the body's ``from_name``, ``from_address``, ``logo_url``, ``brand_color``,
    ``postal_address``, ``dpo_contact``, ``website_url``, ``tracking_policy``.
    ``campaign_uid``: the campaign's uuid; with it an invitation also gets its ``.ics``.
    ``compiler``: MJML → :class:`MjmlResult`, defaults to the long-lived node process.
    """
    if kind not in KINDS:
        raise DomainError(
            "invalid_kind", "Le type de campagne doit être « newsletter » ou « invitation »."
        )
    info = ics.parse_event(event) if kind == "invitation" else None
    clean_blocks = validate_blocks(blocks, kind=kind, has_event=info is not None)
    brand = normalise_branding(branding)
    subject = clean_line(subject, MAX_SUBJECT)
    preheader = clean_line(preheader, MAX_PREHEADER)
    registry = LinkRegistry(track=track_links)
    mjml, links = render_mjml(
        clean_blocks,
        kind=kind,
        branding=brand,
        subject=subject,
        preheader=preheader,
        event=info,
        registry=registry,
    )
    text = render_text(clean_blocks, kind=kind, branding=brand, event=info, registry=registry)
    result = (compiler or (lambda m: compile_mjml(m, timeout=timeout)))(mjml)
    attachment = None
    if info is not None and campaign_uid:
        attachment = ics.build_ics(
            info,
            campaign_uid=campaign_uid,
            organizer_name=brand["from_name"],
            organizer_email=brand["from_address"],
            description=subject,
        )
    return Compiled(
        html=result.html,
        text=text,
        mjml=mjml,
        links=list(registry.links),
        subject=subject,
        preheader=preheader,
        ics=attachment,
        warnings=list(result.errors),
        blocks=clean_blocks,
        event=info.as_dict() if info else None,
    )


def preview(compiled: Compiled, custom_fields: Iterable[str] = (), **values: str) -> dict[str, str]:
    """``{"html", "text", "mjml"}`` for the preview endpoint: a fictional recipient, real links."""
    sample = sample_values(
        compiled.links,
        open_pixel_url="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7",
        **values,
    )
    fields = list(custom_fields)
    return {
        "html": compile_html(compiled.html, fields).render(sample),
        "text": compile_text(compiled.text, fields).render(sample),
        "mjml": compiled.mjml,
    }


# ------------------------------------------------------------------------ starting points

_STARTERS: list[dict[str, Any]] = [
    {
        "key": "lettre-mensuelle",
        "name": N_("Lettre d'information mensuelle"),
        "kind": "newsletter",
        "subject": "Les nouvelles du mois dans votre commune",
        "preheader": "Travaux, agenda, services : l'essentiel du mois en quelques lignes.",
        "blocks": [
            {"type": "heading", "text": "Les nouvelles du mois"},
            {
                "type": "text",
                "markdown": "Bonjour {{ first_name }},\n\nVoici l'essentiel de la vie "
                "municipale ce mois-ci.",
            },
            {"type": "heading", "text": "Travaux en cours"},
            {
                "type": "text",
                "markdown": "- **Rue de la République** : réfection de la chaussée jusqu'au "
                "15 du mois.\n- **École Jules-Ferry** : rénovation de la cantine pendant les "
                "vacances.",
            },
            {"type": "divider"},
            {"type": "heading", "text": "À l'agenda"},
            {
                "type": "text",
                "markdown": "Marché de producteurs chaque samedi matin, place de la Mairie.",
            },
            {
                "type": "button",
                "label": "Voir tout l'agenda",
                "url": "https://www.exemple.fr/agenda",
            },
            {
                "type": "social",
                "links": [
                    {"network": "facebook", "url": "https://www.facebook.com/exemple"},
                    {"network": "website", "url": "https://www.exemple.fr"},
                ],
            },
        ],
    },
    {
        "key": "reunion-publique",
        "name": N_("Invitation à une réunion publique"),
        "kind": "invitation",
        "subject": "Réunion publique : votre avis sur le projet de quartier",
        "preheader": "Venez poser vos questions aux élus et aux services.",
        "event": {
            "title": "Réunion publique sur le projet de quartier",
            "starts_at": "",
            "ends_at": "",
            "location": "Salle du conseil, hôtel de ville",
            "rsvp_deadline": "",
            "capacity": None,
        },
        "blocks": [
            {"type": "heading", "text": "Réunion publique"},
            {
                "type": "text",
                "markdown": "Bonjour {{ first_name }},\n\nLe maire et l'équipe municipale "
                "vous invitent à une réunion publique pour présenter le projet et recueillir "
                "vos remarques. **Entrée libre.**",
            },
            {"type": "event"},
            {"type": "rsvp"},
            {
                "type": "text",
                "markdown": "Vous ne pouvez pas venir ? Les documents seront en ligne sur "
                "[le site de la commune](https://www.exemple.fr/projet).",
            },
        ],
    },
    {
        "key": "inauguration",
        "name": N_("Invitation à une inauguration"),
        "kind": "invitation",
        "subject": "Invitation : inauguration du nouvel équipement",
        "preheader": "Le maire a le plaisir de vous convier à l'inauguration.",
        "event": {
            "title": "Inauguration",
            "starts_at": "",
            "ends_at": "",
            "location": "",
            "rsvp_deadline": "",
            "capacity": 150,
        },
        "blocks": [
            {"type": "heading", "text": "Vous êtes invité·e"},
            {
                "type": "text",
                "markdown": "Madame, Monsieur,\n\nLe maire et le conseil municipal ont le "
                "plaisir de vous convier à l'inauguration du nouvel équipement, suivie d'un "
                "moment convivial.",
            },
            {"type": "event"},
            {"type": "rsvp"},
        ],
    },
    {
        "key": "consultation",
        "name": N_("Consultation des habitants"),
        "kind": "newsletter",
        "subject": "Votre avis compte : une question en un clic",
        "preheader": "Répondez en un clic, c'est anonyme pour les résultats publiés.",
        "blocks": [
            {"type": "heading", "text": "Donnez-nous votre avis"},
            {
                "type": "text",
                "markdown": "Bonjour {{ first_name }},\n\nLa commune prépare l'aménagement "
                "de la place centrale. Un clic suffit pour répondre ; les résultats seront "
                "publiés sur le site.",
            },
            {
                "type": "poll",
                "question": "Quel usage souhaitez-vous en priorité pour la place ?",
                "options": ["Un jardin", "Un marché couvert", "Une aire de jeux"],
            },
            {
                "type": "text",
                "markdown": "Pour en savoir plus : [le projet en détail](https://www.exemple.fr/place).",
            },
        ],
    },
    {
        "key": "demande-reconsentement",
        "name": N_("Demande de reconsentement"),
        "kind": "newsletter",
        "repermission": True,
        "subject": "Souhaitez-vous continuer à recevoir nos messages ?",
        "preheader": "Un clic suffit pour confirmer votre inscription ; sans réponse, "
        "nous ne vous écrirons plus.",
        "blocks": [
            {"type": "heading", "text": "Confirmez-vous votre inscription ?"},
            {
                "type": "text",
                "markdown": "Bonjour {{ first_name }},\n\nVotre adresse figure dans notre "
                "fichier, mais nous n'avons pas la preuve que vous avez accepté de recevoir nos "
                "messages. Pour continuer à les recevoir, confirmez votre inscription d'un clic.",
            },
            {"type": "confirm", "label": "Je confirme mon inscription"},
            {
                "type": "text",
                "markdown": "Sans réponse de votre part, nous ne vous écrirons plus à ce sujet "
                "et votre adresse ne servira à aucun autre envoi.",
            },
        ],
    },
]


def starter_templates() -> list[dict[str, Any]]:
    """Five French starting points (newsletter, public meeting, inauguration, consultation,
    re-permission request).

    Each is ``{"key", "name", "kind", "subject", "preheader", "blocks", "event"?,
    "repermission"?}`` (``repermission``: the campaign asks pending contacts to confirm); the
    invitations' dates are left empty for the officer to fill. Copies: callers may edit them.
    """
    return copy.deepcopy(_STARTERS)
