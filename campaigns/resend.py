"""Resending to those who did not open, as a new campaign linked to the first.

Only where the tracking policy allows it: knowing *who* did not open is per-contact
measurement, which the CNIL ties to consent. So the body's policy must be
``per_contact``, and only recipients whose subscription carries ``tracking_consent`` are
considered: for the others Crieur does not know, and must not guess, whether they opened.

The new campaign is a draft (content, lists and kind copied; ``parent_campaign_id`` points
at the first one) that goes through review like any other. Its audience is fixed at
creation: one ``queued`` delivery row per recipient who was sent the first campaign and
has neither opened nor clicked it. :func:`campaigns.audience.freeze_audience` keeps those
rows instead of reading the lists, and the sender still re-checks each person at send
time, so someone who unsubscribed in between is not written to.

Opens and clicks live in ``analytics``, a layer above this one: the caller passes the
``SELECT delivery_id`` of the engaged deliveries (``engaged``). Machine opens count as
opens: a mail-privacy proxy fetching the pixel may hide a human read, and mailing someone
twice is the worse mistake.
"""

from __future__ import annotations

from sqlalchemy import Select, and_, false, func, literal, select

from campaigns import editing
from campaigns.audience import FROZEN_COLUMNS, dialect_insert, freeze_audience
from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from contacts.db import DomainError, db
from contacts.models import Organisation, Subscription, TrackingPolicy

PREFIX = "Relance : "


def resendable(org_id: int, parent: Campaign, engaged: Select) -> Select:
    """``SELECT contact_id, list_id`` of the parent's recipients who may get the resend."""
    return (
        select(Delivery.contact_id, Delivery.list_id)
        .join(
            Subscription,
            and_(
                Subscription.contact_id == Delivery.contact_id,
                Subscription.list_id == Delivery.list_id,
            ),
        )
        .where(
            Delivery.organisation_id == org_id,
            Delivery.campaign_id == parent.id,
            Delivery.status == DeliveryStatus.SENT,
            Subscription.tracking_consent.is_(True),
            Delivery.id.not_in(engaged.scalar_subquery()),
        )
    )


def check_resend_allowed(org_id: int, parent: Campaign) -> None:
    org = db.session.get(Organisation, org_id)
    if org is None or org.tracking_policy != TrackingPolicy.PER_CONTACT:
        raise DomainError(
            "tracking_not_allowed",
            "La relance des personnes qui n'ont pas ouvert le message demande la mesure "
            "individuelle des ouvertures, avec le consentement des personnes : elle n'est "
            "pas activée pour votre organisme.",
            status=409,
        )
    if parent.status != CampaignStatus.SENT:
        raise DomainError(
            "not_sent", "Seule une campagne entièrement envoyée peut être relancée.", status=409
        )


def count_resendable(org_id: int, parent: Campaign, engaged: Select) -> int:
    inner = resendable(org_id, parent, engaged).subquery()
    return int(db.session.scalar(select(func.count()).select_from(inner)) or 0)


def create_resend(
    org_id: int, parent: Campaign, engaged: Select, *, user_id: int | None
) -> tuple[Campaign, int]:
    """The new draft and its number of recipients; in the caller's transaction.

    Raises DomainError ``tracking_not_allowed``, ``not_sent`` or ``nobody_to_resend``.
    """
    if parent is None or parent.organisation_id != org_id:
        raise DomainError("not_found", "Campagne introuvable.", status=404)
    check_resend_allowed(org_id, parent)
    if count_resendable(org_id, parent, engaged) == 0:
        raise DomainError(
            "nobody_to_resend",
            "Tous les destinataires dont on peut mesurer l'ouverture l'ont ouverte : "
            "personne à relancer.",
            status=409,
        )
    data = {
        "kind": parent.kind,
        "subject": (PREFIX + parent.subject)[:255],
        "preheader": parent.preheader,
        "blocks": parent.blocks,
        "event": parent.event,
        "list_ids": [lst.id for lst in editing.target_lists(org_id, parent.list_ids or [])],
        "name": (PREFIX + parent.name)[:200],
    }
    child = editing.create_campaign(
        org_id,
        data,
        user_id=user_id,
        comment=f"Relance de la campagne n° {parent.id} aux personnes qui ne l'ont pas ouverte.",
        parent_id=parent.id,
    )
    audience = resendable(org_id, parent, engaged).subquery()
    stmt = (
        dialect_insert(Delivery.__table__)
        .from_select(
            FROZEN_COLUMNS,
            select(
                literal(org_id),
                literal(child.id),
                audience.c.contact_id,
                audience.c.list_id,
                literal(str(DeliveryStatus.QUEUED)),
                literal(0),
                literal(""),
                literal(""),
                false(),
            ).where(audience.c.contact_id.is_not(None)),
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "contact_id"])
    )
    db.session.execute(stmt)
    return child, freeze_audience(org_id, child)
