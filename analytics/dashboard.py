"""What the Statistiques pages show, loaded from the database in a few aggregate queries.

``stats_sql`` computes the figures in SQL (a campaign of 100,000 recipients and a million
events never comes into memory); this module adds what a director needs to read them:

- each figure beside the body's **median over its previous campaigns** (those started
  before this one and that delivered something);
- beside the **2010 sector study** where it says something about that figure. The study
  (``analytics/benchmark/data/sector-baselines-2010.csv``) published practices, not
  rates: it gives no open or click rate, but it says how many bodies followed the click
  rate (a third), the usual indicators (half), the traffic brought to their website
  (42 %) or had optimised for mobile phones (fewer than half). Those are shown as the
  sector's reference beside the matching figure, with their wording, never as a rate to
  beat;
- the per-link table in the order the links appear in the message, with a heat level
  (0-5) for the heat map;
- the RSVP and poll tallies with capacity, and the list of who said yes when the body's
  policy allows it (``analytics.answers.attendees_visible``).

The body's dashboard: rates of every campaign over time, list growth and losses,
consent sources, best subjects, and the website traffic of the last weeks.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from analytics import answers, reports, stats_sql
from analytics.models import Answer, SiteHit, TrackingEvent
from analytics.sanitize import clean_value
from campaigns.ics import EventInfo
from campaigns.models import Campaign, CampaignLink, Delivery
from contacts.i18n import N_
from contacts.models import Organisation, TrackingPolicy

__all__ = [
    "COMPARED_FIELDS",
    "BodyDashboard",
    "CampaignPage",
    "ReportCache",
    "body_dashboard",
    "campaign_page",
    "campaign_summaries",
    "campaign_version",
    "contract_stats",
    "poll_options",
    "sector_references",
]

BASELINE_FILE = Path(__file__).resolve().parent / "benchmark" / "data" / "sector-baselines-2010.csv"

COUNT_FIELDS = ("recipients", "delivered", "opens_unique", "clicks_unique", "unsubscribes")
COMPARED_FIELDS = (*reports.RATE_FIELDS, *COUNT_FIELDS, "site_visits")

# Which 2010 indicator speaks about which figure of the performance page.
SECTOR_INDICATORS: dict[str, str] = {
    "open_rate": "measure_standard_kpis",
    "click_rate": "measure_click_rate",
    "site_visits": "measure_site_traffic",
    "devices": "practice_mobile_optimisation",
    "measured": "measure_none",
}
HEAT_LEVELS = 5


def poll_options(campaign: Campaign) -> list[str]:
    """The poll's options as answers store them (``Answer.value``), in order."""
    block = answers.poll_block(campaign)
    return [clean_value(o) for o in (block.get("options") or ())] if block else []


