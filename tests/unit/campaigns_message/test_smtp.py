"""SMTP transport pieces that need no server: URL parsing, DATA framing, outcomes, outbox."""

from __future__ import annotations

import pytest

from campaigns.smtp import (
    OutboxTransport,
    Outcome,
    SendResult,
    SmtpSettings,
    SmtpTransport,
    Stage,
    prepare_data,
    transport_from_url,
)


def test_a_plain_smtp_url_defaults_to_port_25():
    s = SmtpSettings.from_url("smtp://relay.mairie.fr")
    assert (s.scheme, s.host, s.port, s.username, s.password) == (
        "smtp", "relay.mairie.fr", 25, "", "",
    )  # fmt: skip


def test_a_starttls_url_defaults_to_587_and_percent_decodes_credentials():
    s = SmtpSettings.from_url("smtp+starttls://crieur%40mairie.fr:p%40ss%3Aw%20rd@relay:587")
    assert (s.scheme, s.port) == ("smtp+starttls", 587)
    assert s.username == "crieur@mairie.fr"
    assert s.password == "p@ss:w rd"


def test_an_smtps_url_defaults_to_465():
    assert SmtpSettings.from_url("smtps://u:p@relay").port == 465


def test_an_ipv6_host_is_understood():
    s = SmtpSettings.from_url("smtp://[::1]:2525")
    assert (s.host, s.port) == ("::1", 2525)


@pytest.mark.parametrize("url", ["http://relay", "relay:25", "smtp://", "lmtp://relay"])
def test_an_unsupported_url_is_refused(url):
    with pytest.raises(ValueError):
        SmtpSettings.from_url(url)


def test_the_password_never_appears_in_the_repr():
    s = SmtpSettings.from_url("smtps://user:secret@relay")
    assert "secret" not in repr(s)


def test_a_transport_needs_at_least_one_connection():
    with pytest.raises(ValueError):
        SmtpTransport("smtp://127.0.0.1:25", 0)


def test_data_is_dot_stuffed_and_terminated():
    assert prepare_data(b".a\r\nb\r\n.c\r\n") == b"..a\r\nb\r\n..c\r\n.\r\n"


def test_data_without_a_final_newline_gets_one_before_the_dot():
    assert prepare_data(b"a") == b"a\r\n.\r\n"


def test_bare_lf_and_cr_become_crlf_in_data():
    assert prepare_data(b"a\nb\rc\r\n.d") == b"a\r\nb\r\nc\r\n..d\r\n.\r\n"


def test_a_5_1_1_failure_marks_a_bad_mailbox():
    result = SendResult(Outcome.FAILED, 550, "5.1.1 <x@y.fr>: user unknown", Stage.RCPT)
    assert result.enhanced_code == "5.1.1"
    assert result.bad_mailbox


def test_a_policy_rejection_is_not_a_bad_mailbox():
    result = SendResult(Outcome.FAILED, 554, "5.7.1 message refused as spam", Stage.DOT)
    assert not result.bad_mailbox


def test_a_550_at_rcpt_without_enhanced_code_is_a_bad_mailbox():
    assert SendResult(Outcome.FAILED, 550, "no such user", Stage.RCPT).bad_mailbox


def test_a_deferral_is_never_a_bad_mailbox():
    assert not SendResult(Outcome.DEFERRED, 450, "4.1.1 try later", Stage.RCPT).bad_mailbox


def test_outcome_values_are_delivery_statuses():
    from campaigns.models import DeliveryStatus

    assert {o.value for o in Outcome} <= {s.value for s in DeliveryStatus}


def test_an_empty_url_gives_the_outbox_which_keeps_messages():
    transport = transport_from_url("", 4)
    result = transport.send("a@mairie.fr", ["b@exemple.fr"], b"Subject: x\r\n\r\nbody\r\n")
    assert result.outcome is Outcome.SENT and result.code == 250
    assert transport.messages == [("a@mairie.fr", ["b@exemple.fr"], b"Subject: x\r\n\r\nbody\r\n")]


def test_the_outbox_calls_its_store():
    stored = []
    transport = transport_from_url(None, store=lambda *args: stored.append(args))
    transport.send("a@mairie.fr", ["b@exemple.fr"], b"raw")
    assert stored == [("a@mairie.fr", ["b@exemple.fr"], b"raw")]


def test_the_outbox_refuses_an_address_that_would_inject_a_command():
    transport = OutboxTransport()
    result = transport.send("a@mairie.fr", ["b@exemple.fr>\r\nRCPT TO:<c@evil.example"], b"r")
    assert result.outcome is Outcome.FAILED and result.stage is Stage.ENVELOPE
    assert transport.messages == []


def test_an_smtp_url_gives_an_smtp_transport_with_its_pool_size():
    transport = transport_from_url("smtp://127.0.0.1:2525", 7, data_timeout=5)
    assert isinstance(transport, SmtpTransport)
    assert (transport.connections, transport.data_timeout) == (7, 5)
    transport.close()


def test_an_smtp_transport_refuses_an_injected_recipient_without_connecting():
    transport = SmtpTransport("smtp://127.0.0.1:9")  # nothing listens on port 9
    result = transport.send("a@mairie.fr", ["b@x.fr>\r\nDATA"], b"raw")
    assert result.outcome is Outcome.FAILED and result.stage is Stage.ENVELOPE
    assert transport.connections_opened == 0
