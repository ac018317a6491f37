"""Shared helpers for the contacts integration tests."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

from sqlalchemy import select

from campaigns.models import OutboxMessage
from contacts.db import db

PUBLIC = "https://crieur.test"


def outbox_for(address: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.recipients.contains(address))
            .order_by(OutboxMessage.id)
        )
    )


def text_of(message: OutboxMessage) -> str:
    parsed = BytesParser(policy=policy.default).parsebytes(message.raw)
    part = parsed.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def link_in(message: OutboxMessage, prefix: str) -> str:
    """The path of the first link under ``PUBLIC + prefix`` in the message's text."""
    found = re.search(re.escape(PUBLIC + prefix) + r"[A-Za-z0-9._~-]+", text_of(message))
    assert found, text_of(message)
    return found.group(0).removeprefix(PUBLIC)
