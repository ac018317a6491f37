"""The sending API: send, schedule, pause, resume, cancel, progress, audience, deliveries."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from campaigns.models import Campaign, Delivery
from contacts.db import db
from tests.factories import make_list, make_org
from tests.factories_sending import make_contacts, make_ready_campaign


@pytest.fixture
def ready(org):
    lst = make_list(org)
    make_contacts(org, lst, 6)
    make_contacts(org, lst, 2, subscription="pending", confirmed=False)
    campaign = make_ready_campaign(org, [lst])
    db.session.commit()
    return campaign


def _deliveries(campaign_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)
    )


def test_an_officer_sends_an_approved_campaign(api, ready, stub_broker):
    response = api("officer").post(f"/campaigns/{ready.id}/send")

    assert response.status_code == 202, response.json
    assert response.json["status"] == "sending"
    assert response.json["recipients"] == 6
    assert _deliveries(ready.id) == 6
    assert stub_broker.queues["send"].qsize() == 1  # start_campaign, after the commit


def test_a_director_may_send_too(api, ready, stub_broker):
    assert api("director").post(f"/campaigns/{ready.id}/send").status_code == 202


@pytest.mark.parametrize("role", ["admin", "analyst"])
def test_other_roles_may_not_send(api, ready, role):
    response = api(role).post(f"/campaigns/{ready.id}/send")

    assert response.status_code == 403
    assert _deliveries(ready.id) == 0


def test_another_bodys_campaign_is_not_found(api, ready):
    stranger = api("officer", organisation=make_org())

    for action in ("send", "pause", "resume", "cancel"):
        assert stranger.post(f"/campaigns/{ready.id}/{action}").status_code == 404
    for view in ("progress", "audience", "deliveries"):
        assert stranger.get(f"/campaigns/{ready.id}/{view}").status_code == 404


def test_a_draft_cannot_be_sent(api, org):
    lst = make_list(org)
    make_contacts(org, lst, 2)
    draft = make_ready_campaign(org, [lst], status="draft")
    db.session.commit()

    response = api("officer").post(f"/campaigns/{draft.id}/send")

    assert response.status_code == 409
    assert response.json["error"]["code"] == "invalid_transition"


def test_sending_twice_is_refused_and_freezes_once(api, ready, stub_broker):
    client = api("officer")
    client.post(f"/campaigns/{ready.id}/send")

    again = client.post(f"/campaigns/{ready.id}/send")

    assert again.status_code == 409
    assert _deliveries(ready.id) == 6


def test_a_time_in_the_future_schedules_the_send(api, ready):
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)

    response = api("officer").post(f"/campaigns/{ready.id}/send", json={"at": at.isoformat()})

    assert response.status_code == 202
    assert response.json["status"] == "scheduled"
    db.session.expire_all()
    stored = db.session.get(Campaign, ready.id)
    assert stored.scheduled_at == at
    assert _deliveries(ready.id) == 0


def test_a_time_without_offset_is_paris_time(api, ready):
    day = (dt.date.today() + dt.timedelta(days=10)).isoformat()

    response = api("officer").post(f"/campaigns/{ready.id}/send", json={"at": f"{day}T09:30"})

    assert response.status_code == 202
    db.session.expire_all()
    assert db.session.get(Campaign, ready.id).scheduled_at.hour in (7, 8)  # CEST or CET


def test_a_malformed_time_is_a_400(api, ready):
    response = api("officer").post(f"/campaigns/{ready.id}/send", json={"at": "demain"})

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_at"


def test_pause_resume_and_cancel_move_the_campaign(api, ready, stub_broker):
    client = api("officer")
    client.post(f"/campaigns/{ready.id}/send")

    assert client.post(f"/campaigns/{ready.id}/pause").json["status"] == "paused"
    resumed = client.post(f"/campaigns/{ready.id}/resume")
    assert resumed.status_code == 202 and resumed.json["remaining"] == 6
    cancelled = client.post(f"/campaigns/{ready.id}/cancel")
    assert cancelled.json == {**cancelled.json, "status": "cancelled", "cancelled": 6}
    assert client.post(f"/campaigns/{ready.id}/resume").status_code == 409


def test_progress_counts_the_deliveries(api, ready, stub_broker):
    client = api("officer")
    client.post(f"/campaigns/{ready.id}/send")

    body = client.get(f"/campaigns/{ready.id}/progress").json

    assert body["status"] == "sending"
    assert body["recipients"] == 6 and body["queued"] == 6 and body["sent"] == 0
    assert body["remaining"] == 6 and body["possible_duplicates"] == 0


def test_the_audience_preview_gives_the_reasons(api, ready):
    body = api("director").get(f"/campaigns/{ready.id}/audience").json

    assert body["recipients"] == 6
    assert body["left_out"]["pending"] == 2 and body["left_out_total"] == 2


def test_deliveries_are_listed_by_outcome_with_keyset_pages(api, ready, stub_broker):
    client = api("officer")
    client.post(f"/campaigns/{ready.id}/send")
    db.session.execute(
        Delivery.__table__.update()
        .where(Delivery.campaign_id == ready.id)
        .values(status="sent", possible_duplicate=True)
    )
    db.session.commit()

    first = client.get(f"/campaigns/{ready.id}/deliveries?which=duplicates&limit=4").json
    rest = client.get(
        f"/campaigns/{ready.id}/deliveries?which=duplicates&after={first['next_after']}"
    ).json

    assert len(first["deliveries"]) == 4 and len(rest["deliveries"]) == 2
    assert "@" in first["deliveries"][0]["email"]
    bad = client.get(f"/campaigns/{ready.id}/deliveries?which=everyone")
    assert bad.status_code == 400


def test_the_sending_routes_are_in_the_openapi_document(app):
    from webapp.api import build_spec

    paths = build_spec(app)["paths"]

    for action in ("send", "pause", "resume", "cancel", "progress", "audience", "deliveries"):
        assert f"/campaigns/{{campaign_id}}/{action}" in paths
