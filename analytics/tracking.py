"""Recording what recipients do with a campaign: opens, clicks, RSVP and poll answers.

The public endpoints (``webapp/views/tracking.py``) verify the signed token, turn the
request into a :class:`Hit` (ids, method, time, a bounded User-Agent) and queue it in an
:class:`analytics.buffer.EventBuffer`; :func:`store_hits` later writes a whole batch in a
handful of queries. The hit keeps the User-Agent only in memory, for a fraction of a
second: what is stored is a device class and a client family, never the UA, never an IP.

The body's tracking policy (``Organisation.tracking_policy``) is applied here, when the
rows are written, whatever link the e-mail carried:

- ``off``: nothing is stored (RSVP and poll answers are still kept as answers, see
  ``analytics.answers``: a person who answers wants to be heard);
- ``aggregate``: events carry no ``contact_id`` and no ``delivery_id``; unique counts use
  the ``recipient_key`` (below);
- ``per_contact``: the contact and delivery are kept only when the contact's
  subscription to the delivery's list carries ``tracking_consent`` (checked at write
  time, so a withdrawal made after the message was sent is honoured too); otherwise the
  event is stored as in ``aggregate``.

The ``recipient_key`` lets aggregates count unique opens without naming anyone. When the
token carries one (a random per-message value, see ``campaigns/links.py``) it is used as
is; otherwise it is derived from the delivery with a keyed hash (:func:`recipient_key`),
so the table alone cannot be joined back to a contact.

Machine activity (privacy proxies, link scanners, HEAD requests, prefetch bursts right
after delivery) is classified at write time with ``analytics.machine`` and stored with
``is_machine``; the human figures leave it out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import insert, select, text

from analytics import rollup
from analytics.machine import (
    APPLE_PREFETCH_SECONDS,
    CLICK_PREFETCH_SECONDS,
    RecentClicks,
    classify_click,
    classify_open,
)
from analytics.models import EventKind, TrackingEvent
from analytics.sanitize import clean_user_agent, clean_value, is_http_url
from analytics.tokens import derive_key
from analytics.useragent import parse_user_agent
from campaigns.links import target_url
from campaigns.models import Campaign, CampaignLink, Delivery
from contacts import gdpr
from contacts.models import Organisation, Subscription, TrackingPolicy

__all__ = [
    "RECORDED_KINDS",
    "Hit",
    "LinkCache",
    "LinkTarget",
    "classify",
    "policy_of",
    "recipient_key",
    "rows_for_hits",
    "store_hits",
]

EV = TrackingEvent.__table__
RECORDED_KINDS = frozenset(
    {EventKind.OPEN, EventKind.CLICK, EventKind.RSVP, EventKind.POLL, EventKind.WEB_VIEW}
)
RECIPIENT_KEY_CHARS = 24  # hex: 96 bits, fits TrackingEvent.recipient_key (32)


@dataclass(slots=True)
class Hit:
    """One request to a tracking endpoint, as queued (never stored as such).

    ``org_id`` may be None: the open and click tokens name the campaign only, and the
    body is found from it when the batch is written (the pixel touches no database).
    ``delivery_id`` is None or 0 when the token names nobody (``ref`` 0).

    ``at`` and ``sent_at`` are epoch seconds; ``sent_at`` is when the message left (from
    the token or, when None, the delivery row) and drives the prefetch rules.
    ``recent`` are the recipient's earlier clicks (``machine.ClickMemory``), ``link_count``
    the number of tracked links of the campaign.
    """

    kind: str
    campaign_id: int
    org_id: int | None = None
    delivery_id: int | None = None
    recipient_key: str = ""
    link_id: int | None = None
    method: str = "GET"
    user_agent: str = ""
    at: float = field(default_factory=time.time)
    sent_at: float | None = None
    value: str = ""
    recent: RecentClicks | None = None
    link_count: int = 0

    def __post_init__(self) -> None:
        self.user_agent = clean_user_agent(self.user_agent)
        self.value = clean_value(self.value)
        self.method = (self.method or "GET").upper()[:10]


@lru_cache(maxsize=64)
def _key_for(secret: bytes | str) -> bytes:
    return derive_key(secret, "recipient")


def recipient_key(secret: bytes | str, campaign_id: int, delivery_id: int) -> str:
    """A per-message key that does not reveal the delivery without the app secret."""
    msg = f"{int(campaign_id)}:{int(delivery_id)}".encode("ascii")
    digest = hmac.new(_key_for(secret), msg, hashlib.sha256).hexdigest()
    return digest[:RECIPIENT_KEY_CHARS]


@lru_cache(maxsize=8192)
def _late_open(user_agent: str, method: str) -> bool:
    return classify_open(user_agent, method, None)


@lru_cache(maxsize=8192)
def _lone_late_click(user_agent: str, method: str, link_count: int) -> bool:
    return classify_click(user_agent, method, None, (), link_count)


def classify(hit: Hit, sent_at: float | None = None) -> bool:
    """Whether ``hit`` is a machine's (see ``analytics.machine``).

    Most events come long after sending, alone: their answer depends on the User-Agent
    and the method only, and is cached (a campaign repeats a few hundred UAs; the
    scanner list is long).
    """
    since = None
    sent = hit.sent_at if hit.sent_at is not None else sent_at
    if sent is not None:
        since = hit.at - sent
    if hit.kind == EventKind.OPEN:
        if since is None or since >= APPLE_PREFETCH_SECONDS:
            return _late_open(hit.user_agent, hit.method)
        return classify_open(hit.user_agent, hit.method, since)
    if hit.kind == EventKind.CLICK:
        recent = hit.recent or RecentClicks((), ())
        if not recent.ages and (since is None or since >= CLICK_PREFETCH_SECONDS):
            return _lone_late_click(hit.user_agent, hit.method, hit.link_count)
        return classify_click(
            hit.user_agent,
            hit.method,
            since,
            recent.ages,
            hit.link_count,
            link_id=hit.link_id,
            recent_link_ids=recent.link_ids,
        )
    # An RSVP or poll answer is a confirmed POST: a person, unless the UA says otherwise.
    return hit.method == "HEAD" or _late_open(hit.user_agent, hit.method)


def policy_of(conn: Any, org_ids: Iterable[int]) -> dict[int, str]:
    """``{org_id: tracking_policy}`` for the bodies that exist."""
    ids = sorted(set(org_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(Organisation.id, Organisation.tracking_policy).where(Organisation.id.in_(ids))
    ).all()
    return {int(i): str(p or TrackingPolicy.AGGREGATE) for i, p in rows}


def _as_epoch(value: Any) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def rows_for_hits(conn: Any, hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The ``tracking_events`` rows for a batch of hits, policy and consent applied.

    A handful of queries whatever the batch size: the campaigns (and so the bodies), the
    bodies' policies, the deliveries named, their contacts' tracking consent, the links.
    """
    hits = [h for h in hits if h.kind in RECORDED_KINDS]
    if not hits:
        return []
    owners: dict[int, int] = {}
    started: dict[int, float | None] = {}
    for c, o, s in conn.execute(
        select(Campaign.id, Campaign.organisation_id, Campaign.started_at).where(
            Campaign.id.in_(sorted({h.campaign_id for h in hits}))
        )
    ).all():
        owners[int(c)] = int(o)
        started[int(c)] = _as_epoch(s)
    # A hit for a campaign deleted meanwhile, or naming another body, is dropped.
    hits = [
        h for h in hits if h.campaign_id in owners and h.org_id in (None, owners[h.campaign_id])
    ]
    for h in hits:
        h.org_id = owners[h.campaign_id]
    policies = policy_of(conn, (h.org_id for h in hits))
    hits = [h for h in hits if policies.get(h.org_id, TrackingPolicy.OFF) != TrackingPolicy.OFF]
    if not hits:
        return []
    delivery_ids = sorted({h.delivery_id for h in hits if h.delivery_id})
    deliveries: dict[int, Any] = {}
    if delivery_ids:
        for row in conn.execute(
            select(
                Delivery.id,
                Delivery.campaign_id,
                Delivery.organisation_id,
                Delivery.contact_id,
                Delivery.list_id,
                Delivery.sent_at,
            ).where(Delivery.id.in_(delivery_ids))
        ).all():
            deliveries[int(row.id)] = row
    consenting: set[tuple[int, int | None]] = set()
    wanted = {
        (int(d.contact_id), d.list_id)
        for h in hits
        if policies[h.org_id] == TrackingPolicy.PER_CONTACT
        and (d := deliveries.get(h.delivery_id or 0)) is not None
    }
    if wanted:
        contacts = sorted({c for c, _ in wanted})
        for contact_id, list_id in conn.execute(
            select(Subscription.contact_id, Subscription.list_id).where(
                Subscription.contact_id.in_(contacts), Subscription.tracking_consent.is_(True)
            )
        ).all():
            consenting.add((int(contact_id), int(list_id)))
            consenting.add((int(contact_id), None))  # a delivery without a list
    link_ids = sorted({h.link_id for h in hits if h.link_id})
    links: set[tuple[int, int]] = set()
    if link_ids:
        links = {
            (int(i), int(c))
            for i, c in conn.execute(
                select(CampaignLink.id, CampaignLink.campaign_id).where(
                    CampaignLink.id.in_(link_ids)
                )
            ).all()
        }
    rows: list[dict[str, Any]] = []
    for h in hits:
        d = deliveries.get(h.delivery_id or 0)
        if d is not None and (int(d.campaign_id), int(d.organisation_id)) != (
            h.campaign_id,
            h.org_id,
        ):
            d = None  # a delivery of another campaign: never trust it
        per_contact = (
            d is not None
            and policies[h.org_id] == TrackingPolicy.PER_CONTACT
            and (int(d.contact_id), d.list_id) in consenting
        )
        link_id = h.link_id if h.link_id and (h.link_id, h.campaign_id) in links else None
        info = parse_user_agent(h.user_agent)
        # When the message left: its delivery row, else (anonymous) the campaign's start,
        # which is earlier, so the prefetch rules can only err towards "person".
        sent_at = _as_epoch(d.sent_at) if d is not None else None
        if sent_at is None:
            sent_at = started.get(h.campaign_id)
        rows.append(
            {
                "organisation_id": h.org_id,
                "campaign_id": h.campaign_id,
                "kind": str(h.kind),
                "delivery_id": int(d.id) if per_contact else None,
                "contact_id": int(d.contact_id) if per_contact else None,
                "recipient_key": h.recipient_key[:32],
                "link_id": link_id,
                "is_machine": classify(h, sent_at),
                "device_class": info.device_class,
                "client_family": info.client_family[:40],
                "value": h.value,
                "created_at": _utc(h.at),
            }
        )
    return rows


