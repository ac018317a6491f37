"""What restarts a contact's retention clock: a click tied to them or an answer, never an open."""

from __future__ import annotations

import datetime as dt

from contacts import gdpr
from contacts.db import db, utcnow
from contacts.models import Contact
from tests.factories import make_list
from tests.factories_analytics import (
    BROWSER_UA,
    flush_tracking,
    path_of,
    quiet_tracking_buffer,  # noqa: F401 - autouse fixture
    recipient_links,
    sent_campaign,
)
from tests.factories_campaigns import make_event
from tests.factories_contacts import make_contact

LONG_AGO = dt.datetime(2021, 1, 4, 9, 0, tzinfo=dt.UTC)


def _recipient(org, *, policy: str, consent: bool = True, **campaign):
    org.tracking_policy = policy
    lst = make_list(org, purpose=campaign.pop("purpose", "newsletter"))
    contact = make_contact(org, lst, tracking_consent=consent)
    contact.last_activity_at = LONG_AGO
    _, links, deliveries = sent_campaign(org, lst, [contact], **campaign)
    db.session.commit()
    values = recipient_links(org, _, links).values(
        deliveries[0].id, contact.id, lst.id, tracking_consent=consent
    )
    return contact.id, values


def _last_activity(contact_id: int) -> dt.datetime | None:
    flush_tracking()
    db.session.expire_all()
    return db.session.get(Contact, contact_id).last_activity_at


def _get(client, url: str, ua: str = BROWSER_UA):
    return client.get(path_of(url), headers={"User-Agent": ua})


def test_a_click_tied_to_the_person_restarts_their_retention_clock(client, org):
    contact_id, values = _recipient(org, policy="per_contact")
    before = utcnow()
    assert _get(client, values["link_1"]).status_code == 302
    assert _last_activity(contact_id) >= before - dt.timedelta(seconds=5)
    assert not gdpr.is_stale(db.session.get(Contact, contact_id), months=36)


def test_an_open_is_not_an_activity(client, org):
    contact_id, values = _recipient(org, policy="per_contact")
    _get(client, values["open_pixel_url"])
    assert _last_activity(contact_id) == LONG_AGO


def test_a_click_under_the_aggregate_policy_names_nobody_so_it_is_nobodys_activity(client, org):
    contact_id, values = _recipient(org, policy="aggregate")
    _get(client, values["link_1"])
    assert _last_activity(contact_id) == LONG_AGO


def test_a_click_without_tracking_consent_is_not_recorded_as_activity(client, org):
    contact_id, values = _recipient(org, policy="per_contact", consent=False)
    _get(client, values["link_1"])
    assert _last_activity(contact_id) == LONG_AGO


def test_a_link_scanner_clicking_is_not_the_persons_activity(client, org):
    contact_id, values = _recipient(org, policy="per_contact")
    client.head(path_of(values["link_1"]))
    assert _last_activity(contact_id) == LONG_AGO


def test_an_rsvp_answer_restarts_the_retention_clock_whatever_the_policy(client, org):
    blocks = [{"type": "event"}, {"type": "rsvp"}]
    contact_id, values = _recipient(
        org,
        policy="aggregate",
        purpose="invitations",
        kind="invitation",
        event=make_event(),
        blocks=blocks,
    )
    before = utcnow()
    response = client.post(path_of(values["rsvp_yes_url"]), data={"answer": "yes"})
    assert response.status_code in (200, 303)
    assert _last_activity(contact_id) >= before - dt.timedelta(seconds=5)


def test_activity_never_moves_backwards(app, org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    recent = utcnow()
    contact.last_activity_at = recent
    db.session.commit()
    gdpr.record_activity(db.session, {contact.id: LONG_AGO})
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).last_activity_at == recent
