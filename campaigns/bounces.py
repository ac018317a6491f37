"""Bounces that arrive after the relay's 250: delivery status notifications (RFC 3464).

A relay accepts a message, tries the recipient's server later and, when that fails,
mails a DSN back to the sender address (the body's ``from_address``). ``crieur bounces
import FILE`` reads those from an mbox file, a Maildir directory or one ``.eml`` file and:

- finds the delivery by the original ``Message-ID`` (``<d{id}.{campaign uuid}@domain>``,
  quoted in the DSN's ``text/rfc822-headers`` or ``message/rfc822`` part); the campaign
  uuid must match, so a made-up DSN cannot touch another campaign's rows;
- for ``Action: failed`` with a 5.x.x ``Status``: marks the delivery ``failed`` (even if
  it was ``sent``: the 250 was the relay's, this is the final word) and, for a bad
  mailbox (5.1.x), suppresses the contact as hard-bounced, like a 5.1.1 at send time;
- ``Action: delayed`` (4.x.x) is only counted: the relay is still trying.

The same mailbox also receives the ``mailto:`` unsubscribe requests of the
``List-Unsubscribe`` header (subject ``unsubscribe-<token>``, see ``campaigns.sender``):
those are applied too, with the same signed token as the one-click link.

Without a recognisable Message-ID a DSN is matched by address only when the caller names
the body (``org_id``); otherwise it is reported as unmatched, never guessed.
"""

from __future__ import annotations

import email
import mailbox
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from pathlib import Path

from sqlalchemy import select, update

from campaigns.models import Campaign, Delivery, DeliveryStatus
from contacts.db import db
from contacts.models import Contact

D = DeliveryStatus
_MESSAGE_ID = re.compile(r"<d(\d{1,18})\.([0-9a-fA-F-]{36})@[^>\s]+>")
_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})")
_UNSUBSCRIBE = re.compile(r"\bunsubscribe-([A-Za-z0-9._~-]{10,1024})")


@dataclass
class Recipient:
    """One per-recipient block of a DSN."""

    address: str
    action: str
    status: str
    diagnostic: str = ""

    @property
    def permanent(self) -> bool:
        return self.action == "failed" and self.status.startswith("5.")

    @property
    def bad_mailbox(self) -> bool:
        return self.permanent and self.status.startswith("5.1.")


@dataclass
class Notification:
    """What a DSN says: the original Message-ID (if quoted) and its recipients."""

    message_id: str
    recipients: list[Recipient]


@dataclass
class BounceReport:
    messages: int = 0
    notifications: int = 0
    failed: int = 0
    suppressed: int = 0
    delayed: int = 0
    unmatched: list[str] = field(default_factory=list)
    unsubscribed: int = 0
    ignored: int = 0  # neither a DSN nor an unsubscribe request

    def lines(self) -> list[str]:
        """The summary the command prints, in French."""
        out = [
            f"{self.messages} message(s) lu(s), dont {self.notifications} avis de non-remise.",
            f"{self.failed} envoi(s) marqué(s) en échec, {self.suppressed} adresse(s) "
            f"supprimée(s) (échec définitif), {self.delayed} retard(s) signalé(s).",
        ]
        if self.unsubscribed:
            out.append(f"{self.unsubscribed} désinscription(s) demandée(s) par e-mail.")
        if self.unmatched:
            shown = ", ".join(self.unmatched[:5])
            out.append(f"{len(self.unmatched)} avis sans envoi correspondant : {shown}")
        return out


# ----------------------------------------------------------------------------- reading


def read_messages(path: str | Path) -> Iterator[Message]:
    """Messages of a Maildir directory, an mbox file or a single message file."""
    path = Path(path)
    if path.is_dir():
        box = mailbox.Maildir(str(path), factory=None, create=False)
        for key in box.iterkeys():
            with box.get_file(key) as fh:
                yield email.message_from_binary_file(fh, policy=policy.compat32)
        return
    with open(path, "rb") as fh:
        head = fh.read(5)
    if head == b"From ":
        yield from mailbox.mbox(str(path), create=False)
        return
    with open(path, "rb") as fh:
        yield email.message_from_binary_file(fh, policy=policy.compat32)


def _field(block: Message, name: str) -> str:
    value = block.get(name, "")
    return " ".join(str(value).split())


def _address(value: str) -> str:
    """``rfc822; jean@exemple.fr`` → ``jean@exemple.fr``."""
    _, _, addr = value.partition(";")
    return (addr or value).strip().strip("<>").lower()


