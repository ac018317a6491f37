"""The review workflow refuses every out-of-order move and every role that may not make it.

These cases need no database: :func:`campaigns.workflow.transition` refuses before it
writes anything. The allowed moves are written out again here by hand, so that a change
to the table in ``workflow.py`` has to be made twice, on purpose.
"""

from __future__ import annotations

import pytest

from campaigns import workflow
from campaigns.models import Campaign, CampaignStatus
from contacts.db import DomainError

STATUSES = [s.value for s in CampaignStatus]
ROLES = ["officer", "director", "admin", "analyst", "system"]
SENDERS = {"officer", "director"}

ALLOWED = {
    ("draft", "in_review"): {"officer"},
    ("in_review", "approved"): {"director"},
    ("in_review", "draft"): {"director"},
    ("approved", "in_review"): {"officer"},
    ("scheduled", "in_review"): {"officer"},
    ("held", "in_review"): {"officer"},
    ("approved", "scheduled"): SENDERS,
    ("approved", "sending"): SENDERS,
    ("scheduled", "approved"): SENDERS,
    ("scheduled", "sending"): SENDERS | {"system"},
    ("scheduled", "held"): {"system"},
    ("held", "sending"): SENDERS,
    ("held", "scheduled"): SENDERS,
    ("sending", "paused"): SENDERS,
    ("paused", "sending"): SENDERS,
    ("sending", "sent"): {"system"},
    ("approved", "cancelled"): SENDERS,
    ("scheduled", "cancelled"): SENDERS,
    ("held", "cancelled"): SENDERS,
    ("sending", "cancelled"): SENDERS,
    ("paused", "cancelled"): SENDERS,
}

REFUSED = [
    (f, t, r)
    for f in STATUSES
    for t in STATUSES
    for r in ROLES
    if r not in ALLOWED.get((f, t), set())
]


def test_the_table_allows_exactly_the_moves_written_here():
    table = {pair: set(roles) for pair, roles in workflow.TRANSITIONS.items()}
    assert table == ALLOWED


@pytest.mark.parametrize(("from_status", "to_status", "role"), REFUSED)
def test_transition_refuses_out_of_order_moves_and_roles_that_may_not_make_them(
    from_status, to_status, role
):
    campaign = Campaign(id=1, organisation_id=7, status=from_status)
    with pytest.raises(DomainError) as caught:
        workflow.transition(7, campaign, to_status, user_id=1, role=role)
    if (from_status, to_status) in ALLOWED:
        assert (caught.value.code, caught.value.status) == ("forbidden", 403)
    else:
        assert (caught.value.code, caught.value.status) == ("invalid_transition", 409)
    assert campaign.status == from_status


def test_transition_of_another_bodys_campaign_is_not_found():
    campaign = Campaign(id=1, organisation_id=8, status="in_review")
    with pytest.raises(DomainError) as caught:
        workflow.transition(7, campaign, "approved", user_id=1, role="director")
    assert caught.value.status == 404


def test_a_director_may_not_send_back_without_a_comment():
    campaign = Campaign(id=1, organisation_id=7, status="in_review")
    with pytest.raises(DomainError) as caught:
        workflow.send_back_campaign(7, campaign, 1, "director", "   ")
    assert caught.value.code == "comment_required"


def test_next_statuses_lists_what_a_role_may_do():
    assert workflow.next_statuses("in_review", "director") == ["approved", "draft"]
    assert workflow.next_statuses("in_review", "officer") == []
