"""Campaign and body performance figures, computed with pandas on plain DataFrames.

Loading rows is someone else's job (``analytics/stats_sql.py`` gives the same numbers
straight from SQL, without loading every event); here every function takes frames and
returns plain dicts and lists, ready for JSON and templates, plus DataFrames for the
CSV/XLSX exports. Everything is vectorised: a million events take about a second.

Frames and the columns read (extra columns are ignored):

- events (``TrackingEvent``): ``kind``, ``recipient_key``, ``delivery_id``,
  ``is_machine``, ``created_at``; also ``id`` (order of first events), ``link_id``,
  ``device_class``, ``client_family``, ``campaign_id`` (for body-wide figures);
- deliveries (``Delivery``): ``status`` (and ``campaign_id`` for body-wide figures);
- links (``CampaignLink``): ``id``, ``url`` (``label`` if present);
- answers (``Answer``): ``kind``, ``value``;
- site hits (``SiteHit``): ``created_at``, ``campaign_id``, ``is_new_visit``,
  ``visitor_hash``;
- subscriptions (``Subscription``): ``created_at``, ``confirmed_at``, ``withdrawn_at``,
  ``status``, ``source``.

Definitions (the same in ``stats_sql``):

- A *recipient* of an event is its ``recipient_key`` (mode ``aggregate``), its
  ``delivery_id`` (mode ``per_contact``) or, by default, the key when set and the
  delivery otherwise. Unique counts count distinct recipients; an event with neither
  counts as one recipient of its own.
- ``opens_unique``: people who opened, by the pixel or by clicking (a click implies an
  open when images are blocked), from human events only. ``opens_machine``: recipients
  whose every open or click was a machine's, so that the two add up to everyone
  reached. ``opens_pixel_unique``: human pixel opens alone.
- ``delivered`` is the rows the relay accepted (``sent``); rates are over it and are
  None when it is zero. ``click_to_open`` = ``clicks_unique / opens_unique``.
- Devices: the device of each person's first human open or click.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analytics.models import DeviceClass, EventKind
from contacts.models import RISKY_SOURCES

__all__ = [
    "CONTRACT_FIELDS",
    "RATE_FIELDS",
    "TIMELINE_HOURS",
    "CampaignReport",
    "answer_tallies",
    "best_subjects",
    "build_stats",
    "campaign_report",
    "campaign_summaries",
    "compare_with_previous",
    "consent_sources",
    "contract_stats",
    "device_split",
    "event_counts",
    "fill_days",
    "finish_summaries",
    "growth_table",
    "link_table",
    "list_growth",
    "rates_over_time",
    "recipient_ids",
    "records",
    "site_traffic_daily",
    "split_from_counts",
    "timeline",
]

TIMELINE_HOURS = 168
CONTRACT_FIELDS = (
    "status",
    "recipients",
    "sent",
    "deferred",
    "failed",
    "opens_unique",
    "opens_machine",
    "clicks_unique",
    "unsubscribes",
    "rsvp",
    "poll",
    "site_visits",
    "links",
)
RATE_FIELDS = ("open_rate", "click_rate", "click_to_open", "unsubscribe_rate")
RSVP_CHOICES = ("yes", "no", "maybe")
DEVICE_ORDER = tuple(DeviceClass)
_OPENISH = (EventKind.OPEN.value, EventKind.CLICK.value)
_DELIVERY_STATUSES = (
    "queued",
    "sending",
    "sent",
    "deferred",
    "failed",
    "unknown",
    "cancelled",
    "skipped",
)


# --------------------------------------------------------------------------- helpers


def _col(frame: pd.DataFrame, name: str, default: Any) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series(default, index=frame.index)


def _utc(values: pd.Series | Sequence[Any]) -> pd.Series:
    """Aware UTC datetimes whatever came in (naive values are taken as UTC)."""
    s = pd.to_datetime(pd.Series(values), utc=False)
    if s.dt.tz is None:
        return s.dt.tz_localize("UTC")
    return s.dt.tz_convert("UTC")


def _ts(value: dt.datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _ratio(num: float, den: float) -> float | None:
    return None if not den else float(num) / float(den)


def _machine(events: pd.DataFrame) -> np.ndarray:
    return _col(events, "is_machine", False).fillna(False).astype(bool).to_numpy()


def recipient_ids(events: pd.DataFrame, mode: str | None = None) -> np.ndarray:
    """One float per event naming its recipient (NaN: unknown); see the module docstring.

    Keys become non-negative codes and deliveries negative ones, so the two never meet.
    """
    n = len(events)
    keys = _col(events, "recipient_key", "").fillna("").astype(str)
    deliveries = pd.to_numeric(_col(events, "delivery_id", np.nan), errors="coerce").to_numpy(
        dtype="float64"
    )
    codes, _ = pd.factorize(keys, sort=False)
    key_ids = np.where(keys.to_numpy() != "", codes.astype("float64"), np.nan)
    delivery_ids = -(deliveries + 1.0)
    if mode == "aggregate":
        return key_ids if n else np.empty(0)
    if mode == "per_contact":
        return delivery_ids if n else np.empty(0)
    if mode not in (None, "auto"):
        raise ValueError(f"unknown counting mode {mode!r}")
    return np.where(np.isnan(key_ids), delivery_ids, key_ids)


def _unique(ids: np.ndarray) -> int:
    """Distinct known recipients, plus one for each event with no recipient."""
    if ids.size == 0:
        return 0
    missing = np.isnan(ids)
    return int(pd.unique(ids[~missing]).size + missing.sum())


def _unique_by(groups: np.ndarray, ids: np.ndarray) -> pd.Series:
    """:func:`_unique` per group value."""
    frame = pd.DataFrame({"g": groups, "who": ids})
    missing = frame["who"].isna()
    keyed = frame[~missing].drop_duplicates().groupby("g").size()
    keyless = frame[missing].groupby("g").size()
    return keyed.add(keyless, fill_value=0).astype("int64")


# --------------------------------------------------------------------------- one campaign


def event_counts(events: pd.DataFrame, mode: str | None = None) -> dict[str, int]:
    """The unique and total counts of one campaign's events (see the module docstring)."""
    if events is None or len(events) == 0:
        return {
            k: 0
            for k in (
                "opens_unique",
                "opens_any",
                "opens_pixel_unique",
                "clicks_unique",
                "clicks_any",
                "clicks_total",
                "unsubscribes",
                "bounces",
                "complaints",
                "web_views",
            )
        }
    ids = recipient_ids(events, mode)
    kind = events["kind"].astype(str).to_numpy()
    human = ~_machine(events)
    openish = np.isin(kind, _OPENISH)
    click = kind == EventKind.CLICK.value
    return {
        "opens_unique": _unique(ids[openish & human]),
        "opens_any": _unique(ids[openish]),
        "opens_pixel_unique": _unique(ids[(kind == EventKind.OPEN.value) & human]),
        "clicks_unique": _unique(ids[click & human]),
        "clicks_any": _unique(ids[click]),
        "clicks_total": int((click & human).sum()),
        "unsubscribes": _unique(ids[kind == EventKind.UNSUBSCRIBE.value]),
        "bounces": _unique(ids[kind == EventKind.BOUNCE.value]),
        "complaints": _unique(ids[kind == EventKind.COMPLAINT.value]),
        "web_views": _unique(ids[(kind == EventKind.WEB_VIEW.value) & human]),
    }


