"""What campaigns and tracking hold about one contact: for the unsubscribe event, the GDPR
access export and erasure.

``contacts`` cannot see deliveries or tracking events (they sit above it), so the parts
of a contact's data held there are read and forgotten here; ``contacts.gdpr`` holds the
contact-side part and the edge (page or API) calls both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from analytics.models import Answer, EventKind, TrackingEvent
from campaigns.models import Campaign, Delivery, OutboxMessage
from contacts.db import db
from contacts.models import Organisation, Subscription, TrackingPolicy


def delivery_of(org_id: int, contact_id: int, delivery_id: int) -> Delivery | None:
    """The delivery named by an unsubscribe token, if it is really this contact's."""
    if not delivery_id:
        return None
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.organisation_id != org_id or delivery.contact_id != contact_id:
        return None
    return delivery


def record_unsubscribe(
    org: Organisation, contact_id: int, list_id: int, delivery_id: int
) -> TrackingEvent | None:
    """Count an unsubscribe for the campaign the link came from; None without a campaign.

    The body's policy decides what the event names: ``per_contact`` with the contact's
    measurement consent keeps the delivery and contact; otherwise the event says only
    that someone left that campaign (aggregates, CNIL).
    """
    delivery = delivery_of(org.id, contact_id, delivery_id)
    if delivery is None:
        return None
    named = org.tracking_policy == TrackingPolicy.PER_CONTACT and _tracking_consent(
        org.id, contact_id, list_id
    )
    event = TrackingEvent(
        organisation_id=org.id,
        campaign_id=delivery.campaign_id,
        kind=EventKind.UNSUBSCRIBE,
        delivery_id=delivery.id if named else None,
        contact_id=contact_id if named else None,
    )
    db.session.add(event)
    return event


def _tracking_consent(org_id: int, contact_id: int, list_id: int) -> bool:
    found = db.session.scalar(
        select(Subscription.tracking_consent).where(
            Subscription.organisation_id == org_id,
            Subscription.contact_id == contact_id,
            Subscription.list_id == list_id,
        )
    )
    return bool(found)


def contact_activity(org_id: int, contact_id: int) -> dict[str, Any]:
    """Deliveries, tracking events and answers naming this contact (access export)."""
    deliveries = db.session.execute(
        select(Delivery, Campaign.subject, Campaign.kind)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.organisation_id == org_id, Delivery.contact_id == contact_id)
        .order_by(Delivery.id)
    ).all()
    delivery_ids = [d.id for d, _, _ in deliveries]
    events = db.session.scalars(
        select(TrackingEvent)
        .where(
            TrackingEvent.organisation_id == org_id,
            (TrackingEvent.contact_id == contact_id)
            | (TrackingEvent.delivery_id.in_(delivery_ids or [-1])),
        )
        .order_by(TrackingEvent.created_at, TrackingEvent.id)
    ).all()
    answers = db.session.scalars(
        select(Answer)
        .where(Answer.organisation_id == org_id, Answer.delivery_id.in_(delivery_ids or [-1]))
        .order_by(Answer.id)
    ).all()
    return {
        "deliveries": [
            {
                "campaign_id": d.campaign_id,
                "campaign_subject": subject,
                "campaign_kind": kind,
                "status": d.status,
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
            }
            for d, subject, kind in deliveries
        ],
        "events": [
            {
                "campaign_id": e.campaign_id,
                "kind": e.kind,
                "at": e.created_at.isoformat() if e.created_at else None,
                "is_machine": e.is_machine,
                "device_class": e.device_class,
                "value": e.value,
            }
            for e in events
        ],
        "answers": [
            {
                "campaign_id": a.campaign_id,
                "kind": a.kind,
                "value": a.value,
                "at": a.updated_at.isoformat() if a.updated_at else None,
            }
            for a in answers
        ],
    }


def forget_contact(org_id: int, contact_id: int, email: str) -> None:
    """Erasure, campaign side: events stop naming the contact; counts stay as they were.

    Delivery rows stay (they make the campaign's totals) but point to the anonymised
    contact; tracking events lose their contact and delivery; captured outbox copies of
    messages to the address are deleted, since they hold it in clear.
    """
    delivery_ids = select(Delivery.id).where(
        Delivery.organisation_id == org_id, Delivery.contact_id == contact_id
    )
    touched = db.session.scalars(
        select(TrackingEvent.campaign_id)
        .where(
            TrackingEvent.organisation_id == org_id,
            (TrackingEvent.contact_id == contact_id) | TrackingEvent.delivery_id.in_(delivery_ids),
        )
        .distinct()
    ).all()
    db.session.execute(
        update(TrackingEvent)
        .where(TrackingEvent.organisation_id == org_id, TrackingEvent.contact_id == contact_id)
        .values(contact_id=None, delivery_id=None)
    )
    db.session.execute(
        update(TrackingEvent)
        .where(TrackingEvent.organisation_id == org_id, TrackingEvent.delivery_id.in_(delivery_ids))
        .values(delivery_id=None)
    )
    # The rollup counted those events per delivery; recount them as they now stand.
    from analytics import rollup

    for campaign_id in touched:
        rollup.rebuild(org_id, campaign_id, db.session.connection())
    if email:
        db.session.execute(
            OutboxMessage.__table__.delete().where(
                OutboxMessage.organisation_id == org_id, OutboxMessage.recipients == email
            )
        )


def full_export(org_id: int, contact_id: int) -> dict[str, Any]:
    """The GDPR access export: the contact side (``contacts.gdpr``) plus campaigns' data."""
    from contacts import gdpr

    data = gdpr.export_contact(org_id, contact_id)
    data.update(contact_activity(org_id, contact_id))
    return data


def erase_everywhere(
    org_id: int,
    contact_id: int,
    secret: str | bytes,
    *,
    actor_user_id: int | None = None,
    api_token_id: int | None = None,
):
    """GDPR erasure across packages: campaigns' traces first, then the contact itself."""
    from contacts import gdpr
    from contacts.people import get_contact

    contact = get_contact(org_id, contact_id)
    if contact is not None and contact.status != "erased":
        forget_contact(org_id, contact.id, contact.email)
    return gdpr.erase_contact(
        org_id, contact_id, secret, actor_user_id=actor_user_id, api_token_id=api_token_id
    )
