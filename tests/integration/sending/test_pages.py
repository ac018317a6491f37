"""The sending pages: confirm with the audience, live progress, the lists of who got what."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from campaigns.models import Campaign, Delivery
from contacts.db import db
from tests.factories import make_list, make_org
from tests.factories_sending import make_contacts, make_ready_campaign


@pytest.fixture
def ready(org):
    lst = make_list(org, name="Lettre du maire")
    make_contacts(org, lst, 5)
    make_contacts(org, lst, 3, status="bounced")
    make_contacts(org, lst, 1, source="purchased", is_risky=True, subscription="pending",
                  confirmed=False)  # fmt: skip
    campaign = make_ready_campaign(org, [lst], name="Lettre de juin")
    db.session.commit()
    return campaign


def test_the_confirm_page_shows_the_count_and_why_people_are_left_out(client, login_as, ready):
    login_as("officer")

    page = client.get(f"/sending/{ready.id}/confirm").get_data(as_text=True)

    assert "<strong>5</strong>" in page
    assert "Lettre du maire" in page
    assert 'data-reason="bounced"' in page and 'data-reason="risky"' in page
    assert "adresse en échec définitif" in page
    assert "Envoyer à 5 destinataires" in page


def test_sending_from_the_page_freezes_and_leads_to_the_progress_page(
    client, login_as, ready, stub_broker
):
    login_as("director")

    response = client.post(f"/sending/{ready.id}/send")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/sending/{ready.id}")
    db.session.expire_all()
    assert db.session.get(Campaign, ready.id).status == "sending"
    page = client.get(f"/sending/{ready.id}").get_data(as_text=True)
    assert 'id="sending-bar"' in page and "sending-progress.js" in page
    assert 'id="pause"' in page and 'id="cancel"' in page


def test_scheduling_from_the_page(client, login_as, ready):
    login_as("officer")

    client.post(f"/sending/{ready.id}/send", data={"at": "2099-06-01T09:30"})

    db.session.expire_all()
    campaign = db.session.get(Campaign, ready.id)
    assert campaign.status == "scheduled" and campaign.scheduled_at.year == 2099


def test_a_refused_send_explains_itself(client, login_as, org):
    lst = make_list(org)
    make_contacts(org, lst, 2, subscription="pending", confirmed=False)
    campaign = make_ready_campaign(org, [lst])
    db.session.commit()
    login_as("officer")

    response = client.post(f"/sending/{campaign.id}/send", follow_redirects=True)

    assert "Aucun destinataire" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "approved"


def test_the_progress_json_is_what_the_page_polls(client, login_as, ready, stub_broker):
    login_as("officer")
    client.post(f"/sending/{ready.id}/send")

    data = client.get(f"/sending/{ready.id}/progress.json").json

    assert data["status"] == "sending" and data["recipients"] == 5 and data["queued"] == 5


def test_pause_resume_cancel_buttons(client, login_as, ready, stub_broker):
    login_as("officer")
    client.post(f"/sending/{ready.id}/send")

    client.post(f"/sending/{ready.id}/pause")
    db.session.expire_all()
    assert db.session.get(Campaign, ready.id).status == "paused"
    assert 'id="resume"' in client.get(f"/sending/{ready.id}").get_data(as_text=True)
    client.post(f"/sending/{ready.id}/resume")
    client.post(f"/sending/{ready.id}/cancel")
    db.session.expire_all()
    assert db.session.get(Campaign, ready.id).status == "cancelled"


def test_after_a_crash_the_page_lists_who_may_have_got_it_twice(
    client, login_as, ready, stub_broker
):
    login_as("officer")
    client.post(f"/sending/{ready.id}/send")
    rows = db.session.scalars(select(Delivery).where(Delivery.campaign_id == ready.id)).all()
    rows[0].status, rows[0].possible_duplicate = "sent", True
    rows[1].status = "sent"
    db.session.commit()

    twice = client.get(f"/sending/{ready.id}/deliveries/duplicates").get_data(as_text=True)
    got = client.get(f"/sending/{ready.id}/deliveries/sent").get_data(as_text=True)
    waiting = client.get(f"/sending/{ready.id}/deliveries/pending").get_data(as_text=True)

    emails = {r.id: r for r in rows}
    from contacts.models import Contact

    first = db.session.get(Contact, emails[rows[0].id].contact_id).email
    second = db.session.get(Contact, emails[rows[1].id].contact_id).email
    third = db.session.get(Contact, emails[rows[2].id].contact_id).email
    assert first in twice and second not in twice and "peut-être en double" in twice
    assert first in got and second in got and third not in got
    assert third in waiting and first not in waiting
    progress = client.get(f"/sending/{ready.id}").get_data(as_text=True)
    assert "peut-être reçu deux fois" in progress


def test_an_analyst_sees_nothing(client, login_as, ready):
    login_as("analyst")

    assert client.get(f"/sending/{ready.id}").status_code in (403, 404)


def test_another_body_gets_a_404(client, login_as, ready):
    login_as("officer", organisation=make_org())

    assert client.get(f"/sending/{ready.id}").status_code == 404
    assert client.get(f"/sending/{ready.id}/confirm").status_code == 404
    assert client.post(f"/sending/{ready.id}/send").status_code == 404


def test_an_admin_may_watch_but_not_send(client, login_as, ready):
    login_as("admin")

    assert client.get(f"/sending/{ready.id}/progress.json").status_code == 200
    assert client.post(f"/sending/{ready.id}/send").status_code == 403
