"""Late bounces: RFC 3464 notifications from an .eml file, an mbox and a Maildir."""

from __future__ import annotations

import mailbox

from sqlalchemy import select, update

from campaigns import sending
from campaigns.models import Delivery
from contacts.db import db
from contacts.models import Contact
from tests.factories_sending import make_contacts, make_ready_campaign

# Modelled on what Postfix's bounce daemon writes (RFC 3464 multipart/report).
DSN = """\
Return-Path: <>
From: MAILER-DAEMON@relais.ville.example.fr (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: communication@ville.example.fr
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4F1C2A.1717580000/relais.ville.example.fr"
Message-Id: <20250605074000.4F1C2A@relais.ville.example.fr>

This is a MIME-encapsulated message.

--4F1C2A.1717580000/relais.ville.example.fr
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host relais.ville.example.fr.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--4F1C2A.1717580000/relais.ville.example.fr
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; relais.ville.example.fr
X-Postfix-Queue-ID: 4F1C2A
Arrival-Date: Thu,  5 Jun 2025 09:39:58 +0200 (CEST)

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; {code} {status} <{rcpt}>: {text}

--4F1C2A.1717580000/relais.ville.example.fr
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: "Ville" <communication@ville.example.fr>
To: {rcpt}
Subject: Les nouvelles du mois
{mid_header}
--4F1C2A.1717580000/relais.ville.example.fr--
"""


def dsn(rcpt, message_id, *, action="failed", status="5.1.1", code=550, text="User unknown"):
    mid_header = f"Message-ID: {message_id}\n" if message_id else ""
    return DSN.format(
        rcpt=rcpt, action=action, status=status, code=code, text=text, mid_header=mid_header
    ).encode()


def _sent_campaign(body, lst, n=3):
    ids = make_contacts(body, lst, n)
    campaign = make_ready_campaign(body, [lst])
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.execute(
        update(Delivery).where(Delivery.campaign_id == campaign.id).values(status="sent")
    )
    db.session.commit()
    rows = db.session.scalars(
        select(Delivery).where(Delivery.campaign_id == campaign.id).order_by(Delivery.id)
    ).all()
    for row in rows:
        row.message_id = f"<d{row.id}.{campaign.uuid}@{body.mail_domain}>"
    db.session.commit()
    return campaign, rows, [db.session.get(Contact, i) for i in ids]


def _secret(app):
    return app.config["CRIEUR_SECRET_KEY"]


def test_a_hard_bounce_fails_the_delivery_and_suppresses_the_address(
    app, runner, org, newsletter_list, tmp_path
):
    campaign, rows, people = _sent_campaign(org, newsletter_list)
    path = tmp_path / "bounce.eml"
    path.write_bytes(dsn(people[1].email, rows[1].message_id))

    result = runner.invoke(args=["bounces", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert "1 envoi(s) marqué(s) en échec, 1 adresse(s) supprimée(s)" in result.output
    db.session.expire_all()
    assert db.session.get(Delivery, rows[1].id).status == "failed"
    assert "5.1.1" in db.session.get(Delivery, rows[1].id).last_error
    assert db.session.get(Delivery, rows[0].id).status == "sent"
    assert db.session.get(Contact, people[1].id).status == "bounced"
    from contacts.suppression import is_suppressed

    assert is_suppressed(org.id, people[1].email, _secret(app))


def test_an_mbox_with_a_delay_and_ordinary_mail_changes_only_the_hard_bounce(
    app, org, newsletter_list, tmp_path
):
    from campaigns.bounces import import_bounces, read_messages

    campaign, rows, people = _sent_campaign(org, newsletter_list)
    box = mailbox.mbox(str(tmp_path / "retours.mbox"))
    box.add(dsn(people[0].email, rows[0].message_id))
    box.add(dsn(people[2].email, rows[2].message_id, action="delayed", status="4.4.1",
                code=451, text="Connection timed out"))  # fmt: skip
    box.add(b"From: jean@example.net\nSubject: Merci pour la lettre\n\nBonne journee\n")
    box.flush()
    box.close()

    report = import_bounces(read_messages(tmp_path / "retours.mbox"), _secret(app))

    assert (report.messages, report.notifications, report.failed, report.delayed) == (3, 2, 1, 1)
    assert report.ignored == 1
    db.session.expire_all()
    assert [db.session.get(Delivery, r.id).status for r in rows] == ["failed", "sent", "sent"]


def test_a_full_mailbox_fails_the_delivery_without_suppressing_the_person(
    app, org, newsletter_list, tmp_path
):
    from campaigns.bounces import import_bounces, read_messages

    campaign, rows, people = _sent_campaign(org, newsletter_list)
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"))
    maildir.add(dsn(people[0].email, rows[0].message_id, status="5.2.2", code=552,
                    text="Mailbox full"))  # fmt: skip
    maildir.close()

    report = import_bounces(read_messages(tmp_path / "Maildir"), _secret(app))

    assert report.failed == 1 and report.suppressed == 0
    db.session.expire_all()
    assert db.session.get(Contact, people[0].id).status == "active"


def test_a_forged_message_id_of_another_campaign_touches_nothing(
    app, org, newsletter_list, tmp_path
):
    from campaigns.bounces import import_bounces, read_messages

    campaign, rows, people = _sent_campaign(org, newsletter_list)
    forged = f"<d{rows[0].id}.00000000-0000-4000-8000-000000000000@{org.mail_domain}>"
    (tmp_path / "x.eml").write_bytes(dsn(people[0].email, forged))

    report = import_bounces(read_messages(tmp_path / "x.eml"), _secret(app))

    assert report.failed == 0 and report.unmatched == [people[0].email]
    db.session.expire_all()
    assert db.session.get(Delivery, rows[0].id).status == "sent"


def test_without_a_message_id_the_address_is_matched_only_within_the_named_body(
    app, runner, org, newsletter_list, tmp_path
):
    campaign, rows, people = _sent_campaign(org, newsletter_list)
    path = tmp_path / "no-id.eml"
    path.write_bytes(dsn(people[2].email, None))

    blind = runner.invoke(args=["bounces", "import", str(path)])
    scoped = runner.invoke(args=["bounces", "import", str(path), "--org", org.slug])

    assert "1 avis sans envoi correspondant" in blind.output
    assert "1 envoi(s) marqué(s) en échec" in scoped.output
    db.session.expire_all()
    assert db.session.get(Delivery, rows[2].id).status == "failed"


def test_an_unsubscribe_request_mailed_to_the_list_unsubscribe_address_is_applied(
    app, org, newsletter_list, tmp_path
):
    from analytics.links import unsubscribe_token
    from campaigns.bounces import import_bounces, read_messages

    campaign, rows, people = _sent_campaign(org, newsletter_list)
    token = unsubscribe_token(_secret(app), org.id, people[0].id, newsletter_list.id, rows[0].id)
    mail = f"From: {people[0].email}\nTo: {org.from_address}\nSubject: unsubscribe-{token}\n\n"
    (tmp_path / "unsub.eml").write_bytes(mail.encode())
    (tmp_path / "forged.eml").write_bytes(
        b"From: x@example.net\nSubject: unsubscribe-" + token[:-3].encode() + b"abc\n\n\n"
    )

    done = import_bounces(read_messages(tmp_path / "unsub.eml"), _secret(app))
    forged = import_bounces(read_messages(tmp_path / "forged.eml"), _secret(app))

    assert done.unsubscribed == 1 and forged.unsubscribed == 0
    db.session.expire_all()
    assert db.session.get(Contact, people[0].id).status == "unsubscribed"
