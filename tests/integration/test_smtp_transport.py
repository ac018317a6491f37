"""SmtpTransport against real SMTP servers on loopback: smtp-sink and a scripted aiosmtpd.

Each failure mode maps to the outcome the delivery engine relies on (RELIABILITY.md §5).
"""

from __future__ import annotations

import email
import email.policy
import threading

import pytest

from campaigns.message import MessageTemplate, ics_attachment
from campaigns.smtp import Outcome, SmtpTransport, Stage
from tests import smtp_servers
from tests.services import need
from tests.smtp_servers import (
    RecordingSMTPServer,
    client_tls_context,
    have_smtp_sink,
    make_self_signed_cert,
    server_tls_context,
    start_smtp_sink,
    stop_process,
)

pytestmark = pytest.mark.smtp

smtp_sink = smtp_servers.smtp_sink
recording_smtp = smtp_servers.recording_smtp

SENDER = "communication@mairie-evry.fr"


def message(to: str = "zoe@exemple.fr", n: int = 1, **overrides) -> bytes:
    template = MessageTemplate(
        sender_email=SENDER,
        sender_name="Mairie d'Évry",
        subject="Fête de la musique",
        org_domain="mairie-evry.fr",
        list_id="lettre.mairie-evry.fr",
        attachment=overrides.pop("attachment", None),
    )
    return template.render(
        to,
        "Zoé Lefèvre",
        template.message_id_for(n, "u-1"),
        overrides.get("html", "<p>Bonjour Zoé</p>\n.point en début de ligne\n"),
        overrides.get("text", "Bonjour Zoé\n.point en début de ligne\n"),
        "https://crieur.example.fr/u/tok",
    )


def smtp(server: RecordingSMTPServer, connections: int = 1, **options) -> SmtpTransport:
    return SmtpTransport(f"smtp://{server.url_hostport}", connections, **options)


# --------------------------------------------------------------------------- smtp-sink


