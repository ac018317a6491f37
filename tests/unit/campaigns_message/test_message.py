"""The message bytes: structure, header values, injection, encodings and line lengths."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.message import (
    HeaderValueError,
    MessageTemplate,
    build_simple_message,
    delivery_message_id,
    encode_unstructured,
    ics_attachment,
)

ICS = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:PUBLISH\r\nEND:VCALENDAR\r\n"
HTML = "<html><body><p>Bonjour Élodie, la fête du village a lieu samedi.</p></body></html>"
TEXT = "Bonjour Élodie,\nla fête du village a lieu samedi.\n"
UNSUB = "https://crieur.example.fr/u/abc.DEF_123"


def make_template(**overrides) -> MessageTemplate:
    options = dict(
        sender_email="communication@mairie-evry.fr",
        sender_name="Mairie d'Évry-Courcouronnes",
        subject="Lettre d'info de février : fêtes et travaux",
        org_domain="mairie-evry.fr",
        reply_to="accueil@mairie-evry.fr",
        list_id="lettre-info.mairie-evry.fr",
        list_name="Lettre d'info",
        feedback_id="c42:o7:newsletter:crieur",
    )
    options.update(overrides)
    return MessageTemplate(**options)


def render(template: MessageTemplate | None = None, **overrides) -> bytes:
    args = dict(
        to_email="elodie.dupre@exemple.fr",
        to_name="Élodie Dupré",
        message_id=delivery_message_id(12, "0b7e-uuid", "mairie-evry.fr"),
        html=HTML,
        text=TEXT,
        unsubscribe_url=UNSUB,
        unsubscribe_mailto="desinscription@mairie-evry.fr?subject=unsubscribe",
    )
    args.update(overrides)
    return (template or make_template()).render(**args)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def test_a_newsletter_is_multipart_alternative_with_text_before_html():
    msg = parse(render())
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_the_bodies_decode_back_to_the_personalised_text_and_html():
    msg = parse(render())
    text, html = msg.iter_parts()
    assert text.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content() == HTML


def test_an_invitation_carries_the_ics_as_a_calendar_attachment():
    msg = parse(render(make_template(attachment=ics_attachment(ICS))))
    assert msg.get_content_type() == "multipart/mixed"
    alternative, calendar = msg.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "PUBLISH"
    assert calendar.get_filename() == "invitation.ics"
    assert calendar.get_content().encode() == ICS


def test_the_headers_have_their_exact_values():
    msg = parse(render())
    assert msg["From"] == "Mairie d'Évry-Courcouronnes <communication@mairie-evry.fr>"
    assert msg["To"] == "Élodie Dupré <elodie.dupre@exemple.fr>"
    assert msg["Reply-To"] == "accueil@mairie-evry.fr"
    assert msg["Subject"] == "Lettre d'info de février : fêtes et travaux"
    assert msg["Message-ID"] == "<d12.0b7e-uuid@mairie-evry.fr>"
    assert msg["List-Id"] == '"Lettre d\'info" <lettre-info.mairie-evry.fr>'
    assert msg["Feedback-ID"] == "c42:o7:newsletter:crieur"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"].datetime.tzinfo is not None


def test_list_unsubscribe_has_the_https_link_first_then_the_mailto():
    msg = parse(render())
    value = re.sub(r"\s+", " ", str(msg["List-Unsubscribe"]))
    assert value == (f"<{UNSUB}>, <mailto:desinscription@mairie-evry.fr?subject=unsubscribe>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_list_unsubscribe_without_mailto_is_the_https_link_alone():
    msg = parse(render(unsubscribe_mailto=None))
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>"


def test_every_header_appears_exactly_once():
    msg = parse(render(make_template(attachment=ics_attachment(ICS))))
    names = [name.lower() for name in msg]
    assert len(names) == len(set(names))


def test_accented_names_are_rfc2047_encoded_and_round_trip():
    raw = render(to_name="Zoé Lefèvre-Ça ÿ 漢字")
    assert "Zoé".encode() not in header_block(raw)
    assert b"=?utf-8?b?" in header_block(raw)
    assert parse(raw)["To"].addresses[0].display_name == "Zoé Lefèvre-Ça ÿ 漢字"


def test_a_name_with_quotes_and_a_backslash_round_trips():
    raw = render(to_name='Jean "Jojo" \\ Martin')
    assert parse(raw)["To"].addresses[0].display_name == 'Jean "Jojo" \\ Martin'


def test_a_name_with_crlf_bcc_creates_no_header():
    raw = render(to_name="Élodie\r\nBcc: victim@evil.example")
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert not re.search(rb"^Bcc:", raw, re.MULTILINE | re.IGNORECASE)
    assert msg["To"].addresses[0].addr_spec == "elodie.dupre@exemple.fr"


def test_an_ascii_name_with_crlf_bcc_creates_no_header():
    raw = render(to_name="Eve\r\nBcc: victim@evil.example\nX-Evil: 1")
    msg = parse(raw)
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert msg["To"].addresses[0].addr_spec == "elodie.dupre@exemple.fr"


def test_a_subject_with_crlf_bcc_creates_no_header():
    raw = render(subject="Infos\r\nBcc: victim@evil.example")
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Infos  Bcc: victim@evil.example"


def test_a_sender_name_with_crlf_creates_no_header():
    raw = render(make_template(sender_name="Mairie\r\nBcc: victim@evil.example"))
    assert parse(raw)["Bcc"] is None


@pytest.mark.parametrize(
    "address",
    [
        "victim@evil.example>\r\nBcc: x@evil.example",
        "a@b.fr\nBcc: x@evil.example",
        "a b@c.fr",
        "<a@b.fr>",
        "a@b.fr, c@d.fr",
        "no-at-sign",
        "a@b@c.fr",
    ],
)
def test_an_address_that_could_break_the_header_is_refused(address):
    with pytest.raises(HeaderValueError):
        render(to_email=address)


def test_an_unsubscribe_url_with_crlf_is_refused():
    with pytest.raises(HeaderValueError):
        render(unsubscribe_url="https://x.fr/u\r\nBcc: x@evil.example")


def test_an_unsubscribe_url_that_is_not_http_is_refused():
    with pytest.raises(HeaderValueError):
        render(unsubscribe_url="javascript:alert(1)")


def test_an_internationalised_domain_is_sent_in_its_ascii_form():
    msg = parse(render(to_email="marie@mairie-évry.fr"))
    assert msg["To"].addresses[0].addr_spec == "marie@" + "mairie-évry.fr".encode("idna").decode()


def test_an_accented_subject_is_encoded_and_folded_within_78_octets():
    subject = "Fête de la musique à Évry : " + "programme détaillé, " * 8
    raw = render(subject=subject)
    block = header_block(raw)
    assert "Fête".encode() not in block
    assert all(len(line) <= 78 for line in block.split(b"\r\n"))
    assert parse(raw)["Subject"] == subject.strip()


def test_a_long_ascii_subject_is_folded_at_spaces_and_unfolds_to_the_same_text():
    subject = " ".join(["Conseil municipal"] * 12)
    raw = render(subject=subject)
    assert all(len(line) <= 78 for line in header_block(raw).split(b"\r\n"))
    assert parse(raw)["Subject"] == subject


def test_a_subject_looking_like_an_encoded_word_is_encoded_itself():
    value = encode_unstructured("Subject", "=?utf-8?b?SGk=?=")
    assert value.startswith("=?utf-8?b?") and "SGk=?=" not in value


def test_a_2000_character_unbroken_line_keeps_every_line_within_998_octets():
    long_line = "é" + "x" * 1999
    template = make_template(
        attachment=ics_attachment(b"X-LONG:" + b"y" * 2000 + b"\r\n"),
        sender_name="N" * 300,
    )
    raw = render(
        template,
        html=long_line,
        text=long_line,
        to_name="Ü" * 400,
        subject="S" * 2000,
    )
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    msg = parse(raw)
    alternative, _ = msg.iter_parts()
    text, html = alternative.iter_parts()
    assert html.get_content() == long_line
    assert text.get_content() == long_line


def test_the_message_is_7bit_ascii_with_crlf_line_ends_only():
    raw = render(html=HTML + "\r\n\n\r", text="a\rb\nc\r\nd")
    raw.decode("ascii")
    assert raw.count(b"\n") == raw.count(b"\r\n") == raw.count(b"\r")


def test_text_line_ends_are_normalised_to_crlf_after_decoding():
    text = parse(render(text="un\rdeux\r\ntrois\nquatre")).get_body(("plain",))
    assert text.get_content().splitlines() == ["un", "deux", "trois", "quatre"]


def test_trailing_spaces_and_a_lone_dot_survive_quoted_printable():
    text = "ligne avec espaces   \n.\nfin"
    body = parse(render(text=text)).get_body(("plain",)).get_content()
    assert body.replace("\r\n", "\n") == text


def test_the_message_id_is_deterministic_per_delivery():
    template = make_template()
    assert template.message_id_for(12, "0b7e-uuid") == "<d12.0b7e-uuid@mairie-evry.fr>"
    first = parse(render(template, message_id=template.message_id_for(12, "0b7e-uuid")))
    again = parse(render(template, message_id=template.message_id_for(12, "0b7e-uuid")))
    assert first["Message-ID"] == again["Message-ID"] == "<d12.0b7e-uuid@mairie-evry.fr>"


def test_two_deliveries_get_different_message_ids():
    assert delivery_message_id(1, "u", "d.fr") != delivery_message_id(2, "u", "d.fr")


def test_a_message_id_without_brackets_gets_them():
    assert parse(render(message_id="abc@d.fr"))["Message-ID"] == "<abc@d.fr>"


def test_boundaries_differ_between_templates():
    first = parse(render(make_template())).get_boundary()
    second = parse(render(make_template())).get_boundary()
    assert first != second


def test_a_personalised_subject_overrides_the_template_subject():
    msg = parse(render(subject="[TEST] Lettre d'info de février"))
    assert msg["Subject"] == "[TEST] Lettre d'info de février"


def test_an_empty_html_gives_a_single_text_part():
    msg = parse(render(html=None))
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().replace("\r\n", "\n") == TEXT


def test_a_simple_message_has_the_same_header_rules_and_a_random_message_id():
    raw = build_simple_message(
        sender_email="ne-pas-repondre@mairie-evry.fr",
        sender_name="Mairie d'Évry",
        to_email="paul@exemple.fr",
        to_name="Paul\r\nBcc: x@evil.example",
        subject="Confirmez votre inscription",
        text="Cliquez sur le lien.",
    )
    other = build_simple_message(
        sender_email="ne-pas-repondre@mairie-evry.fr",
        to_email="paul@exemple.fr",
        subject="Confirmez votre inscription",
        text="Cliquez sur le lien.",
    )
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert msg["From"] == "Mairie d'Évry <ne-pas-repondre@mairie-evry.fr>"
    assert msg["Message-ID"].endswith("@mairie-evry.fr>")
    assert msg["Message-ID"] != parse(other)["Message-ID"]
    assert msg["List-Unsubscribe"] is None
    assert msg.get_content().rstrip("\r\n") == "Cliquez sur le lien."


def test_a_simple_message_with_html_is_multipart_alternative():
    raw = build_simple_message(
        sender_email="a@mairie.fr",
        to_email="b@exemple.fr",
        subject="Lien de connexion",
        text="Votre lien",
        html="<p>Votre lien</p>",
    )
    assert parse(raw).get_content_type() == "multipart/alternative"


def test_extra_headers_with_crlf_are_refused_or_cleaned():
    with pytest.raises(HeaderValueError):
        make_template(extra_headers={"X-Bad\r\nBcc": "x"})
    raw = render(make_template(extra_headers={"Auto-Submitted": "auto-generated\r\nBcc: x"}))
    assert parse(raw)["Bcc"] is None


def test_an_accented_attachment_name_is_rfc2231_encoded():
    template = make_template(attachment=ics_attachment(ICS, "réunion publique.ics"))
    _, calendar = parse(render(template)).iter_parts()
    assert calendar.get_filename() == "réunion publique.ics"


def test_rendered_messages_need_no_dot_stuffing_nor_line_end_repair():
    from campaigns.message import MessageBytes
    from campaigns.smtp import prepare_data

    raw = render(text=".début\n..\n.\nfin\r.x", html=".<p>\n.</p>")
    assert isinstance(raw, MessageBytes)
    assert not any(line.startswith(b".") for line in raw.split(b"\r\n"))
    assert prepare_data(raw) == prepare_data(bytes(raw))
    text = parse(raw).get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n") == ".début\n..\n.\nfin\n.x"


@settings(max_examples=40, deadline=None)
@given(
    name=st.text(max_size=120),
    subject=st.text(min_size=1, max_size=300),
    text=st.text(max_size=3000),
    html=st.text(max_size=3000),
)
def test_any_input_gives_a_well_formed_message(name, subject, text, html):
    from campaigns.smtp import prepare_data

    raw = render(to_name=name, subject=subject, text=text, html=html)
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    assert prepare_data(raw) == prepare_data(bytes(raw))
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert msg["To"].addresses[0].addr_spec == "elodie.dupre@exemple.fr"
    expected_text = text.replace("\r\n", "\n").replace("\r", "\n")
    plain = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    if html:
        assert msg.get_body(("html",)).get_content() == html
        assert plain == expected_text
    else:  # a single part's last line end belongs to its content
        assert plain in (expected_text, expected_text + "\n")


def test_bodies_given_as_utf8_bytes_give_the_same_message_as_text():
    template = make_template()
    as_text = render(template)
    as_bytes = render(template, html=HTML.encode(), text=TEXT.encode())
    assert as_bytes.split(b"\r\n\r\n", 1)[1] == as_text.split(b"\r\n\r\n", 1)[1]
