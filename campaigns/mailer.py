"""One way to get a message out: the body's transport (its own relay, the platform's, or
the outbox) and transactional mail (double opt-in, sign-in links, test sends).

Transports are cached per (url, connections) for the life of the process, so SMTP
connections are reused across calls and batches.
"""

from __future__ import annotations

import threading
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from campaigns.dkim import signer_for
from campaigns.message import Attachment, build_simple_message
from campaigns.models import OutboxMessage
from campaigns.smtp import SendResult, Transport, transport_from_url
from contacts.db import DomainError, db
from contacts.models import Organisation

_transports: dict[tuple[str, int], Transport] = {}
_lock = threading.Lock()


def store_in_outbox(org_id: int | None):
    """A store callable for the outbox transport that adds :class:`OutboxMessage` rows.

    The row joins the caller's transaction: a delivery marked sent and its captured
    message commit together, and on SQLite no second connection waits on the caller's
    write lock.
    """

    def store(sender: str, recipients: list[str], raw: bytes) -> None:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        db.session.add(
            OutboxMessage(
                organisation_id=org_id,
                sender=sender,
                recipients=", ".join(recipients),
                subject=str(headers.get("Subject", ""))[:1000],
                raw=raw,
            )
        )
        db.session.flush()

    return store


def transport_for(org: Organisation | None, default_url: str, connections: int = 4) -> Transport:
    """The transport a body sends through: its own relay if set, else the platform's."""
    url = (org.smtp_url if org is not None and org.smtp_url else default_url) or ""
    if not url:
        # The outbox is cheap and must know the body: not cached.
        return transport_from_url("", store=store_in_outbox(org.id if org else None))
    key = (url, connections)
    with _lock:
        transport = _transports.get(key)
        if transport is None:
            transport = transport_from_url(url, connections)
            _transports[key] = transport
        return transport


def close_all() -> None:
    with _lock:
        for transport in _transports.values():
            transport.close()
        _transports.clear()


def send_transactional(
    org: Organisation,
    to_email: str,
    subject: str,
    text: str,
    html: str | None = None,
    *,
    smtp_url: str,
    to_name: str = "",
    attachment: Attachment | None = None,
    unsubscribe_url: str | None = None,
) -> SendResult:
    """Send one message from the body's sender identity, now, and return the outcome.

    Raises DomainError when the body has no sender address yet, with a message saying
    where to set it. With the outbox the message joins the session: the caller commits.
    """
    if not org.from_address:
        raise DomainError(
            "no_sender",
            "L'organisme n'a pas d'adresse d'expédition : renseignez-la dans Paramètres.",
            status=409,
        )
    raw = build_simple_message(
        sender_email=org.from_address,
        sender_name=org.from_name or org.name,
        to_email=to_email,
        to_name=to_name,
        subject=subject,
        text=text,
        html=html,
        reply_to=org.reply_to or None,
        org_domain=org.mail_domain,
        unsubscribe_url=unsubscribe_url,
        attachment=attachment,
        dkim=signer_for(org.mail_domain, org.dkim_selector, org.dkim_private_key),
    )
    transport = transport_for(org, smtp_url, connections=1)
    return transport.send(org.from_address, [to_email], raw)
