"""RSVP and poll answers: what a recipient chose to tell the body, changeable until the deadline.

An answer is one ``Answer`` row per (campaign, delivery, kind), updated in place when the
person changes their mind. It is not tracking: the person answers on purpose, so answers
are kept whatever the body's tracking policy (the policy only decides whether the
performance page may list *who* said yes, see :func:`attendees_visible`).

Link scanners follow every link of a message, so an answer is never recorded by a GET:
the link opens a page with the choice pre-selected and a confirm button that POSTs
(``webapp/views/tracking.py``). Rules checked here, with French messages for the page:

- the delivery must belong to the campaign named by the token;
- until the event's ``rsvp_deadline`` (invitations; polls follow the same deadline
  when the campaign has one) answers can be changed; after it they are frozen;
- when the event has a ``capacity`` and that many people said yes, a new "yes" is
  refused (the page says the event is full); "no" and "maybe" stay possible.

The capacity check runs after the row is written and under a lock on the campaign row
(PostgreSQL ``FOR UPDATE``; SQLite serialises writers), so two last-seat answers at the
same moment cannot both get in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from analytics.models import Answer
from analytics.sanitize import clean_value
from campaigns.ics import EventInfo, parse_event
from campaigns.models import Campaign, Delivery
from contacts import gdpr
from contacts.db import DomainError, db, utcnow
from contacts.i18n import N_
from contacts.models import Contact, TrackingPolicy

__all__ = [
    "RSVP_CHOICES",
    "RSVP_LABELS",
    "AnswerContext",
    "attendees",
    "attendees_visible",
    "event_of",
    "load_context",
    "poll_block",
    "set_poll",
    "set_rsvp",
]

RSVP_CHOICES = ("yes", "no", "maybe")
RSVP_LABELS = {"yes": N_("Oui"), "no": N_("Non"), "maybe": N_("Peut-être")}


@dataclass
class AnswerContext:
    """What an RSVP or poll page shows: the campaign, the event, the current answers."""

    campaign: Campaign
    delivery: Delivery
    event: EventInfo | None
    rsvp: str | None
    poll: str | None
    yes_count: int
    deadline_passed: bool

    @property
    def org_id(self) -> int:
        return self.campaign.organisation_id

    @property
    def capacity(self) -> int | None:
        return self.event.capacity if self.event else None

    @property
    def full(self) -> bool:
        """No seat left for a new "yes" (the person's own yes keeps its seat)."""
        cap = self.capacity
        return cap is not None and self.yes_count >= cap and self.rsvp != "yes"


def event_of(campaign: Campaign) -> EventInfo | None:
    """The campaign's event, checked (None for a newsletter or an invalid event)."""
    if not campaign.event:
        return None
    try:
        return parse_event(campaign.event)
    except DomainError:
        return None


def poll_block(campaign: Campaign) -> Mapping[str, Any] | None:
    """The campaign's poll block (question and options), if it has one."""
    for block in campaign.blocks or ():
        if isinstance(block, Mapping) and block.get("type") == "poll":
            return block
    return None


def _deadline_passed(event: EventInfo | None, now: dt.datetime) -> bool:
    return bool(event and event.rsvp_deadline and now > event.rsvp_deadline)


def _current(campaign_id: int, delivery_id: int, kind: str) -> Answer | None:
    return db.session.scalars(
        select(Answer).where(
            Answer.campaign_id == campaign_id,
            Answer.delivery_id == delivery_id,
            Answer.kind == kind,
        )
    ).first()


def _yes_count(org_id: int, campaign_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count()).where(
                Answer.organisation_id == org_id,
                Answer.campaign_id == campaign_id,
                Answer.kind == "rsvp",
                Answer.value == "yes",
            )
        )
        or 0
    )


def load_context(
    campaign_id: int, delivery_id: int, *, now: dt.datetime | None = None, lock: bool = False
) -> AnswerContext | None:
    """The page's context, or None when the token names no such delivery of that campaign."""
    query = select(Campaign).where(Campaign.id == campaign_id)
    if lock:
        query = query.with_for_update()
    campaign = db.session.scalars(query).first()
    if campaign is None:
        return None
    delivery = db.session.get(Delivery, delivery_id)
    if (
        delivery is None
        or delivery.campaign_id != campaign.id
        or delivery.organisation_id != campaign.organisation_id
    ):
        return None
    event = event_of(campaign)
    rsvp = _current(campaign.id, delivery.id, "rsvp")
    poll = _current(campaign.id, delivery.id, "poll")
    return AnswerContext(
        campaign=campaign,
        delivery=delivery,
        event=event,
        rsvp=rsvp.value if rsvp else None,
        poll=poll.value if poll else None,
        yes_count=_yes_count(campaign.organisation_id, campaign.id),
        deadline_passed=_deadline_passed(event, now or utcnow()),
    )


