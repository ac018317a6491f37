"""One way out for every message: the body's relay, the platform relay, or the outbox."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from campaigns.mailer import send_transactional
from campaigns.models import OutboxMessage
from contacts.db import DomainError, db


def test_without_a_relay_messages_land_in_the_outbox_and_admins_see_them(client, login_as, org):
    result = send_transactional(
        org,
        "marie@example.fr",
        "Bienvenue à la mairie",
        "Bonjour Marie",
        "<p>Bonjour <b>Marie</b></p>",
        smtp_url="",
    )
    assert result.outcome == "sent"
    stored = db.session.scalars(db.select(OutboxMessage)).one()
    assert stored.organisation_id == org.id and stored.recipients == "marie@example.fr"
    login_as("admin")
    listing = client.get("/outbox/").get_data(as_text=True)
    assert "Bienvenue à la mairie" in listing
    detail = client.get(f"/outbox/{stored.id}").get_data(as_text=True)
    assert "Bonjour Marie" in detail and "Message-ID" in detail
    framed = client.get(f"/outbox/{stored.id}/html")
    assert "<b>Marie</b>" in framed.get_data(as_text=True)
    assert "default-src 'none'" in framed.headers["Content-Security-Policy"]


def test_another_bodys_outbox_message_is_a_404(client, login_as, org):
    from tests.factories import make_org

    other = make_org()
    send_transactional(other, "x@example.fr", "Secret", "texte", smtp_url="")
    stored = db.session.scalars(db.select(OutboxMessage)).one()
    login_as("admin")
    assert client.get(f"/outbox/{stored.id}").status_code == 404
    assert client.get(f"/outbox/{stored.id}/html").status_code == 404
    assert "Secret" not in client.get("/outbox/").get_data(as_text=True)


@pytest.mark.smtp
def test_with_a_relay_the_message_goes_through_a_real_smtp_server(org, smtp_sink):
    result = send_transactional(
        org,
        "jean@example.fr",
        "Réunion publique",
        "Venez nombreux",
        smtp_url=smtp_sink.url,
        to_name="Jean Dupré",
    )
    assert result.outcome == "sent"
    (raw,) = smtp_sink.messages(1)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Réunion publique"
    assert "Jean Dupré" in str(parsed["To"])
    assert parsed["Message-ID"].endswith("@ville" + org.from_address.split("@ville")[1] + ">")
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id))) == 0


@pytest.mark.smtp
def test_a_bodys_own_relay_wins_over_the_platform_relay(org, smtp_sink, recording_smtp):
    org.smtp_url = f"smtp://{recording_smtp.host}:{recording_smtp.port}"
    send_transactional(org, "a@example.fr", "Objet", "texte", smtp_url=smtp_sink.url)
    assert recording_smtp.recipients() == ["a@example.fr"]
    assert smtp_sink.messages() == []


def test_a_body_without_sender_address_gets_a_clear_error(org):
    org.from_address = ""
    with pytest.raises(DomainError) as err:
        send_transactional(org, "a@example.fr", "Objet", "texte", smtp_url="")
    assert "Paramètres" in err.value.message
