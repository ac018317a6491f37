"""Moves of a campaign through a send: start (with the freeze), schedule, pause, resume,
cancel, and finish when no row is left.

Each move is a conditional transition (:func:`campaigns.workflow.transition`) in the
caller's transaction; the rows themselves are written by :mod:`campaigns.audience`
(freeze), :mod:`campaigns.claims` and :mod:`campaigns.outcomes` (see :mod:`campaigns.delivery`).
The engine that works the rows is :mod:`campaigns.sender`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from campaigns import workflow
from campaigns.audience import freeze_audience
from campaigns.dbclock import db_now
from campaigns.delivery import CLAIMABLE, UNFINISHED, D, T
from campaigns.models import Campaign, CampaignStatus
from contacts.db import DomainError, db, utcnow
from contacts.i18n import N_
from contacts.models import Organisation

S = CampaignStatus


def _org(org_id: int) -> Organisation:
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise DomainError("not_found", "Organisme introuvable.", status=404)
    return org


def _ready_to_send(org_id: int, campaign: Campaign) -> None:
    if not _org(org_id).from_address:
        raise DomainError(
            "no_sender",
            "L'organisme n'a pas d'adresse d'expédition : renseignez-la dans Paramètres.",
            status=409,
        )
    if not campaign.compiled_html or campaign.compiled_version != campaign.version:
        from campaigns.editing import ensure_compiled

        ensure_compiled(org_id, campaign)


def start_sending(
    org_id: int, campaign: Campaign, user_id: int | None, role: str, comment: str = ""
) -> int:
    """Move the campaign to ``sending`` and freeze its audience, in the caller's transaction.

    Returns the number of recipients. Raises DomainError ``empty_audience`` (nobody to
    send to: the caller rolls back, the campaign keeps its status), ``invalid_transition``
    (409: not approved, or another click/scheduler won), ``forbidden`` (403).
    """
    _ready_to_send(org_id, campaign)
    workflow.transition(
        org_id,
        campaign,
        S.SENDING,
        user_id,
        role,
        comment or N_("Envoi lancé."),
        values={"started_at": db_now(), "finished_at": None},
    )
    count = freeze_audience(org_id, campaign)
    if count == 0:
        raise DomainError(
            "empty_audience",
            "Aucun destinataire ne peut recevoir cette campagne (listes vides, désinscriptions "
            "ou consentements en attente) : rien n'a été envoyé.",
            status=409,
        )
    return count


PARIS = "Europe/Paris"


def parse_send_at(value: object) -> dt.datetime | None:
    """An ISO 8601 send time (``"2025-06-01T09:30"``, Paris time when no offset), or None.

    Raises DomainError ``invalid_at`` for anything else.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise DomainError("invalid_at", "« at » doit être une date et heure ISO 8601.")
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise DomainError(
            "invalid_at", "« at » doit être une date et heure ISO 8601 (2025-06-01T09:30)."
        ) from exc
    if when.tzinfo is None:
        from zoneinfo import ZoneInfo

        when = when.replace(tzinfo=ZoneInfo(PARIS))
    return when.astimezone(dt.UTC)


def schedule_sending(
    org_id: int, campaign: Campaign, at: dt.datetime, user_id: int | None, role: str
) -> None:
    """Program the send for ``at`` (aware datetime in the future)."""
    if at.tzinfo is None:
        raise DomainError("invalid_at", "L'heure d'envoi doit préciser son fuseau horaire.")
    if at <= utcnow():
        raise DomainError("invalid_at", "L'heure d'envoi programmée est déjà passée.")
    _ready_to_send(org_id, campaign)
    when = at.astimezone(dt.UTC)
    workflow.transition(
        org_id,
        campaign,
        S.SCHEDULED,
        user_id,
        role,
        f"Envoi programmé pour le {when:%Y-%m-%d %H:%M} UTC.",
        values={"scheduled_at": when},
    )


def pause_sending(org_id: int, campaign: Campaign, user_id: int | None, role: str) -> None:
    """Stop taking new rows; rows in flight finish, claimed ones go back to the queue."""
    workflow.transition(org_id, campaign, S.PAUSED, user_id, role, "Envoi mis en pause.")


def resume_sending(org_id: int, campaign: Campaign, user_id: int | None, role: str) -> int:
    """Back to ``sending``; returns how many rows are still to send (only those are sent)."""
    workflow.transition(org_id, campaign, S.SENDING, user_id, role, "Envoi repris.")
    return count_unfinished(campaign.id)


def cancel_sending(org_id: int, campaign: Campaign, user_id: int | None, role: str) -> int:
    """Cancel; rows not yet handed to a worker become ``cancelled``. Returns their number."""
    workflow.transition(org_id, campaign, S.CANCELLED, user_id, role, N_("Envoi annulé."))
    result = db.session.execute(
        update(T)
        .where(T.c.campaign_id == campaign.id, T.c.status.in_(CLAIMABLE))
        .values(status=D.CANCELLED, last_error="campagne annulée")
    )
    return int(result.rowcount or 0)


def count_unfinished(campaign_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(T)
            .where(T.c.campaign_id == campaign_id, T.c.status.in_(UNFINISHED))
        )
        or 0
    )


def finish_if_done(campaign_id: int) -> bool:
    """Mark a ``sending`` campaign ``sent`` when no row is queued, deferred or sending.

    The count and the move happen in the caller's transaction; a concurrent finisher
    loses the conditional UPDATE and this returns False. Commit after a True.
    """
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None or campaign.status != S.SENDING:
        return False
    if count_unfinished(campaign_id):
        return False
    try:
        workflow.transition(
            campaign.organisation_id,
            campaign,
            S.SENT,
            None,
            workflow.SYSTEM,
            N_("Envoi terminé : plus aucun message en attente."),
            values={"finished_at": db_now()},
        )
    except DomainError:
        return False
    return True
