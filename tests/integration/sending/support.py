"""Helpers for the sending tests: drive batches without a broker, read what a relay got."""

from __future__ import annotations

import heapq
import time
from collections import Counter
from email import message_from_bytes, policy

from sqlalchemy import func, select

from campaigns import claims, sender
from campaigns.models import Delivery
from contacts.db import db

# Retries in tens of milliseconds instead of minutes; small batches so lanes matter.
FAST_CONFIG = {
    "CRIEUR_SEND_BACKOFF_SECONDS": 0.05,
    "CRIEUR_SEND_BACKOFF_MAX_SECONDS": 0.2,
    "CRIEUR_SEND_RELAY_BACKOFF_SECONDS": 0.1,
    "CRIEUR_SEND_BATCH_SIZE": 20,
    "CRIEUR_SEND_LANES": 3,
    "CRIEUR_SEND_MAX_ATTEMPTS": 10,
}


def drive(app, campaign_id: int, timeout: float = 30.0, **send_options) -> list[sender.BatchResult]:
    """Run a sending campaign's batches in this thread, as one worker would, until done.

    Batches come from :func:`campaigns.claims.first_ranges` and then from each result's
    ``next``/``delay``, exactly what the actor would enqueue.
    """
    settings = sender.SendSettings.from_config(app.config)
    ranges = claims.first_ranges(campaign_id, settings.batch_size, settings.lanes)
    db.session.commit()
    start = time.monotonic()
    queue = [(start, n, lo, hi) for n, (lo, hi) in enumerate(ranges)]
    heapq.heapify(queue)
    results: list[sender.BatchResult] = []
    n = len(queue)
    while queue:
        due, _, lo, hi = heapq.heappop(queue)
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"campaign {campaign_id} still sending after {timeout}s")
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        result = sender.send_batch(campaign_id, lo, hi, settings, **send_options)
        db.session.commit()
        results.append(result)
        if result.next is not None:
            n += 1
            heapq.heappush(queue, (time.monotonic() + (result.delay or 0), n, *result.next))
    return results


def statuses(campaign_id: int) -> Counter:
    rows = db.session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status)
    ).all()
    return Counter({status: n for status, n in rows})


def received_by_address(relay) -> Counter:
    """How many messages each address received at a :class:`RecordingSMTPServer`."""
    return Counter(relay.recipients())


def parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def max_line_octets(raw: bytes) -> int:
    return max(len(line) for line in raw.split(b"\r\n"))