COLUMNS = (
    "organisation_id",
    "campaign_id",
    "kind",
    "delivery_id",
    "contact_id",
    "recipient_key",
    "link_id",
    "is_machine",
    "device_class",
    "client_family",
    "value",
    "created_at",
)


def store_hits(conn: Any, hits: Sequence[Hit]) -> int:
    """Insert the rows for ``hits`` in one statement; returns the rows written.

    ``conn`` is a SQLAlchemy ``Connection`` (or ``Session``); the caller commits. The
    per-recipient rollup (``analytics.rollup``) is upserted in the same transaction. On
    PostgreSQL the rows go through ``COPY`` (several times cheaper per row than an
    ``executemany``: this runs in the web process, beside the requests), elsewhere
    through one ``executemany``.
    """
    rows = rows_for_hits(conn, hits)
    if not rows:
        return 0
    raw = _psycopg_connection(conn)
    if raw is not None:
        # Ids taken from the sequence first, so the rollup knows each event's id (the
        # first human event of a recipient is the lowest id) without a RETURNING.
        ids = sorted(
            int(i)
            for (i,) in conn.execute(
                text(
                    f"SELECT nextval(pg_get_serial_sequence('{EV.name}', 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": len(rows)},
            )
        )
        for row, event_id in zip(rows, ids, strict=True):
            row["id"] = event_id
        copy_sql = f"COPY {EV.name} (id, {', '.join(COLUMNS)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row((row["id"], *(row[c] for c in COLUMNS)))
    else:
        result = conn.execute(insert(EV).returning(EV.c.id, sort_by_parameter_order=True), rows)
        for row, event_id in zip(rows, result.scalars().all(), strict=True):
            row["id"] = int(event_id)
    rollup.record_events(conn, rows)
    _record_clicks_as_activity(conn, rows)
    return len(rows)