def test_a_message_sent_through_smtp_sink_arrives_byte_for_byte(smtp_sink):
    raw = message(attachment=ics_attachment(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"))
    with SmtpTransport(smtp_sink.url, 2) as transport:
        result = transport.send(SENDER, ["zoe@exemple.fr"], raw)
    assert (result.outcome, result.code) == (Outcome.SENT, 250)
    [received] = smtp_sink.messages(1)
    assert received == raw
    parsed = email.message_from_bytes(received, policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == "Zoé Lefèvre"


def test_foreign_bytes_with_leading_dots_and_bare_lf_arrive_intact(smtp_sink):
    raw = b"Subject: dots\n\n.one\r\n..two\n.\nend"
    with SmtpTransport(smtp_sink.url) as transport:
        assert transport.send(SENDER, ["zoe@exemple.fr"], raw).outcome is Outcome.SENT
    [received] = smtp_sink.messages(1)
    assert received == b"Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n"


def test_smtp_sink_sees_one_connection_reused_for_many_messages(smtp_sink):
    with SmtpTransport(smtp_sink.url, 4) as transport:
        results = [transport.send(SENDER, [f"c{i}@exemple.fr"], message()) for i in range(10)]
        assert transport.connections_opened == 1
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert len(smtp_sink.messages(10)) == 10


def test_smtp_sink_soft_rejecting_rcpt_gives_deferred(tmp_path):
    need("smtp-sink", have_smtp_sink(), "postfix smtp-sink not installed")
    host, port, proc = start_smtp_sink(args=("-r", "RCPT"))
    try:
        with SmtpTransport(f"smtp://{host}:{port}") as transport:
            result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    finally:
        stop_process(proc)
    assert (result.outcome, result.stage) == (Outcome.DEFERRED, Stage.RCPT)
    assert 400 <= result.code < 500


def test_smtp_sink_hard_rejecting_the_final_dot_gives_failed():
    need("smtp-sink", have_smtp_sink(), "postfix smtp-sink not installed")
    host, port, proc = start_smtp_sink(args=("-f", "."))
    try:
        with SmtpTransport(f"smtp://{host}:{port}") as transport:
            result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    finally:
        stop_process(proc)
    assert (result.outcome, result.stage) == (Outcome.FAILED, Stage.DOT)
    assert not result.bad_mailbox


def test_smtp_sink_hanging_up_after_the_dot_gives_unknown():
    need("smtp-sink", have_smtp_sink(), "postfix smtp-sink not installed")
    host, port, proc = start_smtp_sink(args=("-q", "."))
    try:
        with SmtpTransport(f"smtp://{host}:{port}") as transport:
            result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    finally:
        stop_process(proc)
    assert result.outcome is Outcome.UNKNOWN


def test_smtp_sink_hanging_up_at_data_gives_deferred():
    need("smtp-sink", have_smtp_sink(), "postfix smtp-sink not installed")
    host, port, proc = start_smtp_sink(args=("-q", "DATA"))
    try:
        with SmtpTransport(f"smtp://{host}:{port}") as transport:
            result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    finally:
        stop_process(proc)
    assert (result.outcome, result.stage) == (Outcome.DEFERRED, Stage.DATA)


def test_a_refused_connection_is_deferred():
    from tests.smtp_servers import free_port

    with SmtpTransport(f"smtp://127.0.0.1:{free_port()}", timeout=2) as transport:
        result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert (result.outcome, result.stage) == (Outcome.DEFERRED, Stage.CONNECT)


# ------------------------------------------------------------------ scripted aiosmtpd


def test_aiosmtpd_records_the_exact_bytes_sent(recording_smtp):
    raw = message()
    with smtp(recording_smtp) as transport:
        assert transport.send(SENDER, ["zoe@exemple.fr"], raw).outcome is Outcome.SENT
    [received] = recording_smtp.messages
    assert (received.mail_from, received.rcpt_tos) == (SENDER, ["zoe@exemple.fr"])
    assert received.content == raw


def test_the_pool_opens_no_more_connections_than_configured(recording_smtp):
    with smtp(recording_smtp, connections=3) as transport:

        def worker(k: int) -> None:
            for i in range(10):
                transport.send(SENDER, [f"t{k}-{i}@exemple.fr"], message(n=i))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(recording_smtp.messages) == 60
    assert 1 <= recording_smtp.connections <= 3


def test_a_4xx_for_the_recipient_is_deferred(recording_smtp):
    recording_smtp.script.rcpt_replies["busy@exemple.fr"] = "450 4.2.1 Mailbox busy"
    with smtp(recording_smtp) as transport:
        result = transport.send(SENDER, ["busy@exemple.fr"], message())
    assert (result.outcome, result.code, result.stage) == (Outcome.DEFERRED, 450, Stage.RCPT)
    assert recording_smtp.messages == []


def test_a_5_1_1_is_failed_with_a_bad_mailbox_and_the_connection_is_reused(recording_smtp):
    recording_smtp.script.rcpt_replies["gone@exemple.fr"] = "550 5.1.1 User unknown"
    with smtp(recording_smtp) as transport:
        failed = transport.send(SENDER, ["gone@exemple.fr"], message())
        sent = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert (failed.outcome, failed.code, failed.enhanced_code) == (Outcome.FAILED, 550, "5.1.1")
    assert failed.bad_mailbox
    assert sent.outcome is Outcome.SENT
    assert recording_smtp.recipients() == ["zoe@exemple.fr"]
    assert recording_smtp.connections == 1


def test_a_4xx_to_the_final_dot_is_deferred(recording_smtp):
    recording_smtp.script.data_replies["zoe@exemple.fr"] = "451 4.3.0 Try again later"
    with smtp(recording_smtp) as transport:
        result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert (result.outcome, result.code, result.stage) == (Outcome.DEFERRED, 451, Stage.DOT)


def test_a_5xx_spam_rejection_is_failed_but_not_a_bad_mailbox(recording_smtp):
    recording_smtp.script.data_replies["zoe@exemple.fr"] = "554 5.7.1 Rejected as spam"
    with smtp(recording_smtp) as transport:
        result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert (result.outcome, result.code) == (Outcome.FAILED, 554)
    assert not result.bad_mailbox


def test_a_connection_dropped_before_the_dot_is_deferred(recording_smtp):
    recording_smtp.script.drop_on_data.add("zoe@exemple.fr")
    with smtp(recording_smtp) as transport:
        result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert (result.outcome, result.stage) == (Outcome.DEFERRED, Stage.DATA)
    assert recording_smtp.messages == []


def test_a_connection_dropped_after_the_dot_is_unknown(recording_smtp):
    recording_smtp.script.drop_after_dot.add("zoe@exemple.fr")
    with smtp(recording_smtp) as transport:
        result = transport.send(SENDER, ["zoe@exemple.fr"], message())
        assert result.outcome is Outcome.UNKNOWN
        recording_smtp.script.drop_after_dot.clear()
        assert transport.send(SENDER, ["paul@exemple.fr"], message()).outcome is Outcome.SENT
    assert recording_smtp.recipients() == ["zoe@exemple.fr", "paul@exemple.fr"]


def test_a_slow_final_reply_within_the_data_timeout_is_sent(recording_smtp):
    recording_smtp.script.reply_delay = 1.5
    with smtp(recording_smtp, timeout=0.5, data_timeout=10) as transport:
        result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert result.outcome is Outcome.SENT


def test_a_final_reply_slower_than_the_data_timeout_is_unknown(recording_smtp):
    recording_smtp.script.reply_delay = 2
    with smtp(recording_smtp, data_timeout=0.3) as transport:
        result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert result.outcome is Outcome.UNKNOWN


def test_a_pooled_connection_closed_by_the_relay_is_replaced_transparently(recording_smtp):
    with smtp(recording_smtp) as transport:
        assert transport.send(SENDER, ["a@exemple.fr"], message()).outcome is Outcome.SENT
        recording_smtp.drop_idle_connections()
        result = transport.send(SENDER, ["b@exemple.fr"], message())
    assert result.outcome is Outcome.SENT
    assert recording_smtp.recipients() == ["a@exemple.fr", "b@exemple.fr"]
    assert recording_smtp.connections == 2


def test_one_refused_recipient_among_several_is_reported_and_the_rest_sent(recording_smtp):
    recording_smtp.script.rcpt_replies["gone@exemple.fr"] = "550 5.1.1 User unknown"
    with smtp(recording_smtp) as transport:
        result = transport.send(SENDER, ["a@exemple.fr", "gone@exemple.fr"], message())
    assert result.outcome is Outcome.SENT
    assert dict(result.refused) == {"gone@exemple.fr": (550, "5.1.1 User unknown")}
    assert recording_smtp.recipients() == ["a@exemple.fr"]


def test_a_pipelining_relay_gets_the_same_outcomes():
    with RecordingSMTPServer(pipelining=True) as server:
        server.script.rcpt_replies["gone@exemple.fr"] = "550 5.1.1 User unknown"
        server.script.rcpt_replies["busy@exemple.fr"] = "450 4.2.1 Busy"
        with smtp(server) as transport:
            outcomes = [
                transport.send(SENDER, [to], message()).outcome
                for to in ("gone@exemple.fr", "busy@exemple.fr", "zoe@exemple.fr")
            ]
            assert transport._checkout().pipelining
    assert outcomes == [Outcome.FAILED, Outcome.DEFERRED, Outcome.SENT]
    assert server.recipients() == ["zoe@exemple.fr"]
    assert server.connections == 1


# ------------------------------------------------------------------------ TLS and AUTH


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    import shutil

    need("openssl", shutil.which("openssl") is not None, "openssl makes the test certificate")
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


def test_starttls_with_auth_and_percent_encoded_credentials_sends(certificate):
    cert, key = certificate
    users = {"crieur@mairie.fr": "p@ss:w rd%"}
    with RecordingSMTPServer(
        starttls_context=server_tls_context(cert, key), credentials=users
    ) as server:
        url = f"smtp+starttls://crieur%40mairie.fr:p%40ss%3Aw%20rd%25@{server.url_hostport}"
        with SmtpTransport(url, ssl_context=client_tls_context(cert)) as transport:
            result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert result.outcome is Outcome.SENT
    assert server.recipients() == ["zoe@exemple.fr"]


def test_starttls_with_a_wrong_password_is_deferred_at_connect(certificate):
    cert, key = certificate
    with RecordingSMTPServer(
        starttls_context=server_tls_context(cert, key), credentials={"u": "right"}
    ) as server:
        url = f"smtp+starttls://u:wrong@{server.url_hostport}"
        with SmtpTransport(url, ssl_context=client_tls_context(cert)) as transport:
            result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert (result.outcome, result.stage, result.code) == (Outcome.DEFERRED, Stage.CONNECT, 535)
    assert server.messages == []


def test_starttls_refuses_a_certificate_it_does_not_trust(certificate):
    cert, key = certificate
    with (
        RecordingSMTPServer(starttls_context=server_tls_context(cert, key)) as server,
        SmtpTransport(f"smtp+starttls://{server.url_hostport}") as transport,
    ):
        result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert (result.outcome, result.stage) == (Outcome.DEFERRED, Stage.CONNECT)
    assert server.messages == []


def test_smtps_with_auth_sends(certificate):
    cert, key = certificate
    with RecordingSMTPServer(
        implicit_tls_context=server_tls_context(cert, key), credentials={"u": "secret"}
    ) as server:
        url = f"smtps://u:secret@{server.url_hostport}"
        with SmtpTransport(url, ssl_context=client_tls_context(cert)) as transport:
            result = transport.send(SENDER, ["zoe@exemple.fr"], message())
    assert result.outcome is Outcome.SENT
    assert server.recipients() == ["zoe@exemple.fr"]