class ReportCache:
    """Aggregates of big campaigns kept in memory, recomputed only when they changed.

    A campaign's page aggregates up to a million events: seconds of database work that
    would be repeated for every view and every director. Entries are keyed by what they
    describe and stored with a *version* (:func:`campaign_version`: the campaign's last
    event id, its answers, site visits and delivery outcomes, read in a few indexed
    queries). An entry is served while its version has not changed, or, when it has,
    for ``ttl`` more seconds (the pages say when their figures were computed). After
    that, with a ``refresher`` (a function running a job in the background with its own
    database connection, given by the web layer), the old figures are still served once
    while new ones are computed in the background (stale-while-revalidate): only the
    very first view of a campaign in a process waits for the aggregates.
    """

    def __init__(
        self,
        ttl: float = 30.0,
        max_entries: int = 256,
        refresher: Callable[[Callable[[Any], None]], None] | None = None,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.refresher = refresher
        self.hits = 0
        self.misses = 0
        self.refreshes = 0
        self._data: dict[Any, tuple[Any, float, float, Any]] = {}
        self._refreshing: set[Any] = set()
        self._lock = threading.Lock()

    def get(
        self, key: Any, version: Any, compute: Callable[[Any], Any], conn: Any
    ) -> tuple[Any, float]:
        """``(value, computed_at)`` (epoch seconds) for ``key`` at ``version``.

        ``compute(conn)`` builds the value; it must only read through ``conn`` (it may
        run later in another thread with another connection).
        """
        now = time.monotonic()
        with self._lock:
            entry = self._data.get(key)
        if entry is not None and (entry[0] == version or now - entry[1] < self.ttl):
            self.hits += 1
            return entry[3], entry[2]
        if entry is not None and self.refresher is not None:
            self._refresh(key, version, compute)
            self.hits += 1
            return entry[3], entry[2]
        self.misses += 1
        value = compute(conn)
        self._store(key, version, now, value)
        return value, time.time()

    def _refresh(self, key: Any, version: Any, compute: Callable[[Any], Any]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def job(conn: Any) -> None:
            try:
                started = time.monotonic()
                self._store(key, version, started, compute(conn))
                self.refreshes += 1
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        try:
            self.refresher(job)  # type: ignore[misc]
        except Exception:
            with self._lock:
                self._refreshing.discard(key)
            raise

    def _store(self, key: Any, version: Any, at: float, value: Any) -> None:
        with self._lock:
            if key not in self._data and len(self._data) >= self.max_entries:
                oldest = min(self._data, key=lambda k: self._data[k][1])
                del self._data[oldest]
            self._data[key] = (version, at, time.time(), value)

    def peek(self, key: Any, version: Any) -> Any:
        """The value stored for ``key`` at exactly ``version``, or None."""
        with self._lock:
            entry = self._data.get(key)
        return entry[3] if entry is not None and entry[0] == version else None

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def campaign_version(conn: Any, org_id: int, campaign: Campaign) -> tuple:
    """What the figures of a campaign depend on, read cheaply (a few milliseconds).

    The last tracking event id (an index on ``(campaign_id, id)``), the answers' count
    and last change, the visits it brought, its delivery outcomes and its status.
    """
    cid = campaign.id
    last_event = conn.execute(
        select(func.max(TrackingEvent.id)).where(TrackingEvent.campaign_id == cid)
    ).scalar()
    answered = conn.execute(
        select(func.count(), func.max(Answer.updated_at)).where(Answer.campaign_id == cid)
    ).one()
    visits = conn.execute(stats_sql.site_visits_query(org_id, cid)).scalar()
    statuses = sorted(
        (str(s), int(n)) for s, n in conn.execute(stats_sql.delivery_status_query(org_id, cid))
    )
    return (
        last_event,
        int(answered[0]),
        str(answered[1]),
        int(visits or 0),
        tuple(statuses),
        campaign.status,
        str(campaign.started_at),
    )


def _body_version(conn: Any, org_id: int) -> tuple:
    """What a body's campaign summaries depend on: its campaigns, their last event ids
    (one index probe per campaign), its deliveries."""
    last = (
        select(func.max(TrackingEvent.id))
        .where(TrackingEvent.campaign_id == Campaign.id)
        .correlate(Campaign)
        .scalar_subquery()
    )
    campaigns = conn.execute(
        select(func.count(), func.max(Campaign.updated_at), func.max(last)).where(
            Campaign.organisation_id == org_id
        )
    ).one()
    deliveries = conn.execute(
        select(func.count(), func.max(Delivery.sent_at)).where(Delivery.organisation_id == org_id)
    ).one()
    return (*(str(v) for v in campaigns), int(deliveries[0]), str(deliveries[1]))


def _campaign_of(conn: Any, org_id: int, campaign_id: int) -> Campaign | None:
    return conn.execute(
        select(Campaign).where(Campaign.organisation_id == org_id, Campaign.id == campaign_id)
    ).scalar()


def contract_stats(
    conn: Any, org_id: int, campaign_id: int, *, cache: ReportCache | None = None
) -> dict[str, Any] | None:
    """The body of ``GET /campaigns/{id}/stats``; None when not this body's campaign.

    ``conn`` is a Session (the campaign is loaded as an object). With ``cache``, a report
    of the page computed at the same version is reused, else the stats are cached.
    """
    campaign = _campaign_of(conn, org_id, campaign_id)
    if campaign is None:
        return None
    options = poll_options(campaign)

    def compute(c: Any) -> dict[str, Any] | None:
        return stats_sql.campaign_stats(c, org_id, campaign_id, poll_options=options)

    if cache is None:
        stats = compute(conn)
    else:
        version = campaign_version(conn, org_id, campaign)
        report = cache.peek(("report", org_id, campaign_id, tuple(options)), version)
        if report is not None:
            stats = report.stats
        else:
            key = ("stats", org_id, campaign_id, tuple(options))
            stats, _ = cache.get(key, version, compute, conn)
    return None if stats is None else reports.contract_stats(stats)


def campaign_summaries(conn: Any, org_id: int, cache: ReportCache | None = None) -> pd.DataFrame:
    """``stats_sql.campaign_summaries`` of the body, cached like the reports (a copy)."""
    if cache is None:
        return stats_sql.campaign_summaries(conn, org_id)
    frame, _ = cache.get(
        ("summaries", org_id),
        _body_version(conn, org_id),
        lambda c: stats_sql.campaign_summaries(c, org_id),
        conn,
    )
    return frame.copy()


@lru_cache(maxsize=1)
def _baseline_rows() -> dict[str, dict[str, Any]]:
    """The 2010 table, read once (the benchmark area owns and validates the file)."""
    try:
        text = BASELINE_FILE.read_text(encoding="utf-8-sig")
    except OSError:
        return {}
    out = {}
    for row in csv.DictReader(text.splitlines()):
        try:
            value = float(str(row.get("value_pct", "")).replace(",", "."))
        except ValueError:
            continue
        out[row["indicator"]] = {
            "indicator": row["indicator"],
            "label": row.get("label_fr", ""),
            "label_en": row.get("label_en", ""),
            "value_pct": value,
            "qualifier": row.get("qualifier", "exact") or "exact",
        }
    return out


def sector_references() -> dict[str, dict[str, Any]]:
    """``{figure: 2010 reference row}`` for the figures the study speaks about."""
    rows = _baseline_rows()
    return {fig: rows[ind] for fig, ind in SECTOR_INDICATORS.items() if ind in rows}


# --------------------------------------------------------------------------- one campaign


@dataclass
class CampaignPage:
    """Everything the campaign performance page shows (and its exports)."""

    campaign: Campaign
    policy: str
    report: reports.CampaignReport
    comparison: dict[str, dict[str, Any]]
    sector: dict[str, dict[str, Any]]
    heat: list[dict[str, Any]]
    poll_question: str
    poll_rows: list[dict[str, Any]]
    event: EventInfo | None
    attendees: list[dict[str, Any]] | None
    previous_campaigns: int = 0
    notes: list[str] = field(default_factory=list)
    computed_at: dt.datetime | None = None

    @property
    def stats(self) -> dict[str, Any]:
        return self.report.stats

    def timeline_rows(self) -> list[dict[str, Any]]:
        """Hour-by-hour human opens and clicks over the first 7 days (168 rows)."""
        tl = self.report.timeline
        return [
            {
                "hour": int(r.hour),
                "at": None if pd.isna(r.at) else pd.Timestamp(r.at).to_pydatetime(),
                "opens": int(r.opens),
                "clicks": int(r.clicks),
            }
            for r in tl.itertuples(index=False)
        ]

    def daily_rows(self) -> list[dict[str, Any]]:
        """The timeline summed per day (the accessible table beside the chart)."""
        rows = self.timeline_rows()
        out = []
        for day in range(0, len(rows), 24):
            chunk = rows[day : day + 24]
            out.append(
                {
                    "day": day // 24 + 1,
                    "at": chunk[0]["at"],
                    "opens": sum(r["opens"] for r in chunk),
                    "clicks": sum(r["clicks"] for r in chunk),
                }
            )
        return out

    def chart_data(self) -> dict[str, Any]:
        """The JSON block the charts script reads (no markup: data only)."""
        tl = self.timeline_rows()
        devices = reports.records(self.report.devices)
        return {
            "timeline": {
                "labels": [r["hour"] for r in tl],
                "opens": [r["opens"] for r in tl],
                "clicks": [r["clicks"] for r in tl],
            },
            "devices": {
                "labels": [d["device_class"] for d in devices],
                "counts": [d["count"] for d in devices],
            },
            "links": {
                "labels": [f"{h['number']}. {h['label'] or h['url']}"[:80] for h in self.heat],
                "clicks": [h["clicks_unique"] for h in self.heat],
            },
        }


def _previous_site_visits(conn: Any, org_id: int) -> dict[int, int]:
    rows = conn.execute(
        select(SiteHit.campaign_id, func.count())
        .where(
            SiteHit.organisation_id == org_id,
            SiteHit.campaign_id.is_not(None),
            SiteHit.is_new_visit.is_(True),
        )
        .group_by(SiteHit.campaign_id)
    ).all()
    return {int(c): int(n) for c, n in rows}


def _heat(conn: Any, org_id: int, campaign_id: int, links: pd.DataFrame) -> list[dict[str, Any]]:
    """Links in message order (``link_N`` = N-th by id) with a heat level for the map."""
    order = [
        int(i)
        for i in conn.execute(
            select(CampaignLink.id)
            .where(CampaignLink.organisation_id == org_id, CampaignLink.campaign_id == campaign_id)
            .order_by(CampaignLink.id)
        ).scalars()
    ]
    by_id = {int(r["link_id"]): r for r in links.to_dict("records")}
    top = max((int(r["clicks_unique"]) for r in by_id.values()), default=0)
    total = sum(int(r["clicks_unique"]) for r in by_id.values())
    out = []
    for n, link_id in enumerate(order, 1):
        row = by_id.get(link_id)
        if row is None:
            continue
        clicks = int(row["clicks_unique"])
        level = 0 if not top or not clicks else max(1, round(HEAT_LEVELS * clicks / top))
        out.append(
            {
                "number": n,
                "link_id": link_id,
                "url": str(row["url"]),
                "label": str(row.get("label") or ""),
                "clicks_unique": clicks,
                "clicks_total": int(row["clicks_total"]),
                "share": clicks / total if total else None,
                "level": level,
            }
        )
    return out


def campaign_page(
    conn: Any,
    org_id: int,
    campaign_id: int,
    *,
    with_attendees: bool = True,
    cache: ReportCache | None = None,
) -> CampaignPage | None:
    """The performance page of one campaign of ``org_id``; None when it is not theirs.

    ``conn`` is a Session. With ``cache``, the event aggregates come from it when the
    campaign has not changed (see :class:`ReportCache`).
    """
    campaign = _campaign_of(conn, org_id, campaign_id)
    if campaign is None:
        return None
    policy = (
        conn.execute(select(Organisation.tracking_policy).where(Organisation.id == org_id)).scalar()
        or TrackingPolicy.AGGREGATE
    )
    options = poll_options(campaign)

    def compute(c: Any) -> reports.CampaignReport | None:
        return stats_sql.campaign_report(
            c, org_id, campaign_id, poll_options=options, with_comparison=False
        )

    computed_at = time.time()
    if cache is None:
        cached = compute(conn)
    else:
        version = campaign_version(conn, org_id, campaign)
        key = ("report", org_id, campaign_id, tuple(options))
        cached, computed_at = cache.get(key, version, compute, conn)
    assert cached is not None
    report = dataclasses.replace(cached)  # the cached one stays as it was
    summaries = campaign_summaries(conn, org_id, cache)
    visits = _previous_site_visits(conn, org_id)
    summaries["site_visits"] = summaries["campaign_id"].map(visits).fillna(0).astype("int64")
    # Site visits of campaigns that delivered nothing say nothing about habits.
    summaries.loc[summaries["delivered"] <= 0, "site_visits"] = float("nan")
    stats = report.stats
    comparison = reports.compare_with_previous(
        stats,
        summaries,
        before=campaign.started_at,
        exclude_campaign_id=campaign_id,
        fields=COMPARED_FIELDS,
    )
    report.comparison = comparison
    previous = max((c["campaigns"] for c in comparison.values()), default=0)
    heat = _heat(conn, org_id, campaign_id, report.links)
    poll_total = sum(stats["poll"].values())
    poll_rows = [
        {"option": k, "count": v, "share": v / poll_total if poll_total else None}
        for k, v in stats["poll"].items()
    ]
    block = answers.poll_block(campaign)
    event = answers.event_of(campaign)
    attendee_rows = None
    if with_attendees and event is not None and answers.attendees_visible(policy):
        attendee_rows = answers.attendees(org_id, campaign_id)
    notes = []
    if policy == TrackingPolicy.OFF:
        notes.append(
            N_(
                "La mesure est désactivée pour cet organisme : ni pixel ni lien de suivi "
                "dans les e-mails, seules les réponses et les désinscriptions sont comptées."
            )
        )
    elif policy == TrackingPolicy.AGGREGATE:
        notes.append(
            N_(
                "Mesure anonyme : les ouvertures et les clics sont comptés sans savoir qui les "
                "a faits."
            )
        )
    return CampaignPage(
        campaign=campaign,
        policy=str(policy),
        report=report,
        comparison=comparison,
        sector=sector_references(),
        heat=heat,
        poll_question=str(block.get("question") or "") if block else "",
        poll_rows=poll_rows,
        event=event,
        attendees=attendee_rows,
        previous_campaigns=previous,
        notes=notes,
        computed_at=dt.datetime.fromtimestamp(computed_at, tz=dt.UTC),
    )


# --------------------------------------------------------------------------- the body


@dataclass
class BodyDashboard:
    """The body's Statistiques page."""

    summaries: pd.DataFrame
    rates: list[dict[str, Any]]
    growth: pd.DataFrame
    sources: list[dict[str, Any]]
    best_subjects: list[dict[str, Any]]
    traffic: pd.DataFrame
    traffic_start: dt.date
    traffic_end: dt.date
    sector: dict[str, dict[str, Any]]
    medians: dict[str, float | None]
    top_pages: list[dict[str, Any]] = field(default_factory=list)
    top_referrers: list[dict[str, Any]] = field(default_factory=list)
    other_utm: list[dict[str, Any]] = field(default_factory=list)

    def campaign_rows(self) -> list[dict[str, Any]]:
        """Sent campaigns, most recent first, for the table of campaigns."""
        frame = self.summaries[self.summaries["started_at"].notna()]
        frame = frame.sort_values("started_at", ascending=False)
        return reports.records(frame)

    def traffic_totals(self) -> dict[str, int]:
        t = self.traffic
        return {
            c: int(t[c].sum()) if len(t) else 0
            for c in ("page_views", "visits", "visitors", "campaign_visits")
        }

    def chart_data(self) -> dict[str, Any]:
        rates = self.rates
        growth = reports.records(self.growth)
        traffic = self.traffic
        return {
            "rates": {
                "labels": [
                    (r["started_at"] or "")[:10] + " " + (r.get("subject") or "")[:30]
                    for r in rates
                ],
                "open_rate": [_pct(r.get("open_rate")) for r in rates],
                "click_rate": [_pct(r.get("click_rate")) for r in rates],
                "click_to_open": [_pct(r.get("click_to_open")) for r in rates],
            },
            "growth": {
                "labels": [g["month"] for g in growth],
                "gains": [g["gains"] for g in growth],
                "losses": [-g["losses"] for g in growth],
                "total": [g["total"] for g in growth],
            },
            "sources": {
                "labels": [s["source"] for s in self.sources],
                "counts": [s["count"] for s in self.sources],
            },
            "traffic": {
                "labels": [str(d) for d in traffic["day"]] if len(traffic) else [],
                "visits": [int(v) for v in traffic["visits"]] if len(traffic) else [],
                "campaign_visits": [int(v) for v in traffic["campaign_visits"]]
                if len(traffic)
                else [],
            },
        }


def _pct(value: Any) -> float | None:
    return None if value is None else round(float(value) * 100, 2)


def _top(conn: Any, org_id: int, column: Any, start: dt.date, limit: int, *extra: Any) -> list:
    lo = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    n = func.count().label("n")
    rows = conn.execute(
        select(column, n)
        .where(SiteHit.organisation_id == org_id, SiteHit.created_at >= lo, column != "", *extra)
        .group_by(column)
        .order_by(n.desc(), column)
        .limit(limit)
    ).all()
    return [{"value": str(v), "count": int(c)} for v, c in rows]


def body_dashboard(
    conn: Any,
    org_id: int,
    *,
    today: dt.date | None = None,
    days: int = 30,
    cache: ReportCache | None = None,
) -> BodyDashboard:
    """The body's figures: campaigns over time, lists, sources, subjects, site traffic."""
    today = today or dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=days - 1)
    summaries = campaign_summaries(conn, org_id, cache)
    medians = {}
    sent = summaries[summaries["delivered"] > 0]
    for name in reports.RATE_FIELDS:
        values = pd.to_numeric(sent[name], errors="coerce").dropna()
        medians[name] = float(values.median()) if len(values) else None
    return BodyDashboard(
        summaries=summaries,
        rates=reports.rates_over_time(summaries),
        growth=stats_sql.list_growth(conn, org_id),
        sources=stats_sql.consent_sources(conn, org_id),
        best_subjects=reports.best_subjects(summaries, min_recipients=20, limit=5),
        traffic=stats_sql.site_traffic(conn, org_id, start, today),
        traffic_start=start,
        traffic_end=today,
        sector=sector_references(),
        medians=medians,
        top_pages=_top(conn, org_id, SiteHit.path, start, 10),
        top_referrers=_top(conn, org_id, SiteHit.referrer_host, start, 10, SiteHit.is_new_visit),
        # Campaign names of other tools (newsletters sent elsewhere, social posts…).
        other_utm=_top(
            conn,
            org_id,
            SiteHit.utm_campaign,
            start,
            10,
            SiteHit.is_new_visit,
            SiteHit.campaign_id.is_(None),
        ),  # fmt: skip
    )


def source_labels() -> Mapping[str, str]:
    """French names of consent sources (msgids, ``N_``), for tables and charts."""
    return {
        "web_form": N_("formulaire du site"),
        "event_signup": N_("inscription à un événement"),
        "internal_file": N_("fichier interne"),
        "directory": N_("annuaire"),
        "exchanged": N_("échangé avec un autre organisme"),
        "purchased": N_("fichier acheté"),
        "unknown": N_("origine inconnue"),
        "api": "API",
    }