def _record_clicks_as_activity(conn: Any, rows: Sequence[dict[str, Any]]) -> None:
    """A person's click restarts their retention clock (``contacts.gdpr.record_activity``).

    Only for rows stored per contact, i.e. where the body's policy and the person's
    consent let this click be tied to them: an aggregate-only click names nobody, so it
    cannot be anyone's activity. Machine clicks (link scanners) are not the person's.
    """
    clicked: dict[int, dt.datetime] = {}
    for row in rows:
        cid = row["contact_id"]
        if cid is not None and row["kind"] == EventKind.CLICK and not row["is_machine"]:
            clicked[cid] = max(clicked.get(cid, row["created_at"]), row["created_at"])
    gdpr.record_activity(conn, clicked)


def _psycopg_connection(conn: Any) -> Any:
    """The psycopg 3 connection under a SQLAlchemy PostgreSQL connection, else None."""
    try:
        if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
            return None
        raw = conn.connection.dbapi_connection
    except AttributeError:  # a Session, or another driver: use executemany
        return None
    return raw if hasattr(raw, "cursor") else None


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """Where a click goes and what the scanner rules need to know about its campaign."""

    org_id: int
    url: str  # the stored URL, with utm_* when it points at the body's own site
    link_count: int


class LinkCache:
    """``(campaign, link) → LinkTarget`` of stored campaign links, cached in memory.

    Only absolute http(s) targets are kept: anything else is answered as an unknown link.

    A click redirect must answer without waiting on the database when it can: a
    campaign's links do not change once it is sent, so the answer is kept for ``ttl``
    seconds. Misses (unknown or foreign ids) are not cached, so a link created later is
    found at once; the cache is bounded by ``max_entries``.
    """

    def __init__(self, max_entries: int = 20_000, ttl: float = 600.0) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._data: dict[tuple[int, int], tuple[float, LinkTarget]] = {}
        self._lock = threading.Lock()

    def get(self, conn: Any, campaign_id: int, link_id: int) -> LinkTarget | None:
        """The target of ``link_id`` if it is one of ``campaign_id``'s links, else None."""
        key = (int(campaign_id), int(link_id))
        now = time.monotonic()
        entry = self._data.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        rows = conn.execute(
            select(
                CampaignLink.id,
                CampaignLink.url,
                Campaign.organisation_id,
                Campaign.uuid,
                Campaign.name,
                Organisation.website_url,
            )
            .join(Campaign, Campaign.id == CampaignLink.campaign_id)
            .join(Organisation, Organisation.id == Campaign.organisation_id)
            .where(
                CampaignLink.campaign_id == key[0],
                CampaignLink.organisation_id == Campaign.organisation_id,
            )
        ).all()
        found: dict[tuple[int, int], tuple[float, LinkTarget]] = {}
        for row in rows:
            url = target_url(str(row.url), str(row.uuid), row.name or "", row.website_url or "")
            if not is_http_url(url):
                continue  # never redirect anywhere but to an http(s) address
            target = LinkTarget(int(row.organisation_id), url, len(rows))
            found[(key[0], int(row.id))] = (now, target)
        with self._lock:
            if len(self._data) + len(found) > self.max_entries:
                self._data.clear()
            self._data.update(found)
        hit = found.get(key)
        return hit[1] if hit else None

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
