"""What every sent message carries (CONTRACT.md), checked on what a real relay received."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select

from campaigns import sending
from campaigns.models import Delivery
from contacts.db import db
from contacts.models import Contact
from tests.factories_sending import make_contacts, make_ready_campaign
from tests.integration.sending.support import drive, max_line_octets, parse


def _send(app, body, lst, n=4, **campaign_options):
    make_contacts(body, lst, n, tracking_consent=True)
    campaign = make_ready_campaign(body, [lst], **campaign_options)
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()
    drive(app, campaign.id)
    return campaign


def test_every_message_has_the_rfc_8058_headers_a_message_id_and_short_lines(
    app, body, newsletter_list, relay
):
    campaign = _send(app, body, newsletter_list, 5)

    ids = set()
    for received in relay.messages:
        raw = received.content
        msg = parse(raw)
        unsubscribe = msg["List-Unsubscribe"]
        https = unsubscribe.split(",")[0].strip().strip("<>")
        assert https.startswith("https://crieur.test/u/")
        assert "<mailto:" in unsubscribe
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["List-Id"] and msg["Feedback-ID"].startswith(f"c{campaign.id}:")
        assert msg.get_content_type() == "multipart/alternative"
        assert max_line_octets(raw) <= 998
        assert msg["Date"]
        ids.add(msg["Message-ID"])
    rows = db.session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)).all()
    assert ids == {r.message_id for r in rows}
    assert all(r.message_id == f"<d{r.id}.{campaign.uuid}@{body.mail_domain}>" for r in rows)


def test_the_message_is_personalised_and_its_links_are_signed_redirects(
    app, body, newsletter_list, relay
):
    body.tracking_policy = "per_contact"
    _send(app, body, newsletter_list, 1)

    msg = parse(relay.messages[0].content)
    contact = db.session.scalars(select(Contact)).one()
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert msg["Subject"] == f"Les nouvelles du mois, {contact.first_name}"
    assert f"Bonjour {contact.first_name} {contact.last_name}" in html
    assert "https://crieur.test/t/c/" in html and "https://crieur.test/t/o/" in html
    assert "https://www.ville.example.fr/agenda" not in html  # behind the click redirect
    assert "https://crieur.test/t/c/" in text
    assert "{{" not in html and "{{" not in text


def test_with_tracking_off_links_are_raw_with_utm_on_the_bodys_site_and_no_pixel(
    app, body, newsletter_list, relay
):
    body.tracking_policy = "off"
    _send(app, body, newsletter_list, 1)

    html = parse(relay.messages[0].content).get_body(("html",)).get_content()
    assert "/t/c/" not in html and "/t/o/" not in html
    assert "https://www.ville.example.fr/agenda?utm_source=crieur&amp;utm_medium=email" in html
    assert 'href="https://ailleurs.example.org/page"' in html  # another site: unchanged


def test_the_one_click_post_to_the_list_unsubscribe_url_unsubscribes(
    app, client, body, newsletter_list, relay
):
    _send(app, body, newsletter_list, 2)
    msg = parse(relay.messages[0].content)
    url = msg["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    to = msg["To"].addresses[0].addr_spec

    response = client.post(
        urlsplit(url).path,
        data={"List-Unsubscribe": "One-Click"},
        headers={"Origin": "https://mail.example.com"},
    )

    assert response.status_code == 200
    assert "Location" not in response.headers
    again = client.post(urlsplit(url).path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    db.session.expire_all()
    contact = db.session.scalars(select(Contact).where(Contact.email == to)).one()
    assert contact.status == "unsubscribed"
    page = client.get(urlsplit(url).path)
    assert page.status_code == 200  # a GET only shows the page


def test_accented_names_are_encoded_words_and_nothing_can_inject_a_header(
    app, body, newsletter_list, relay
):
    ids = make_contacts(body, newsletter_list, 1)
    person = db.session.get(Contact, ids[0])
    person.first_name = "Hélène\r\nBcc: pirate@evil.example"
    person.last_name = "Lefèvre"
    campaign = make_ready_campaign(body, [newsletter_list])
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()

    drive(app, campaign.id)

    head = relay.messages[0].content.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head
    assert b"=?utf-8?b?" in head
    assert relay.messages[0].rcpt_tos == [person.email]


def test_a_body_with_a_dkim_key_signs_every_message_including_the_rfc_8058_headers(
    app, body, newsletter_list, relay, tmp_path
):
    import re
    import shutil
    import subprocess

    import dkim

    from campaigns.dkim import public_key_record
    from tests.services import need

    need("openssl", shutil.which("openssl") is not None, "openssl generates the test key")
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)  # fmt: skip
    body.dkim_selector = "crieur"
    body.dkim_private_key = key.read_text()
    record = public_key_record(key.read_bytes()).encode()

    _send(app, body, newsletter_list, 2)

    def dnsfunc(name, timeout=5):
        assert name == f"crieur._domainkey.{body.mail_domain}.".encode()
        return record

    for received in relay.messages:
        raw = received.content
        signature = raw.split(b"\r\n\r\n", 1)[0].split(b"DKIM-Signature:", 1)[1]
        h_tag = re.search(rb"h=([^;]+);", signature).group(1).replace(b"\r\n ", b"")
        assert b"list-unsubscribe:list-unsubscribe-post" in h_tag.replace(b" ", b"")
        assert dkim.verify(raw, dnsfunc=dnsfunc)
