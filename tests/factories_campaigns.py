"""Builders for campaigns (keyword defaults; add, flush, return the object)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from contacts.db import db

NEWSLETTER_BLOCKS: list[dict[str, Any]] = [
    {"type": "heading", "text": "Les nouvelles du mois"},
    {"type": "text", "markdown": "Bonjour {{ first_name }},\n\nVoici **l'essentiel** du mois."},
    {"type": "button", "label": "Consulter l'agenda", "url": "https://www.exemple.fr/agenda"},
]

# One block of every type (the invitation-only ones included).
ALL_BLOCKS: list[dict[str, Any]] = [
    {"type": "heading", "text": "Inauguration de la médiathèque"},
    {
        "type": "text",
        "markdown": "Bonjour {{ first_name }},\n\nLa **médiathèque** ouvre ses portes. "
        "[Le programme complet](https://www.exemple.fr/programme).\n\n- atelier\n- concert",
    },
    {
        "type": "image",
        "src": "https://www.exemple.fr/media/facade.jpg",
        "alt": "La façade de la nouvelle médiathèque",
        "href": "https://www.exemple.fr/mediatheque",
    },
    {"type": "button", "label": "Découvrir la médiathèque", "url": "https://www.exemple.fr/m"},
    {
        "type": "video",
        "url": "https://www.exemple.fr/video",
        "thumbnail": "https://www.exemple.fr/media/video.jpg",
        "caption": "Visite guidée en vidéo (2 minutes)",
    },
    {"type": "event"},
    {"type": "rsvp"},
    {
        "type": "poll",
        "question": "Quel horaire d'ouverture préférez-vous ?",
        "options": ["Le matin", "Le soir", "Le week-end"],
    },
    {
        "type": "social",
        "links": [
            {"network": "facebook", "url": "https://www.facebook.com/exemple"},
            {"network": "mastodon", "url": "https://mastodon.exemple.fr/@ville"},
        ],
    },
    {"type": "divider"},
]


def make_event(days_ahead: int = 30, **overrides: Any) -> dict[str, Any]:
    """An invitation's event ``days_ahead`` days from now, 18:30–20:00 Paris time."""
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days_ahead)).date()
    event = {
        "title": "Inauguration de la médiathèque",
        "starts_at": f"{day.isoformat()}T18:30:00",
        "ends_at": f"{day.isoformat()}T20:00:00",
        "location": "12 rue des Écoles, 35000 Ville",
        "rsvp_deadline": f"{(day - dt.timedelta(days=3)).isoformat()}T12:00:00",
        "capacity": 120,
    }
    event.update(overrides)
    return event


def make_campaign(
    org,
    kind: str = "newsletter",
    blocks: list[dict[str, Any]] | None = None,
    list_ids: list[int] | None = None,
    status: str = "draft",
    event: dict[str, Any] | None = None,
    subject: str = "Les nouvelles du mois",
    preheader: str = "L'essentiel du mois en quelques lignes.",
    compile: bool = False,
    user=None,
    **kwargs: Any,
):
    """A campaign of ``org`` with valid content, put directly in ``status``.

    ``compile=True`` compiles it through the real mjml process (mark the test ``mjml``).
    """
    from campaigns import editing
    from campaigns.models import Campaign

    if blocks is None:
        blocks = (
            [
                {"type": "heading", "text": "Vous êtes invité·e"},
                {"type": "text", "markdown": "Bonjour {{ first_name }}, venez nombreux."},
                {"type": "event"},
                {"type": "rsvp"},
            ]
            if kind == "invitation"
            else NEWSLETTER_BLOCKS
        )
    if kind == "invitation" and event is None:
        event = make_event()
    content = editing.clean_content(
        {"kind": kind, "subject": subject, "preheader": preheader, "blocks": blocks,
         "event": event}
    )  # fmt: skip
    campaign = Campaign(
        organisation_id=org.id,
        name=kwargs.pop("name", subject[:200]),
        status=status,
        list_ids=list(list_ids or []),
        segment_ids=kwargs.pop("segment_ids", []),
        created_by_id=getattr(user, "id", None),
        **content,
        **kwargs,
    )
    db.session.add(campaign)
    db.session.flush()
    if compile:
        editing.ensure_compiled(org.id, campaign)
    return campaign
