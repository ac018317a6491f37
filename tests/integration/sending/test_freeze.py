"""Freezing the audience: one row per sendable contact, and the reasons others are left out."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from campaigns import audience, sending
from campaigns.models import CampaignTransition, Delivery
from contacts.db import DomainError, db
from tests.factories import make_list
from tests.factories_sending import add_subscriptions, make_contacts, make_ready_campaign


def _count(campaign_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)
    )


def test_contacts_on_two_lists_get_one_delivery_each(org):
    a, b = make_list(org), make_list(org)
    both = make_contacts(org, a, 3)
    add_subscriptions(org, b, both)
    make_contacts(org, b, 2)
    campaign = make_ready_campaign(org, [a, b])

    count = sending.start_sending(org.id, campaign, None, "officer")

    assert count == 5
    assert _count(campaign.id) == 5
    lists = db.session.scalars(select(Delivery.list_id).where(Delivery.contact_id.in_(both))).all()
    assert set(lists) == {min(a.id, b.id)}


def test_only_sendable_contacts_are_frozen(org):
    lst = make_list(org)
    make_contacts(org, lst, 4)
    make_contacts(org, lst, 1, subscription="pending", confirmed=False)
    make_contacts(org, lst, 1, subscription="withdrawn")
    make_contacts(org, lst, 1, status="bounced")
    make_contacts(org, lst, 1, status="erased")
    make_contacts(org, lst, 1, source="purchased", is_risky=True, subscription="pending",
                  confirmed=False)  # fmt: skip
    campaign = make_ready_campaign(org, [lst])

    assert sending.start_sending(org.id, campaign, None, "officer") == 4


def test_preview_says_who_is_left_out_and_why(org):
    lst, other = make_list(org), make_list(org)
    make_contacts(org, lst, 4)
    make_contacts(org, lst, 2, subscription="pending", confirmed=False)
    make_contacts(org, lst, 1, subscription="withdrawn")
    make_contacts(org, lst, 1, status="unsubscribed", subscription="withdrawn")
    make_contacts(org, lst, 3, status="bounced")
    make_contacts(org, lst, 1, status="complained")
    make_contacts(org, lst, 2, source="unknown", is_risky=True, subscription="pending",
                  confirmed=False)  # fmt: skip
    pending_here_active_there = make_contacts(org, lst, 1, subscription="pending", confirmed=False)
    add_subscriptions(org, other, pending_here_active_there)
    campaign = make_ready_campaign(org, [lst, other])

    preview = audience.preview_audience(org.id, campaign)

    assert preview.recipients == 5
    assert preview.left_out == {
        "pending": 2,
        "unsubscribed": 2,
        "bounced": 3,
        "suppressed": 1,
        "risky": 2,
    }


def test_preview_and_freeze_agree(org):
    lst = make_list(org)
    make_contacts(org, lst, 7)
    make_contacts(org, lst, 2, status="bounced")
    campaign = make_ready_campaign(org, [lst])
    expected = audience.preview_audience(org.id, campaign).recipients

    assert sending.start_sending(org.id, campaign, None, "officer") == expected == 7


def test_another_bodys_contacts_are_never_frozen(org):
    from tests.factories import make_org

    lst = make_list(org)
    make_contacts(org, lst, 2)
    other = make_org()
    foreign = make_list(other)
    make_contacts(other, foreign, 3)
    campaign = make_ready_campaign(org, [lst])
    campaign.list_ids = [lst.id, foreign.id]  # a foreign id smuggled into the campaign
    db.session.flush()

    assert sending.start_sending(org.id, campaign, None, "officer") == 2


def test_a_double_click_starts_the_campaign_once(org):
    lst = make_list(org)
    make_contacts(org, lst, 3)
    campaign = make_ready_campaign(org, [lst])
    sending.start_sending(org.id, campaign, None, "officer")
    db.session.commit()

    with pytest.raises(DomainError) as err:
        sending.start_sending(org.id, campaign, None, "officer")

    assert err.value.code == "invalid_transition"
    assert _count(campaign.id) == 3
    moves = db.session.scalars(
        select(CampaignTransition.to_status).where(CampaignTransition.campaign_id == campaign.id)
    ).all()
    assert moves == ["sending"]


def test_a_stale_copy_of_the_campaign_cannot_start_it_again(org):
    """Two schedulers holding the same approved campaign: the conditional UPDATE picks one."""
    from campaigns.models import Campaign

    lst = make_list(org)
    make_contacts(org, lst, 3)
    campaign = make_ready_campaign(org, [lst])
    db.session.commit()
    sending.start_sending(org.id, campaign, None, "officer")
    db.session.commit()
    stale = Campaign(id=campaign.id, organisation_id=org.id, status="approved")

    with pytest.raises(DomainError):
        sending.start_sending(org.id, stale, None, "system")


def test_nobody_to_send_to_is_refused_and_nothing_changes(org):
    lst = make_list(org)
    make_contacts(org, lst, 2, subscription="pending", confirmed=False)
    campaign = make_ready_campaign(org, [lst])
    db.session.commit()

    with pytest.raises(DomainError) as err:
        sending.start_sending(org.id, campaign, None, "officer")
    db.session.rollback()

    assert err.value.code == "empty_audience"
    db.session.refresh(campaign)
    assert campaign.status == "approved"


def test_a_draft_cannot_be_sent(org):
    lst = make_list(org)
    make_contacts(org, lst, 2)
    campaign = make_ready_campaign(org, [lst], status="draft")

    with pytest.raises(DomainError) as err:
        sending.start_sending(org.id, campaign, None, "officer")

    assert err.value.code == "invalid_transition"
