"""The review workflow: which status a campaign may move to, who may move it, and the trail.

::

    draft ──submit (officer)──▶ in_review ──approve (director)──▶ approved
      ▲                            │  ▲                              │
      └──send back (director, ─────┘  └── edited after approval ─────┤ (officer)
          with a comment)                                            │
                       approved ──schedule──▶ scheduled ──(system)──▶ held
                           │                      │                    │
                           └────── send ──────────┴──▶ sending ◀──────┘
                                                   paused ◀─▶ sending ──(system)──▶ sent
              approved, scheduled, held, sending, paused ──cancel──▶ cancelled

Every move goes through :func:`transition`, which checks the table :data:`TRANSITIONS`
(out of order → ``invalid_transition``, 409; a role that may not make it → ``forbidden``,
403), changes the status with a *conditional* UPDATE (``… WHERE status = <from>``) so that
two clicks or two schedulers cannot both move the same campaign, and appends a
:class:`~campaigns.models.CampaignTransition` row (who, when, comment). The sending
engine moves ``approved → sending`` and the like through the same function; background
jobs pass ``role="system"`` and ``user_id=None``.

Content editing itself lives in :mod:`campaigns.editing`; this module only knows statuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from campaigns.models import Campaign, CampaignStatus, CampaignTransition
from contacts.db import DomainError, db
from contacts.i18n import N_, Message

S = CampaignStatus

OFFICER = "officer"
DIRECTOR = "director"
SYSTEM = "system"  # the scheduler, the sending workers, the reconciler

# Who may write a campaign's content (RELIABILITY: a director editing content → 403).
EDIT_ROLES = frozenset({OFFICER})
# Who may look at campaigns, previews and the trail.
READ_ROLES = frozenset({OFFICER, DIRECTOR, "admin"})
# Who may send a test message.
TEST_SEND_ROLES = frozenset({OFFICER, DIRECTOR})
# Statuses in which content may change; past approval, a change sends it back to review.
EDITABLE = frozenset({S.DRAFT, S.IN_REVIEW, S.APPROVED, S.SCHEDULED, S.HELD})
NEEDS_NEW_REVIEW = frozenset({S.APPROVED, S.SCHEDULED, S.HELD})

_SENDERS = frozenset({OFFICER, DIRECTOR})

# (from, to) → roles that may make the move.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (S.DRAFT, S.IN_REVIEW): frozenset({OFFICER}),  # submit
    (S.IN_REVIEW, S.APPROVED): frozenset({DIRECTOR}),  # approve
    (S.IN_REVIEW, S.DRAFT): frozenset({DIRECTOR}),  # send back, with a comment
    (S.APPROVED, S.IN_REVIEW): frozenset({OFFICER}),  # edited after approval
    (S.SCHEDULED, S.IN_REVIEW): frozenset({OFFICER}),
    (S.HELD, S.IN_REVIEW): frozenset({OFFICER}),
    (S.APPROVED, S.SCHEDULED): _SENDERS,  # schedule
    (S.APPROVED, S.SENDING): _SENDERS,  # send now
    (S.SCHEDULED, S.APPROVED): _SENDERS,  # unschedule
    (S.SCHEDULED, S.SENDING): _SENDERS | {SYSTEM},  # send now, or the schedule is due
    (S.SCHEDULED, S.HELD): frozenset({SYSTEM}),  # overdue past the grace period
    (S.HELD, S.SENDING): _SENDERS,  # a human confirms the overdue send
    (S.HELD, S.SCHEDULED): _SENDERS,  # or picks a new time
    (S.SENDING, S.PAUSED): _SENDERS,
    (S.PAUSED, S.SENDING): _SENDERS,  # resume
    (S.SENDING, S.SENT): frozenset({SYSTEM}),
    **{
        (from_, S.CANCELLED): _SENDERS
        for from_ in (S.APPROVED, S.SCHEDULED, S.HELD, S.SENDING, S.PAUSED)
    },
}

STATUS_WORDS = {
    S.DRAFT: N_("brouillon"),
    S.IN_REVIEW: N_("en relecture"),
    S.APPROVED: N_("approuvée"),
    S.SCHEDULED: N_("programmée"),
    S.SENDING: N_("en cours d'envoi"),
    S.PAUSED: N_("en pause"),
    S.SENT: N_("envoyée"),
    S.CANCELLED: N_("annulée"),
    S.HELD: N_("en attente de confirmation"),
}


def allowed_roles(from_status: str, to_status: str) -> frozenset[str]:
    """The roles that may move a campaign from one status to the other (empty: never)."""
    return TRANSITIONS.get((from_status, to_status), frozenset())


def next_statuses(status: str, role: str) -> list[str]:
    """Statuses ``role`` may move a campaign in ``status`` to (for buttons and docs)."""
    return [to for (from_, to), roles in TRANSITIONS.items() if from_ == status and role in roles]


def _word(status: str) -> Message:
    return Message(STATUS_WORDS.get(status, status))  # type: ignore[call-overload]


def transition(
    org_id: int,
    campaign: Campaign,
    to_status: str,
    user_id: int | None,
    role: str,
    comment: str = "",
    *,
    values: Mapping[str, Any] | None = None,
) -> CampaignTransition:
    """Move ``campaign`` to ``to_status`` and record who did it; flushes, does not commit.

    ``values`` sets other columns in the same conditional UPDATE (e.g. ``scheduled_at``,
    ``started_at``). Raises DomainError ``not_found`` (404) for another body's campaign,
    ``invalid_transition`` (409) for a move out of order or lost to a concurrent one,
    ``forbidden`` (403) for a role that may not make it.
    """
    if campaign is None or campaign.organisation_id != org_id:
        raise DomainError("not_found", "Campagne introuvable.", status=404)
    from_status = campaign.status
    roles = allowed_roles(from_status, to_status)
    if not roles:
        raise DomainError(
            "invalid_transition",
            "Une campagne « %(from)s » ne peut pas passer à « %(to)s ».",
            params={"from": _word(from_status), "to": _word(to_status)},
            status=409,
            from_status=from_status,
            to_status=to_status,
        )
    if role not in roles:
        raise DomainError(
            "forbidden",
            "Votre rôle ne permet pas de faire passer une campagne de « %(from)s » à « %(to)s ».",
            params={"from": _word(from_status), "to": _word(to_status)},
            status=403,
        )
    comment = (comment or "").strip()[:5000]
    changes: dict[str, Any] = dict(values or {})
    changes["status"] = str(to_status)
    if to_status == S.APPROVED:
        changes.setdefault("approved_by_id", user_id)
    elif to_status in (S.DRAFT, S.IN_REVIEW):
        changes.setdefault("approved_by_id", None)
        changes.setdefault("scheduled_at", None)
    result = db.session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign.id,
            Campaign.organisation_id == org_id,
            Campaign.status == from_status,
        )
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise DomainError(
            "invalid_transition",
            "La campagne a changé d'état entre-temps : rechargez la page.",
            status=409,
            from_status=from_status,
            to_status=to_status,
        )
    # Keep the in-memory object in step without reloading (it may hold unflushed edits).
    for key, value in changes.items():
        set_committed_value(campaign, key, value)
    row = CampaignTransition(
        organisation_id=org_id,
        campaign_id=campaign.id,
        from_status=str(from_status),
        to_status=str(to_status),
        user_id=user_id,
        comment=comment,
    )
    db.session.add(row)
    db.session.flush()
    return row


def record_creation(org_id: int, campaign: Campaign, user_id: int | None, comment: str) -> None:
    """The first line of the trail: a campaign was created (from nothing, a model or a copy)."""
    db.session.add(
        CampaignTransition(
            organisation_id=org_id,
            campaign_id=campaign.id,
            from_status="",
            to_status=str(campaign.status),
            user_id=user_id,
            comment=comment[:5000],
        )
    )


def approve_campaign(
    org_id: int,
    campaign: Campaign,
    user_id: int | None,
    role: str,
    comment: str = "",
    *,
    version: int | None = None,
) -> CampaignTransition:
    """A director approves the campaign; ``version`` guards against approving unseen edits."""
    if version is not None and campaign.status == S.IN_REVIEW and version != campaign.version:
        raise DomainError(
            "stale_version",
            "La campagne a été modifiée depuis que vous l'avez ouverte : relisez la dernière "
            "version avant de l'approuver.",
            status=409,
            version=campaign.version,
        )
    return transition(org_id, campaign, S.APPROVED, user_id, role, comment)


def send_back_campaign(
    org_id: int, campaign: Campaign, user_id: int | None, role: str, comment: str
) -> CampaignTransition:
    """A director returns the campaign to its author with a comment saying what to change."""
    if not (comment or "").strip():
        # Check the move first: a wrong status or role says so rather than asking for a comment.
        roles = allowed_roles(campaign.status, S.DRAFT)
        if roles and role in roles:
            raise DomainError(
                "comment_required",
                "Expliquez en commentaire ce qu'il faut modifier avant de renvoyer la campagne.",
            )
    return transition(org_id, campaign, S.DRAFT, user_id, role, comment)


def transitions_of(org_id: int, campaign_id: int) -> list[CampaignTransition]:
    """The campaign's trail, oldest first."""
    return list(
        db.session.scalars(
            select(CampaignTransition)
            .where(
                CampaignTransition.organisation_id == org_id,
                CampaignTransition.campaign_id == campaign_id,
            )
            .order_by(CampaignTransition.created_at, CampaignTransition.id)
        )
    )