def parse_notification(msg: Message) -> Notification | None:
    """The DSN inside ``msg``, or None when it is not one (RFC 3464 multipart/report)."""
    if msg.get_content_type() != "multipart/report":
        return None
    if (msg.get_param("report-type") or "").lower() != "delivery-status":
        return None
    recipients: list[Recipient] = []
    message_id = ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            blocks = part.get_payload()
            if isinstance(blocks, str):  # some parsers leave it as text
                blocks = _blocks_from_text(blocks)
            for block in blocks[1:] if len(blocks) > 1 else blocks:
                final = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
                if not final:
                    continue
                status = _STATUS.match(_field(block, "Status"))
                recipients.append(
                    Recipient(
                        address=_address(final),
                        action=_field(block, "Action").lower(),
                        status=status.group(0) if status else "",
                        diagnostic=_field(block, "Diagnostic-Code")[:500],
                    )
                )
        elif ctype in ("text/rfc822-headers", "message/rfc822", "message/global-headers"):
            message_id = message_id or _quoted_message_id(part)
    return Notification(message_id, recipients)


def _blocks_from_text(text: str) -> list[Message]:
    return [email.message_from_string(chunk) for chunk in re.split(r"\r?\n\r?\n", text) if chunk]


def _quoted_message_id(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return str(payload[0].get("Message-ID", "")).strip()
    raw = part.get_payload(decode=True) or b""
    found = re.search(rb"^Message-ID:\s*(<[^>\r\n]+>)", raw, re.I | re.M)
    return found.group(1).decode("ascii", "replace") if found else ""


# ---------------------------------------------------------------------------- applying


def _delivery_for(message_id: str) -> Delivery | None:
    found = _MESSAGE_ID.search(message_id or "")
    if not found:
        return None
    row = db.session.get(Delivery, int(found.group(1)))
    if row is None:
        return None
    uuid = db.session.scalar(select(Campaign.uuid).where(Campaign.id == row.campaign_id))
    return row if uuid and uuid.lower() == found.group(2).lower() else None


def _latest_delivery(org_id: int, address: str) -> Delivery | None:
    return db.session.scalars(
        select(Delivery)
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(
            Delivery.organisation_id == org_id,
            Contact.email == address,
            Delivery.status.in_((D.SENT, D.UNKNOWN)),
        )
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(1)
    ).first()


def apply_notification(
    note: Notification, secret: str, report: BounceReport, org_id: int | None = None
) -> None:
    """Mark the deliveries a DSN names as failed and suppress bad mailboxes; caller commits."""
    from contacts.suppression import suppress

    quoted = _delivery_for(note.message_id)
    for rcpt in note.recipients:
        if rcpt.action == "delayed":
            report.delayed += 1
            continue
        if not rcpt.permanent:
            continue
        row = quoted
        if row is None and org_id is not None:
            row = _latest_delivery(org_id, rcpt.address)
        if row is None:
            report.unmatched.append(rcpt.address or note.message_id or "?")
            continue
        contact = db.session.get(Contact, row.contact_id)
        if contact is None:
            continue
        db.session.execute(
            update(Delivery)
            .where(Delivery.id == row.id, Delivery.status != D.FAILED)
            .values(status=D.FAILED, last_error=f"avis de non-remise : {rcpt.status} "
                    f"{rcpt.diagnostic}".strip()[:2000])
        )  # fmt: skip
        report.failed += 1
        if rcpt.bad_mailbox:
            suppress(row.organisation_id, contact.email, "bounced", secret)
            report.suppressed += 1


def apply_unsubscribe_request(msg: Message, secret: str, report: BounceReport) -> bool:
    """An e-mail sent to the ``List-Unsubscribe`` mailto address: True when applied."""
    from analytics.links import read_unsubscribe_token
    from analytics.tokens import BadToken
    from contacts.consent import withdraw_all
    from contacts.db import DomainError

    found = _UNSUBSCRIBE.search(str(msg.get("Subject", "")))
    if not found:
        return False
    try:
        token = read_unsubscribe_token(secret, found.group(1))
    except BadToken:
        return False
    try:
        withdraw_all(
            token.org_id,
            token.contact_id,
            secret,
            method="mailto",
            evidence={"list_id": token.list_id, "delivery_id": token.delivery_id or None},
        )
    except DomainError:
        return False
    report.unsubscribed += 1
    return True


def import_bounces(
    messages: Iterable[Message], secret: str, org_id: int | None = None
) -> BounceReport:
    """Apply every DSN and unsubscribe request among ``messages``; commits per message."""
    report = BounceReport()
    for msg in messages:
        report.messages += 1
        note = parse_notification(msg)
        if note is not None:
            report.notifications += 1
            apply_notification(note, secret, report, org_id)
        elif not apply_unsubscribe_request(msg, secret, report):
            report.ignored += 1
        db.session.commit()
    return report
