"""Review workflow against the database: moves are recorded, races lose, edits re-review."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from campaigns import editing, workflow
from campaigns.models import Campaign, CampaignTransition
from contacts.db import DomainError, db
from tests.factories import make_list, make_user
from tests.factories_campaigns import make_campaign
from tests.integration.campaigns.test_workflow_matrix import ALLOWED

ALLOWED_MOVES = sorted((f, t, r) for (f, t), roles in ALLOWED.items() for r in roles)


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(("from_status", "to_status", "role"), ALLOWED_MOVES)
def test_every_allowed_move_changes_the_status_and_is_recorded(org, from_status, to_status, role):
    user = None if role == "system" else make_user(org, role=role)
    campaign = make_campaign(org, status=from_status)
    workflow.transition(org.id, campaign, to_status, getattr(user, "id", None), role, comment="Vu.")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == to_status
    trail = workflow.transitions_of(org.id, campaign.id)
    assert [(t.from_status, t.to_status, t.user_id, t.comment) for t in trail] == [
        (from_status, to_status, getattr(user, "id", None), "Vu.")
    ]


def test_approval_records_the_director_and_the_time(org):
    director = make_user(org, role="director")
    campaign = make_campaign(org, status="in_review")
    row = workflow.approve_campaign(org.id, campaign, director.id, "director", "Parfait.")
    db.session.commit()
    db.session.expire_all()
    fresh = db.session.get(Campaign, campaign.id)
    assert fresh.status == "approved"
    assert fresh.approved_by_id == director.id
    assert row.created_at is not None


def test_a_move_lost_to_a_concurrent_one_is_refused(org):
    campaign = make_campaign(org, status="approved")
    db.session.commit()
    # Another process starts sending; this session's object still says "approved".
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(status="sending")
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(DomainError) as caught:
        workflow.transition(org.id, campaign, "sending", None, "officer")
    assert caught.value.code == "invalid_transition"
    assert db.session.query(CampaignTransition).count() == 0


def test_approving_a_version_the_director_has_not_seen_is_refused(org):
    director = make_user(org, role="director")
    campaign = make_campaign(org, status="in_review", version=3)
    with pytest.raises(DomainError) as caught:
        workflow.approve_campaign(org.id, campaign, director.id, "director", version=2)
    assert caught.value.code == "stale_version"


def test_sending_back_returns_the_campaign_to_draft_with_the_comment(org):
    director = make_user(org, role="director")
    campaign = make_campaign(org, status="in_review")
    workflow.send_back_campaign(org.id, campaign, director.id, "director", "Ajoutez le lieu.")
    db.session.commit()
    assert campaign.status == "draft"
    assert workflow.transitions_of(org.id, campaign.id)[-1].comment == "Ajoutez le lieu."


def test_editing_an_approved_campaign_sends_it_back_to_review(org):
    officer = make_user(org, role="officer")
    director = make_user(org, role="director")
    campaign = make_campaign(org, status="approved", approved_by_id=director.id)
    blocks = [*campaign.blocks, {"type": "divider"}]
    changed = editing.update_campaign(
        org.id, campaign, {"blocks": blocks}, user_id=officer.id, role="officer",
        compiler=lambda mjml: _fake_result(),
    )  # fmt: skip
    db.session.commit()
    db.session.expire_all()
    fresh = db.session.get(Campaign, campaign.id)
    assert changed
    assert fresh.status == "in_review"
    assert fresh.approved_by_id is None
    assert fresh.version == 2
    last = workflow.transitions_of(org.id, campaign.id)[-1]
    assert (last.from_status, last.to_status, last.user_id) == ("approved", "in_review", officer.id)


def test_changing_the_audience_of_a_scheduled_campaign_sends_it_back_to_review(org):
    officer = make_user(org, role="officer")
    lst = make_list(org)
    campaign = make_campaign(org, status="scheduled")
    editing.update_campaign(
        org.id, campaign, {"list_ids": [lst.id]}, user_id=officer.id, role="officer",
        compiler=lambda mjml: _fake_result(),
    )  # fmt: skip
    assert campaign.status == "in_review"
    assert campaign.scheduled_at is None


def test_saving_the_same_content_again_changes_nothing(org):
    officer = make_user(org, role="officer")
    campaign = make_campaign(org, status="approved")
    changed = editing.update_campaign(
        org.id, campaign, {"blocks": campaign.blocks, "subject": campaign.subject},
        user_id=officer.id, role="officer",
    )  # fmt: skip
    assert not changed
    assert campaign.status == "approved"
    assert campaign.version == 1


@pytest.mark.parametrize("status", ["sending", "paused", "sent", "cancelled"])
def test_a_campaign_whose_sending_began_or_ended_cannot_be_edited(org, status):
    campaign = make_campaign(org, status=status)
    with pytest.raises(DomainError) as caught:
        editing.update_campaign(
            org.id, campaign, {"subject": "Autre"}, user_id=None, role="officer"
        )
    assert (caught.value.code, caught.value.status) == ("not_editable", 409)


@pytest.mark.parametrize("role", ["director", "admin", "analyst"])
def test_only_an_officer_edits_content(org, role):
    campaign = make_campaign(org)
    with pytest.raises(DomainError) as caught:
        editing.update_campaign(org.id, campaign, {"subject": "Autre"}, user_id=None, role=role)
    assert caught.value.status == 403
    assert campaign.subject != "Autre"


def test_submitting_a_campaign_with_errors_is_refused_with_the_checks(org):
    officer = make_user(org, role="officer")
    campaign = make_campaign(org, subject="")  # no subject, no list
    with pytest.raises(DomainError) as caught:
        editing.submit_campaign(
            org.id, campaign, user_id=officer.id, role="officer",
            compiler=lambda mjml: _fake_result(),
        )  # fmt: skip
    codes = {f["code"] for f in caught.value.details["checks"]}
    assert {"missing_subject", "no_audience"} <= codes
    assert campaign.status == "draft"


def test_submitting_a_clean_campaign_puts_it_in_review(org):
    officer = make_user(org, role="officer")
    lst = make_list(org)
    campaign = make_campaign(org, list_ids=[lst.id])
    editing.submit_campaign(
        org.id, campaign, user_id=officer.id, role="officer", comment="Prête.",
        compiler=lambda mjml: _fake_result(),
    )  # fmt: skip
    assert campaign.status == "in_review"


def test_an_invitation_to_a_past_event_cannot_be_submitted(org):
    from tests.factories_campaigns import make_event

    lst = make_list(org, purpose="invitations")
    campaign = make_campaign(org, kind="invitation", event=make_event(-2), list_ids=[lst.id])
    found = editing.campaign_checks(org.id, campaign, compiler=lambda mjml: _fake_result())
    assert "event_past" in {f["code"] for f in found}


def _fake_result():
    """A stand-in for the mjml process where the layout itself is not under test."""
    from campaigns.mjml import MjmlResult

    return MjmlResult("<html><body><p>compiled</p></body></html>")


def test_a_campaign_edited_into_errors_during_review_cannot_be_approved(org):
    director = make_user(org, role="director")
    campaign = make_campaign(org, status="in_review", subject="")  # no subject, no list
    with pytest.raises(DomainError) as caught:
        editing.approve_campaign(
            org.id, campaign, user_id=director.id, role="director",
            compiler=lambda mjml: _fake_result(),
        )  # fmt: skip
    assert caught.value.code == "checks_failed"
    assert campaign.status == "in_review"
