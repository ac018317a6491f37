"""Test sends go through a real SMTP server, marked [TEST], with the .ics for invitations."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest
from icalendar import Calendar

from contacts.db import db
from tests.factories_campaigns import make_campaign

pytestmark = [pytest.mark.smtp, pytest.mark.mjml]


@pytest.fixture
def app_config(recording_smtp):
    return {"CRIEUR_SMTP_URL": f"smtp://{recording_smtp.host}:{recording_smtp.port}"}


def _parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def test_a_test_send_of_an_invitation_arrives_marked_test_with_a_valid_ics(
    api, org, recording_smtp, mjml
):
    campaign = make_campaign(org, kind="invitation", subject="Inauguration")
    db.session.commit()
    response = api("officer").post(
        f"/campaigns/{campaign.id}/test-send",
        json={"emails": ["maire@example.org", "dgs@example.org"]},
    )
    assert response.status_code == 200, response.get_json()
    assert sorted(recording_smtp.recipients()) == ["dgs@example.org", "maire@example.org"]
    for received in recording_smtp.messages:
        message = _parse(received.content)
        assert message["Subject"] == "[TEST] Inauguration"
        assert message["From"].addresses[0].addr_spec == org.from_address
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert "Bonjour Camille" in text
        assert "{{" not in html and "{{" not in text
        calendars = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        assert len(calendars) == 1
        event = Calendar.from_ical(calendars[0].get_payload(decode=True)).walk("VEVENT")[0]
        assert str(event["SUMMARY"]) == "Inauguration de la médiathèque"


def test_a_test_send_of_a_newsletter_has_no_attachment(api, org, recording_smtp, mjml):
    campaign = make_campaign(org, subject="Nouvelles")
    db.session.commit()
    api("director").post(f"/campaigns/{campaign.id}/test-send", json={"emails": ["a@example.org"]})
    message = _parse(recording_smtp.messages[0].content)
    assert message["Subject"] == "[TEST] Nouvelles"
    assert all(p.get_content_type() != "text/calendar" for p in message.walk())


def test_a_subject_trying_to_inject_a_header_stays_one_header(api, org, recording_smtp, mjml):
    officer = api("officer")
    created = officer.post(
        "/campaigns",
        json={
            "kind": "newsletter",
            "subject": "Bonjour\r\nBcc: victime@evil.example",
            "blocks": [{"type": "heading", "text": "Titre"}],
        },
    ).get_json()
    officer.post(f"/campaigns/{created['id']}/test-send", json={"emails": ["a@example.org"]})
    message = _parse(recording_smtp.messages[0].content)
    assert message["Bcc"] is None
    assert recording_smtp.recipients() == ["a@example.org"]