def answer_tallies(
    counts: Iterable[tuple[str, str, int]], poll_options: Sequence[str] | None = None
) -> tuple[dict[str, int], dict[str, int]]:
    """(rsvp, poll) tallies from ``(kind, value, count)`` triples.

    RSVP always has ``yes``, ``no``, ``maybe``; with ``poll_options`` the poll lists
    exactly those options, in that order, zeros included (other values are ignored).
    """
    rsvp = dict.fromkeys(RSVP_CHOICES, 0)
    poll: dict[str, int] = {str(o): 0 for o in poll_options or ()}
    for kind, value, n in counts:
        kind, value = str(kind), str(value)
        if kind == "rsvp" and value in rsvp:
            rsvp[value] += int(n)
        elif kind == "poll" and (poll_options is None or value in poll):
            poll[value] = poll.get(value, 0) + int(n)
    return rsvp, poll


def _answer_counts(answers: pd.DataFrame | None) -> list[tuple[str, str, int]]:
    if answers is None or len(answers) == 0:
        return []
    grouped = answers.groupby([answers["kind"].astype(str), answers["value"].astype(str)]).size()
    return [(k, v, int(n)) for (k, v), n in grouped.items()]


def build_stats(
    status_counts: Mapping[str, int],
    counts: Mapping[str, int],
    *,
    status: str = "",
    rsvp: Mapping[str, int] | None = None,
    poll: Mapping[str, int] | None = None,
    site_visits: int = 0,
    links: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The stats dict (CONTRACT fields first, then extras) from pre-counted figures.

    Shared by :func:`campaign_report` and ``stats_sql.campaign_stats`` so both give the
    same dict from the same counts.
    """
    statuses = {s: int(status_counts.get(s, 0)) for s in _DELIVERY_STATUSES}
    for s, n in status_counts.items():
        statuses.setdefault(str(s), int(n))
    sent = statuses["sent"]
    opens_unique = int(counts.get("opens_unique", 0))
    clicks_unique = int(counts.get("clicks_unique", 0))
    unsubscribes = int(counts.get("unsubscribes", 0))
    stats: dict[str, Any] = {
        "status": status,
        "recipients": sum(statuses.values()),
        "sent": sent,
        "deferred": statuses["deferred"],
        "failed": statuses["failed"],
        "opens_unique": opens_unique,
        "opens_machine": int(counts.get("opens_any", 0)) - opens_unique,
        "clicks_unique": clicks_unique,
        "unsubscribes": unsubscribes,
        "rsvp": {k: int((rsvp or {}).get(k, 0)) for k in RSVP_CHOICES},
        "poll": {str(k): int(v) for k, v in (poll or {}).items()},
        "site_visits": int(site_visits),
        "links": [{"url": str(x["url"]), "clicks_unique": int(x["clicks_unique"])} for x in links],
        # Extras beyond the CONTRACT.
        "queued": statuses["queued"] + statuses["sending"],
        "unknown": statuses["unknown"],
        "cancelled": statuses["cancelled"],
        "skipped": statuses["skipped"],
        "delivered": sent,
        "opens_pixel_unique": int(counts.get("opens_pixel_unique", 0)),
        "clicks_total": int(counts.get("clicks_total", 0)),
        "clicks_machine": int(counts.get("clicks_any", 0)) - clicks_unique,
        "bounces": int(counts.get("bounces", 0)),
        "complaints": int(counts.get("complaints", 0)),
        "web_views": int(counts.get("web_views", 0)),
        "open_rate": _ratio(opens_unique, sent),
        "click_rate": _ratio(clicks_unique, sent),
        "click_to_open": _ratio(clicks_unique, opens_unique),
        "unsubscribe_rate": _ratio(unsubscribes, sent),
        "bounce_rate": _ratio(statuses["failed"], sent + statuses["failed"]),
    }
    return stats


def contract_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    """Exactly the fields of ``GET /campaigns/{id}/stats``, in CONTRACT order."""
    return {k: stats[k] for k in CONTRACT_FIELDS}


def link_table(
    events: pd.DataFrame, links: pd.DataFrame | None, mode: str | None = None
) -> pd.DataFrame:
    """Per link: ``link_id``, ``url``, ``label``, ``clicks_unique``, ``clicks_total`` (human).

    Every stored link appears, clicked or not; most clicked first.
    """
    if links is None or len(links) == 0:
        table = pd.DataFrame({"link_id": pd.Series(dtype="int64"), "url": "", "label": ""})
    else:
        table = pd.DataFrame(
            {
                "link_id": links["id"].astype("int64").to_numpy(),
                "url": links["url"].astype(str).to_numpy(),
                "label": _col(links, "label", "").fillna("").astype(str).to_numpy(),
            }
        )
    uniques = pd.Series(dtype="int64")
    totals = pd.Series(dtype="int64")
    if events is not None and len(events):
        kind = events["kind"].astype(str).to_numpy()
        link_ids = pd.to_numeric(_col(events, "link_id", np.nan), errors="coerce").to_numpy()
        mask = (kind == EventKind.CLICK.value) & ~_machine(events) & ~np.isnan(link_ids)
        if mask.any():
            ids = recipient_ids(events, mode)[mask]
            groups = link_ids[mask].astype("int64")
            uniques = _unique_by(groups, ids)
            totals = pd.Series(groups).value_counts()
    table["clicks_unique"] = table["link_id"].map(uniques).fillna(0).astype("int64")
    table["clicks_total"] = table["link_id"].map(totals).fillna(0).astype("int64")
    table = table.sort_values(
        ["clicks_unique", "clicks_total", "link_id"], ascending=[False, False, True]
    )
    return table.reset_index(drop=True)


def _first_human_events(events: pd.DataFrame, mode: str | None) -> pd.DataFrame:
    kind = events["kind"].astype(str).to_numpy()
    mask = np.isin(kind, _OPENISH) & ~_machine(events)
    frame = events.loc[mask].copy()
    frame["_who"] = recipient_ids(events, mode)[mask]
    order = "id" if "id" in frame.columns else "created_at"
    if order in frame.columns:
        frame = frame.sort_values(order, kind="stable")
    keyless = frame["_who"].isna()
    return pd.concat([frame[~keyless].drop_duplicates("_who"), frame[keyless]])


def split_from_counts(counts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(devices, clients) frames from ``device_class``, ``client_family``, ``count`` rows.

    Both have ``count`` and ``share`` (of the people counted); devices list the four
    classes in a fixed order, clients the most common first.
    """
    total = int(counts["count"].sum()) if len(counts) else 0
    devices = counts["device_class"].fillna("unknown").astype(str)
    devices = devices.where(devices.isin(DEVICE_ORDER), "unknown")
    by_device = counts["count"].groupby(devices.to_numpy()).sum()
    dev = pd.DataFrame({"device_class": list(DEVICE_ORDER)})
    dev["count"] = dev["device_class"].map(by_device).fillna(0).astype("int64")
    dev["share"] = dev["count"] / total if total else None
    clients = counts["client_family"].fillna("").astype(str).replace("", "Other")
    by_client = counts["count"].groupby(clients.to_numpy()).sum()
    cli = pd.DataFrame(
        {
            "client_family": by_client.index.astype(str),
            "count": by_client.to_numpy(dtype="int64"),
        }
    )
    cli = cli[cli["count"] > 0].sort_values(["count", "client_family"], ascending=[False, True])
    cli["share"] = cli["count"] / total if total else None
    return dev, cli.reset_index(drop=True)


def device_split(
    events: pd.DataFrame, mode: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(devices, clients): people by the device and client of their first human event."""
    columns = ["device_class", "client_family", "count"]
    if events is None or len(events) == 0:
        return split_from_counts(pd.DataFrame(columns=columns))
    first = _first_human_events(events, mode)
    pairs = pd.DataFrame(
        {
            "device_class": _col(first, "device_class", "unknown").fillna("unknown").astype(str),
            "client_family": _col(first, "client_family", "").fillna("").astype(str),
        }
    )
    counts = pairs.groupby(columns[:2]).size().rename("count").reset_index()
    return split_from_counts(counts if len(counts) else pd.DataFrame(columns=columns))


def timeline(
    events: pd.DataFrame, started_at: dt.datetime | None, hours: int = TIMELINE_HOURS
) -> pd.DataFrame:
    """Human open and click events per hour since ``started_at``: ``hours`` rows.

    Columns ``hour`` (0…hours-1), ``at`` (start of the hour, UTC), ``opens``, ``clicks``.
    """
    frame = pd.DataFrame({"hour": np.arange(hours), "opens": 0, "clicks": 0})
    if started_at is None:
        frame.insert(1, "at", pd.NaT)
        return frame
    start = _ts(started_at)
    frame.insert(1, "at", start + pd.to_timedelta(frame["hour"], unit="h"))
    if events is None or len(events) == 0:
        return frame
    kind = events["kind"].astype(str).to_numpy()
    human = ~_machine(events)
    elapsed = (_utc(events["created_at"]) - start) / pd.Timedelta(hours=1)
    offset = np.floor(elapsed.to_numpy(dtype="float64", na_value=np.nan))
    inside = (offset >= 0) & (offset < hours)
    hour = np.where(inside, offset, 0).astype("int64")
    for column, wanted in (("opens", EventKind.OPEN.value), ("clicks", EventKind.CLICK.value)):
        sel = inside & human & (kind == wanted)
        frame[column] = np.bincount(hour[sel], minlength=hours)[:hours].astype("int64")
    return frame


@dataclass
class CampaignReport:
    """Everything the campaign performance page and its exports show."""

    stats: dict[str, Any]
    links: pd.DataFrame
    devices: pd.DataFrame
    clients: pd.DataFrame
    timeline: pd.DataFrame
    comparison: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the stats, then full tables as lists of dicts."""
        tl = self.timeline.copy()
        tl["at"] = [None if pd.isna(t) else pd.Timestamp(t).isoformat() for t in tl["at"]]
        return {
            **self.stats,
            "link_table": _records(self.links),
            "devices": _records(self.devices),
            "clients": _records(self.clients),
            "timeline": _records(tl),
            "comparison": self.comparison,
        }

    def frames(self) -> dict[str, pd.DataFrame]:
        """One DataFrame per sheet for CSV/XLSX export (formula escaping is the exporter's)."""
        summary = [(k, v) for k, v in self.stats.items() if k not in ("links", "rsvp", "poll")]
        summary += [(f"rsvp_{k}", v) for k, v in self.stats["rsvp"].items()]
        summary += [(f"poll:{k}", v) for k, v in self.stats["poll"].items()]
        tl = self.timeline.copy()
        if len(tl) and tl["at"].notna().all():
            tl["at"] = pd.to_datetime(tl["at"]).dt.tz_convert("UTC").dt.tz_localize(None)
        return {
            "summary": pd.DataFrame(summary, columns=["metric", "value"]),
            "links": self.links.copy(),
            "devices": self.devices.copy(),
            "clients": self.clients.copy(),
            "timeline": tl,
        }


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as a list of dicts of plain Python values (NaN → None), ready for JSON."""
    out = []
    for row in frame.to_dict("records"):
        out.append({k: _plain(v) for k, v in row.items()})
    return out


_records = records  # the first name, used by analytics.dashboard


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def campaign_report(
    deliveries: pd.DataFrame,
    events: pd.DataFrame,
    links: pd.DataFrame | None = None,
    answers: pd.DataFrame | None = None,
    site_hits: pd.DataFrame | None = None,
    *,
    status: str = "",
    started_at: dt.datetime | None = None,
    campaign_id: int | None = None,
    mode: str | None = None,
    poll_options: Sequence[str] | None = None,
    previous: pd.DataFrame | None = None,
) -> CampaignReport:
    """The whole report of one campaign from its frames.

    ``site_hits`` may hold other campaigns' hits: with ``campaign_id`` only this one's
    new visits count. ``previous`` (see :func:`campaign_summaries`) adds the comparison
    with the body's median.
    """
    if events is None:
        events = pd.DataFrame(columns=["kind", "recipient_key", "delivery_id", "is_machine"])
    status_counts: dict[str, int] = {}
    if deliveries is not None and len(deliveries):
        status_counts = {
            str(k): int(v) for k, v in deliveries["status"].astype(str).value_counts().items()
        }
    counts = event_counts(events, mode)
    rsvp, poll = answer_tallies(_answer_counts(answers), poll_options)
    visits = 0
    if site_hits is not None and len(site_hits):
        hits = site_hits
        if campaign_id is not None:
            hits = hits[pd.to_numeric(hits["campaign_id"], errors="coerce") == campaign_id]
        visits = int(_col(hits, "is_new_visit", True).fillna(False).astype(bool).sum())
    table = link_table(events, links, mode)
    stats = build_stats(
        status_counts,
        counts,
        status=status,
        rsvp=rsvp,
        poll=poll,
        site_visits=visits,
        links=table[["url", "clicks_unique"]].to_dict("records"),
    )
    devices, clients = device_split(events, mode)
    report = CampaignReport(stats, table, devices, clients, timeline(events, started_at))
    if previous is not None:
        report.comparison = compare_with_previous(
            stats, previous, before=started_at, exclude_campaign_id=campaign_id
        )
    return report


# --------------------------------------------------------------------------- a body


def campaign_summaries(
    campaigns: pd.DataFrame,
    deliveries: pd.DataFrame,
    events: pd.DataFrame,
    mode: str | None = None,
) -> pd.DataFrame:
    """One row per campaign with its counts and rates, oldest first.

    ``campaigns`` has ``id`` and optionally ``name``, ``subject``, ``started_at``;
    ``deliveries`` and ``events`` carry ``campaign_id``. Columns: ``campaign_id``,
    ``name``, ``subject``, ``started_at``, ``recipients``, ``delivered``,
    ``opens_unique``, ``clicks_unique``, ``unsubscribes`` and :data:`RATE_FIELDS`.
    """
    out = pd.DataFrame(
        {
            "campaign_id": campaigns["id"].astype("int64").to_numpy(),
            "name": _col(campaigns, "name", "").fillna("").astype(str).to_numpy(),
            "subject": _col(campaigns, "subject", "").fillna("").astype(str).to_numpy(),
            "started_at": _utc(_col(campaigns, "started_at", pd.NaT)).to_numpy(),
        }
    )
    out["started_at"] = _utc(out["started_at"])
    cid = out["campaign_id"]
    if deliveries is not None and len(deliveries):
        d_cid = deliveries["campaign_id"].astype("int64")
        out["recipients"] = cid.map(d_cid.value_counts()).fillna(0).astype("int64")
        sent = d_cid[deliveries["status"].astype(str).to_numpy() == "sent"].value_counts()
        out["delivered"] = cid.map(sent).fillna(0).astype("int64")
    else:
        out["recipients"] = 0
        out["delivered"] = 0
    for name in ("opens_unique", "clicks_unique", "unsubscribes"):
        out[name] = 0
    if events is not None and len(events):
        ids = recipient_ids(events, mode)
        groups = events["campaign_id"].astype("int64").to_numpy()
        kind = events["kind"].astype(str).to_numpy()
        human = ~_machine(events)
        masks = {
            "opens_unique": np.isin(kind, _OPENISH) & human,
            "clicks_unique": (kind == EventKind.CLICK.value) & human,
            "unsubscribes": kind == EventKind.UNSUBSCRIBE.value,
        }
        for name, mask in masks.items():
            counts = _unique_by(groups[mask], ids[mask])
            out[name] = cid.map(counts).fillna(0).astype("int64")
    return finish_summaries(out)


def finish_summaries(out: pd.DataFrame) -> pd.DataFrame:
    """Add the rate columns to per-campaign counts and sort oldest first."""
    out = out.copy()
    delivered = out["delivered"].where(out["delivered"] > 0)
    opened = out["opens_unique"].where(out["opens_unique"] > 0)
    out["open_rate"] = out["opens_unique"] / delivered
    out["click_rate"] = out["clicks_unique"] / delivered
    out["click_to_open"] = out["clicks_unique"] / opened
    out["unsubscribe_rate"] = out["unsubscribes"] / delivered
    out = out.sort_values(["started_at", "campaign_id"], na_position="last")
    return out.reset_index(drop=True)


def compare_with_previous(
    stats: Mapping[str, Any],
    previous: pd.DataFrame,
    *,
    before: dt.datetime | None = None,
    exclude_campaign_id: int | None = None,
    fields: Sequence[str] = RATE_FIELDS,
) -> dict[str, dict[str, Any]]:
    """Each rate of this campaign beside the body's median over previous campaigns.

    ``previous`` has one row per campaign with the rate columns (see
    :func:`campaign_summaries`); rows started at or after ``before``, the campaign
    itself, and campaigns without a rate (nothing delivered) are left out.
    Returns ``{rate: {"value", "median", "delta", "campaigns"}}``.
    """
    prev = previous
    if exclude_campaign_id is not None and "campaign_id" in prev.columns:
        prev = prev[prev["campaign_id"] != exclude_campaign_id]
    if before is not None and "started_at" in prev.columns:
        started = _utc(prev["started_at"])
        prev = prev[(started < _ts(before)).to_numpy()]
    result: dict[str, dict[str, Any]] = {}
    for name in fields:
        values = pd.to_numeric(_col(prev, name, np.nan), errors="coerce").dropna()
        median = float(values.median()) if len(values) else None
        value = stats.get(name)
        delta = None if value is None or median is None else float(value) - median
        result[name] = {
            "value": value,
            "median": median,
            "delta": delta,
            "campaigns": len(values),
        }
    return result


def rates_over_time(summaries: pd.DataFrame) -> list[dict[str, Any]]:
    """Per sent campaign, oldest first: id, name, subject, start, delivered and rates."""
    frame = summaries[summaries["started_at"].notna()].sort_values("started_at")
    cols = ["campaign_id", "name", "subject", "started_at", "delivered", *RATE_FIELDS]
    return _records(frame[[c for c in cols if c in frame.columns]])


def best_subjects(
    summaries: pd.DataFrame, by: str = "open_rate", min_recipients: int = 50, limit: int = 5
) -> list[dict[str, Any]]:
    """The subjects with the best ``by`` rate among campaigns delivered to enough people."""
    if by not in RATE_FIELDS:
        raise ValueError(f"unknown rate {by!r}")
    frame = summaries[(summaries["delivered"] >= min_recipients) & summaries[by].notna()]
    frame = frame.sort_values([by, "delivered"], ascending=[False, False]).head(limit)
    return _records(frame[["campaign_id", "subject", "delivered", by]])


def _months(values: pd.Series) -> pd.Series:
    return _utc(values).dt.strftime("%Y-%m")


def list_growth(subscriptions: pd.DataFrame) -> pd.DataFrame:
    """Per month (``YYYY-MM``, UTC): ``gains``, ``losses``, ``net`` and running ``total``.

    A subscription counts as a gain when it became active: at its confirmation, or at
    its creation when it needed none; pending ones never do. A loss is a withdrawal.
    """
    if subscriptions is None or len(subscriptions) == 0:
        return growth_table({}, {})
    created = _utc(subscriptions["created_at"])
    confirmed = _utc(_col(subscriptions, "confirmed_at", pd.NaT))
    withdrawn = _utc(_col(subscriptions, "withdrawn_at", pd.NaT))
    status = _col(subscriptions, "status", "active").astype(str).to_numpy()
    joined = confirmed.where(confirmed.notna().to_numpy(), created)
    joined = joined[(status != "pending") | confirmed.notna().to_numpy()]
    gains = _months(joined.dropna()).value_counts()
    losses = _months(withdrawn.dropna()).value_counts()
    return growth_table(gains.to_dict(), losses.to_dict())


def growth_table(gains: Mapping[str, int], losses: Mapping[str, int]) -> pd.DataFrame:
    """The :func:`list_growth` frame from gains and losses keyed by ``YYYY-MM``."""
    gains = pd.Series(dict(gains), dtype="int64")
    losses = pd.Series(dict(losses), dtype="int64")
    months = sorted(set(gains.index) | set(losses.index))
    if months:  # every month in between, even a quiet one
        span = pd.period_range(months[0], months[-1], freq="M").strftime("%Y-%m")
        months = list(span)
    out = pd.DataFrame({"month": months})
    out["gains"] = out["month"].map(gains).fillna(0).astype("int64")
    out["losses"] = out["month"].map(losses).fillna(0).astype("int64")
    out["net"] = out["gains"] - out["losses"]
    out["total"] = out["net"].cumsum()
    return out


def consent_sources(subscriptions: pd.DataFrame) -> list[dict[str, Any]]:
    """Share of active subscriptions by consent source, largest first, risky ones flagged."""
    if subscriptions is None or len(subscriptions) == 0:
        return []
    active = subscriptions[_col(subscriptions, "status", "active").astype(str) == "active"]
    counts = active["source"].astype(str).value_counts()
    total = int(counts.sum())
    rows = [
        {
            "source": str(src),
            "count": int(n),
            "share": n / total,
            "risky": str(src) in RISKY_SOURCES,
        }
        for src, n in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r["count"], r["source"]))


def site_traffic_daily(
    site_hits: pd.DataFrame,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Per UTC day: ``page_views``, ``visits``, ``visitors``, ``campaign_visits``.

    ``visitors`` counts distinct daily hashes (a hash lives one day by design). Days
    without a hit between ``start`` and ``end`` (inclusive) appear with zeros.
    """
    columns = ["day", "page_views", "visits", "visitors", "campaign_visits"]
    if site_hits is None or len(site_hits) == 0:
        frame = pd.DataFrame(columns=columns)
    else:
        hits = site_hits.copy()
        hits["day"] = _utc(hits["created_at"]).dt.date.to_numpy()
        hits["_visit"] = _col(hits, "is_new_visit", True).fillna(False).astype(bool)
        hits["_from_campaign"] = hits["_visit"] & _col(hits, "campaign_id", np.nan).notna()
        grouped = hits.groupby("day")
        frame = pd.DataFrame(
            {
                "page_views": grouped.size(),
                "visits": grouped["_visit"].sum(),
                "visitors": grouped["visitor_hash"].nunique(),
                "campaign_visits": grouped["_from_campaign"].sum(),
            }
        ).reset_index()
    return fill_days(frame, start, end)


def fill_days(
    frame: pd.DataFrame, start: dt.date | None = None, end: dt.date | None = None
) -> pd.DataFrame:
    """Per-day counts with every day from ``start`` to ``end`` present (zeros added)."""
    columns = ["day", "page_views", "visits", "visitors", "campaign_visits"]
    days = [d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for d in frame["day"]]
    if len(frame):
        frame = frame.assign(day=days)
    if start is None and days:
        start = min(days)
    if end is None and days:
        end = max(days)
    if start is None or end is None:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})
    every = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    frame = frame.set_index("day").reindex(every, fill_value=0).rename_axis("day").reset_index()
    for c in columns[1:]:
        frame[c] = frame[c].astype("int64")
    return frame[columns]
