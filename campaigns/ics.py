"""An invitation's event: parsing and checking it, saying when it is in French, and its .ics.

The event is given as ISO 8601 strings (CONTRACT ``POST /campaigns``); times without an
offset are taken as Paris time, which is what an officer in a town hall means. The
``.ics`` (RFC 5545) carries times in UTC, so no VTIMEZONE block is needed, and a UID that
stays the same for one campaign, so calendars update the event instead of duplicating it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress, vText

from contacts.db import DomainError
from contacts.i18n import N_, Message

PARIS = ZoneInfo("Europe/Paris")
MAX_TITLE = 200
MAX_LOCATION = 300

_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


@dataclass(frozen=True)
class EventInfo:
    """A checked event; datetimes are aware."""

    title: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    location: str
    map_url: str = ""
    rsvp_deadline: dt.datetime | None = None
    capacity: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Back to the JSON shape, normalised (ISO 8601 with offsets)."""
        return {
            "title": self.title,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "location": self.location,
            "map_url": self.map_url,
            "rsvp_deadline": self.rsvp_deadline.isoformat() if self.rsvp_deadline else None,
            "capacity": self.capacity,
        }


def _err(code: str, message: str, field: str) -> DomainError:
    """``message``: an ``N_`` msgid or a ``Message`` (``label`` parameters are Messages too)."""
    return DomainError(code, message, field=field)


def _parse_when(value: Any, field: str, label: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise _err(
                "invalid_event",
                N_(
                    "Événement : %(label)s n'est pas une date valide "
                    "(format attendu : 2025-06-12T18:30, heure de Paris).",
                    label=Message(label),
                ),
                field,
            ) from None
    else:
        raise _err(
            "invalid_event",
            N_("Événement : %(label)s est obligatoire.", label=Message(label)),
            field,
        )
    if when.tzinfo is None:
        when = when.replace(tzinfo=PARIS)
    return when


def _text(event: Mapping[str, Any], field: str, label: str, limit: int) -> str:
    value = event.get(field)
    text = " ".join(str(value).split()) if value is not None else ""
    if not text:
        raise _err(
            "invalid_event",
            N_("Événement : %(label)s est obligatoire.", label=Message(label)),
            field,
        )
    if len(text) > limit:
        raise _err(
            "invalid_event",
            N_(
                "Événement : %(label)s dépasse %(max)s caractères.", label=Message(label), max=limit
            ),
            field,
        )
    return text


def parse_event(event: Mapping[str, Any] | None) -> EventInfo:
    """Check an invitation's event dict and return it typed; French errors name the field."""
    if not isinstance(event, Mapping):
        raise DomainError(
            "event_required", "Une invitation doit décrire son événement (titre, dates, lieu)."
        )
    title = _text(event, "title", N_("le titre"), MAX_TITLE)
    location = _text(event, "location", N_("le lieu"), MAX_LOCATION)
    starts = _parse_when(event.get("starts_at"), "starts_at", N_("la date de début"))
    ends = _parse_when(event.get("ends_at"), "ends_at", N_("la date de fin"))
    if ends <= starts:
        raise _err("invalid_event", N_("Événement : la fin doit être après le début."), "ends_at")
    if ends - starts > dt.timedelta(days=31):
        raise _err(
            "invalid_event",
            N_("Événement : un événement ne peut pas durer plus de 31 jours."),
            "ends_at",
        )
    deadline = None
    if event.get("rsvp_deadline") not in (None, ""):
        deadline = _parse_when(
            event["rsvp_deadline"], "rsvp_deadline", N_("la date limite de réponse")
        )
        if deadline > starts:
            raise _err(
                "invalid_event",
                N_("Événement : la date limite de réponse doit précéder le début de l'événement."),
                "rsvp_deadline",
            )
    capacity = event.get("capacity")
    if capacity in (None, ""):
        capacity = None
    else:
        if isinstance(capacity, bool) or not isinstance(capacity, int | str):
            capacity = "x"
        try:
            capacity = int(capacity)
        except ValueError:
            capacity = 0
        if not 1 <= capacity <= 1_000_000:
            raise _err(
                "invalid_event",
                N_("Événement : la capacité doit être un nombre entier de places (au moins 1)."),
                "capacity",
            )
    map_url = str(event.get("map_url") or "").strip()
    if map_url:
        parts = urlsplit(map_url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc or " " in map_url:
            raise _err(
                "invalid_event",
                N_("Événement : le lien du plan doit être une adresse http(s)."),
                "map_url",
            )
    return EventInfo(title, starts, ends, location, map_url, deadline, capacity)


def format_date(when: dt.datetime) -> str:
    """``jeudi 12 juin 2025`` in Paris time."""
    local = when.astimezone(PARIS)
    day = "1er" if local.day == 1 else str(local.day)
    return f"{_DAYS[local.weekday()]} {day} {_MONTHS[local.month - 1]} {local.year}"


def format_time(when: dt.datetime) -> str:
    """``18 h 30`` in Paris time (French typography)."""
    local = when.astimezone(PARIS)
    return f"{local.hour} h {local.minute:02d}"


def format_period(info: EventInfo) -> str:
    """When the event happens, in French, Paris time."""
    start, end = info.starts_at.astimezone(PARIS), info.ends_at.astimezone(PARIS)
    if start.date() == end.date():
        return f"{format_date(start)}, de {format_time(start)} à {format_time(end)}"
    return (
        f"du {format_date(start)} à {format_time(start)} au {format_date(end)} à {format_time(end)}"
    )


def format_deadline(when: dt.datetime) -> str:
    """``jeudi 5 juin 2025 à 12 h 00``."""
    return f"{format_date(when)} à {format_time(when)}"


def event_uid(campaign_uid: str, domain: str) -> str:
    """The stable UID of a campaign's event: resending updates calendars, never duplicates."""
    return f"crieur-{campaign_uid}@{domain or 'crieur.invalid'}"


def build_ics(
    info: EventInfo,
    *,
    campaign_uid: str,
    organizer_name: str,
    organizer_email: str,
    description: str = "",
    url: str = "",
    sequence: int = 0,
    now: dt.datetime | None = None,
) -> bytes:
    """The ``.ics`` attachment of an invitation (METHOD:PUBLISH, times in UTC)."""
    domain = organizer_email.rsplit("@", 1)[1] if "@" in organizer_email else ""
    cal = Calendar()
    cal.add("prodid", "-//Crieur//Invitation//FR")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    ev = Event()
    ev.add("uid", event_uid(campaign_uid, domain))
    ev.add("dtstamp", (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))
    ev.add("dtstart", info.starts_at.astimezone(dt.UTC))
    ev.add("dtend", info.ends_at.astimezone(dt.UTC))
    ev.add("summary", info.title)
    ev.add("location", info.location)
    ev.add("sequence", sequence)
    ev.add("status", "CONFIRMED")
    ev.add("transp", "OPAQUE")
    desc = description.strip()
    if info.map_url:
        desc = f"{desc}\n\nPlan : {info.map_url}".strip()
    if desc:
        ev.add("description", desc)
    if url:
        ev.add("url", url)
    if organizer_email:
        organizer = vCalAddress(f"mailto:{organizer_email}")
        if organizer_name:
            organizer.params["cn"] = vText(organizer_name)
        ev["organizer"] = organizer
    cal.add_component(ev)
    return cal.to_ical()
