"""Counting page views on a body's own website: salt, visitor hash, visits, campaigns.

The script and pixel of ``analytics.snippet`` send hits to the tracking endpoints; here a
hit becomes a :class:`SiteHitItem` (at request time: the visitor hash is computed from
the client address, which is then forgotten) and a ``site_hits`` row (at write time, in
batches through the event buffer).

- **Daily salt**: one random salt per UTC day in ``DailySalt``; creating today's deletes
  every older row, so yesterday's hashes can no longer be recomputed. The hash also
  covers the site key, so the same visitor gets unrelated hashes on two bodies' sites.
- **Visits**: a page view starts a new visit when the same visitor hash has no page view
  in the previous :data:`VISIT_GAP` (30 minutes, the usual definition), or when it
  arrives from a campaign link the current visit did not come from. Later page views of
  a visit inherit its campaign.
- **Campaigns**: ``utm_campaign`` values that Crieur wrote (``…-<campaign uuid>``) name
  one of the body's campaigns; other values are kept as text, attributed to nothing.
- **Privacy signals**: a request with ``DNT: 1`` or ``Sec-GPC: 1`` is not counted
  (the script itself sends nothing then; the no-script pixel relies on this check).

No IP address (not even a referring site given as an IP) and no User-Agent is stored;
nothing links a visit to a contact.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from analytics.models import DailySalt, SiteHit
from analytics.snippet import SiteHitData, campaign_from_utm, new_daily_salt, visitor_hash
from analytics.useragent import parse_user_agent
from campaigns.models import Campaign
from contacts.models import Organisation

__all__ = [
    "VISIT_GAP",
    "SiteCache",
    "SiteHitItem",
    "daily_salt",
    "forget_salt_cache",
    "make_site_hit",
    "privacy_signal",
    "rows_for_site_hits",
    "store_site_hits",
]

VISIT_GAP = dt.timedelta(minutes=30)
SH = SiteHit.__table__


def privacy_signal(headers: Mapping[str, str]) -> bool:
    """True when the browser asks not to be tracked (Do Not Track or Global Privacy Control)."""
    return (headers.get("DNT") or "").strip() == "1" or (
        headers.get("Sec-GPC") or ""
    ).strip() == "1"


@dataclass(slots=True)
class SiteHitItem:
    """One counted page view waiting in the buffer; holds no IP and no User-Agent."""

    org_id: int
    visitor_hash: str
    data: SiteHitData
    device_class: str
    at: float


def _today(now: float | None = None) -> dt.date:
    return dt.datetime.fromtimestamp(time.time() if now is None else now, tz=dt.UTC).date()


_salt_lock = threading.Lock()
_salt_cache: dict[str, tuple[dt.date, str]] = {}


def daily_salt(engine: Any, day: dt.date | None = None) -> str:
    """Today's salt (created on first use, older ones deleted), cached per process.

    Uses its own short transaction on ``engine`` (the request's session is left alone).
    """
    day = day or _today()
    cache_key = str(engine.url)
    cached = _salt_cache.get(cache_key)
    if cached is not None and cached[0] == day:
        return cached[1]
    with _salt_lock:
        cached = _salt_cache.get(cache_key)
        if cached is not None and cached[0] == day:
            return cached[1]
        with engine.connect() as conn:
            salt = conn.execute(select(DailySalt.salt).where(DailySalt.day == day)).scalar()
        if salt is None:
            candidate = new_daily_salt()
            try:
                with engine.begin() as conn:
                    conn.execute(delete(DailySalt).where(DailySalt.day < day))
                    conn.execute(insert(DailySalt).values(day=day, salt=candidate))
                salt = candidate
            except IntegrityError:  # another process created it first
                with engine.connect() as conn:
                    salt = conn.execute(select(DailySalt.salt).where(DailySalt.day == day)).scalar()
        _salt_cache[cache_key] = (day, str(salt))
        return str(salt)


def forget_salt_cache() -> None:
    """Drop the in-process salt cache (tests that change the clock or the database)."""
    with _salt_lock:
        _salt_cache.clear()


def make_site_hit(
    org_id: int,
    site_key: str,
    data: SiteHitData,
    user_agent: str,
    client_ip: str,
    salt: str,
    at: float | None = None,
) -> SiteHitItem:
    """The buffered form of a hit: the address goes into the hash and nowhere else."""
    return SiteHitItem(
        org_id=int(org_id),
        visitor_hash=visitor_hash(salt, site_key, user_agent or "", client_ip or ""),
        data=data,
        device_class=parse_user_agent(user_agent).device_class,
        at=time.time() if at is None else at,
    )


class SiteCache:
    """Site key → body id, and (body, campaign uuid) → campaign id, cached for ``ttl`` s."""

    def __init__(self, ttl: float = 60.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._orgs: dict[str, tuple[float, int | None]] = {}

    def org_for_key(self, conn: Any, site_key: str) -> int | None:
        now = time.monotonic()
        hit = self._orgs.get(site_key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        org_id = conn.execute(
            select(Organisation.id).where(Organisation.site_key == site_key)
        ).scalar()
        if len(self._orgs) >= self.max_entries:
            self._orgs.clear()
        self._orgs[site_key] = (now, None if org_id is None else int(org_id))
        return None if org_id is None else int(org_id)

    def clear(self) -> None:
        self._orgs.clear()


def _referrer(host: str) -> str:
    """The referring site's host name; an IP address is dropped (no IP is stored, whose
    ever it is: an intranet address can say more than a site name)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    return ""


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def rows_for_site_hits(conn: Any, items: Sequence[SiteHitItem]) -> list[dict[str, Any]]:
    """``site_hits`` rows for a batch: campaigns attributed, new visits detected."""
    items = sorted(items, key=lambda i: i.at)
    if not items:
        return []
    org_ids = sorted({i.org_id for i in items})
    existing_orgs = set(
        conn.execute(select(Organisation.id).where(Organisation.id.in_(org_ids))).scalars()
    )
    items = [i for i in items if i.org_id in existing_orgs]
    if not items:
        return []
    # Campaigns named by utm_campaign, within each body only.
    uuids = {u for i in items if (u := campaign_from_utm(i.data.utm_campaign)) is not None}
    campaigns: dict[tuple[int, str], int] = {}
    if uuids:
        for cid, org_id, uuid in conn.execute(
            select(Campaign.id, Campaign.organisation_id, Campaign.uuid).where(
                Campaign.uuid.in_(sorted(uuids)), Campaign.organisation_id.in_(org_ids)
            )
        ).all():
            campaigns[(int(org_id), str(uuid).lower())] = int(cid)
    # The latest page view of each visitor before the batch, within the visit gap.
    lo = _utc(items[0].at) - VISIT_GAP
    hashes = sorted({i.visitor_hash for i in items})
    last: dict[tuple[int, str], tuple[dt.datetime, int | None]] = {}
    for org_id, vh, created, cid in conn.execute(
        select(SH.c.organisation_id, SH.c.visitor_hash, SH.c.created_at, SH.c.campaign_id)
        .where(
            SH.c.organisation_id.in_(org_ids),
            SH.c.visitor_hash.in_(hashes),
            SH.c.created_at >= lo,
        )
        .order_by(SH.c.created_at)
    ).all():
        last[(int(org_id), str(vh))] = (_aware(created), cid)
    rows = []
    for item in items:
        at = _utc(item.at)
        uuid = campaign_from_utm(item.data.utm_campaign)
        campaign_id = campaigns.get((item.org_id, uuid)) if uuid else None
        key = (item.org_id, item.visitor_hash)
        previous = last.get(key)
        if previous is None or at - previous[0] > VISIT_GAP:
            new_visit = True
        elif campaign_id is not None and campaign_id != previous[1]:
            new_visit = True  # came back through another campaign's link
        else:
            new_visit = False
            campaign_id = previous[1]  # a page of the same visit
        last[key] = (at, campaign_id)
        rows.append(
            {
                "organisation_id": item.org_id,
                "visitor_hash": item.visitor_hash,
                "is_new_visit": new_visit,
                "path": item.data.path,
                "referrer_host": _referrer(item.data.referrer_host),
                "campaign_id": campaign_id,
                "utm_source": item.data.utm_source,
                "utm_medium": item.data.utm_medium,
                "utm_campaign": item.data.utm_campaign,
                "device_class": item.device_class,
                "created_at": at,
            }
        )
    return rows


def store_site_hits(conn: Any, items: Sequence[SiteHitItem]) -> int:
    """Insert the rows for ``items`` (one ``executemany``); the caller commits."""
    rows = rows_for_site_hits(conn, items)
    if rows:
        conn.execute(insert(SH), rows)
    return len(rows)