def _write(ctx: AnswerContext, kind: str, value: str, now: dt.datetime) -> Answer:
    row = _current(ctx.campaign.id, ctx.delivery.id, kind)
    if row is None:
        row = Answer(
            organisation_id=ctx.org_id,
            campaign_id=ctx.campaign.id,
            delivery_id=ctx.delivery.id,
            kind=kind,
            value=value,
            created_at=now,
            updated_at=now,
        )
        db.session.add(row)
    elif row.value != value:
        row.value = value
        row.updated_at = now
    # An answer is a contact the person initiated: their retention clock starts again.
    gdpr.record_activity(db.session, {ctx.delivery.contact_id: now})
    db.session.flush()
    return row


def _closed() -> DomainError:
    return DomainError(
        "answers_closed",
        "La date limite de réponse est passée : votre réponse ne peut plus être modifiée.",
        status=409,
    )


def set_rsvp(
    campaign_id: int, delivery_id: int, value: str, *, now: dt.datetime | None = None
) -> AnswerContext:
    """Record (or change) the RSVP of one delivery; the caller commits.

    Raises ``DomainError`` (the caller rolls back): unknown answer (400), no such delivery
    (404), deadline passed (409), event full for a new "yes" (409, code ``full``).
    """
    now = now or utcnow()
    if value not in RSVP_CHOICES:
        raise DomainError("invalid_answer", "Réponse inconnue : choisissez oui, non ou peut-être.")
    ctx = load_context(campaign_id, delivery_id, now=now, lock=True)
    if ctx is None:
        raise DomainError("not_found", "Invitation introuvable.", status=404)
    if ctx.event is None:
        raise DomainError("not_found", "Cette campagne n'attend pas de réponse.", status=404)
    if ctx.deadline_passed:
        raise _closed()
    was = ctx.rsvp
    _write(ctx, "rsvp", value, now)
    ctx.rsvp = value
    ctx.yes_count = _yes_count(ctx.org_id, ctx.campaign.id)
    cap = ctx.capacity
    if value == "yes" and was != "yes" and cap is not None and ctx.yes_count > cap:
        raise DomainError(
            "full",
            "L'événement est complet : il n'y a plus de place disponible. "
            "Vous pouvez encore répondre « Non » ou « Peut-être ».",
            status=409,
        )
    return ctx


def set_poll(
    campaign_id: int, delivery_id: int, option: int, *, now: dt.datetime | None = None
) -> AnswerContext:
    """Record (or change) the poll answer of one delivery (``option`` counts from 1)."""
    now = now or utcnow()
    ctx = load_context(campaign_id, delivery_id, now=now)
    if ctx is None:
        raise DomainError("not_found", "Sondage introuvable.", status=404)
    block = poll_block(ctx.campaign)
    options = list(block.get("options") or ()) if block else []
    if not options:
        raise DomainError("not_found", "Cette campagne ne contient pas de sondage.", status=404)
    if not isinstance(option, int) or not 1 <= option <= len(options):
        raise DomainError("invalid_answer", "Option de sondage inconnue.")
    if ctx.deadline_passed:
        raise _closed()
    value = clean_value(options[option - 1])
    _write(ctx, "poll", value, now)
    ctx.poll = value
    return ctx


def attendees_visible(policy: str) -> bool:
    """Whether the performance page may name who said yes.

    Only under the per-contact policy: a body that chose anonymous aggregates sees how
    many will come, not who (the invitation's page tells people which applies).
    """
    return policy == TrackingPolicy.PER_CONTACT


def attendees(org_id: int, campaign_id: int, value: str = "yes") -> list[dict[str, Any]]:
    """Who answered ``value`` to the RSVP: name, address, when (by name)."""
    rows = db.session.execute(
        select(Contact.first_name, Contact.last_name, Contact.email, Answer.updated_at)
        .join(Delivery, Delivery.id == Answer.delivery_id)
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(
            Answer.organisation_id == org_id,
            Answer.campaign_id == campaign_id,
            Answer.kind == "rsvp",
            Answer.value == value,
            Contact.organisation_id == org_id,
        )
        .order_by(Contact.last_name, Contact.first_name, Contact.email)
    ).all()
    return [
        {"first_name": f, "last_name": ln, "email": e, "answered_at": at} for f, ln, e, at in rows
    ]
