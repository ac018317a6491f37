"""Resending to those who did not open: a new campaign linked to the first, consent-bound."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from analytics.models import TrackingEvent
from campaigns import audience, sending
from campaigns.models import Campaign, Delivery
from contacts.db import db
from contacts.models import Contact
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import drive


@pytest.fixture
def sent(org, newsletter_list):
    """A sent campaign: 3 recipients who accepted measurement, 2 who did not."""
    org.tracking_policy = "per_contact"
    make_contacts(org, newsletter_list, 3, tracking_consent=True)
    make_contacts(org, newsletter_list, 2, tracking_consent=False)
    campaign = make_ready_campaign(org, [newsletter_list])
    sending.start_sending(org.id, campaign, None, "officer")
    db.session.execute(
        update(Delivery).where(Delivery.campaign_id == campaign.id).values(status="sent")
    )
    db.session.execute(update(Campaign).where(Campaign.id == campaign.id).values(status="sent"))
    db.session.commit()
    rows = db.session.scalars(
        select(Delivery).where(Delivery.campaign_id == campaign.id).order_by(Delivery.id)
    ).all()
    return campaign, rows


def _event(campaign, row, kind):
    db.session.add(
        TrackingEvent(
            organisation_id=campaign.organisation_id,
            campaign_id=campaign.id,
            kind=kind,
            delivery_id=row.id,
            contact_id=row.contact_id,
        )
    )
    db.session.commit()


def test_only_consenting_non_openers_get_the_resend(api, sent):
    campaign, rows = sent
    _event(campaign, rows[0], "open")
    _event(campaign, rows[1], "click")

    response = api("officer").post(f"/campaigns/{campaign.id}/resend")

    assert response.status_code == 201, response.json
    assert response.json["recipients"] == 1 and response.json["parent_campaign_id"] == campaign.id
    child = db.session.get(Campaign, response.json["id"])
    assert child.status == "draft" and child.parent_campaign_id == campaign.id
    assert child.subject.startswith("Relance : ")
    targets = db.session.scalars(
        select(Delivery.contact_id).where(Delivery.campaign_id == child.id)
    )
    assert list(targets) == [rows[2].contact_id]


def test_a_body_measuring_only_aggregates_cannot_resend(api, sent, org):
    campaign, _ = sent
    org.tracking_policy = "aggregate"
    db.session.commit()

    response = api("officer").post(f"/campaigns/{campaign.id}/resend")

    assert response.status_code == 409
    assert response.json["error"]["code"] == "tracking_not_allowed"


def test_when_everyone_measurable_opened_there_is_nobody_to_resend(api, sent):
    campaign, rows = sent
    for row in rows[:3]:
        _event(campaign, row, "open")

    response = api("officer").post(f"/campaigns/{campaign.id}/resend")

    assert response.json["error"]["code"] == "nobody_to_resend"
    assert (
        db.session.scalar(select(Campaign.id).where(Campaign.parent_campaign_id == campaign.id))
        is None
    )


def test_a_campaign_still_sending_cannot_be_resent(api, sent):
    campaign, _ = sent
    db.session.execute(update(Campaign).where(Campaign.id == campaign.id).values(status="sending"))
    db.session.commit()

    assert api("officer").post(f"/campaigns/{campaign.id}/resend").status_code == 409


def test_a_director_may_not_create_a_resend(api, sent):
    campaign, _ = sent

    assert api("director").post(f"/campaigns/{campaign.id}/resend").status_code == 403


@pytest.mark.mjml
def test_the_resend_keeps_its_audience_and_still_skips_a_later_unsubscribe(
    app, api, sent, relay, body
):
    campaign, rows = sent
    _event(campaign, rows[0], "open")
    child_id = api("officer").post(f"/campaigns/{campaign.id}/resend").json["id"]
    db.session.get(Contact, rows[2].contact_id).status = "unsubscribed"
    db.session.execute(update(Campaign).where(Campaign.id == child_id).values(status="approved"))
    db.session.commit()
    child = db.session.get(Campaign, child_id)

    assert audience.preview_audience(child.organisation_id, child).recipients == 2
    assert sending.start_sending(child.organisation_id, child, None, "officer") == 2
    db.session.commit()
    drive(app, child.id)

    db.session.refresh(child)
    assert child.status == "sent"
    assert relay.recipients() == [db.session.get(Contact, rows[1].contact_id).email]
