"""The figures of ``analytics.reports``, aggregated by the database.

A campaign with a million events must not be loaded into memory to show its page: the
queries here group and count in SQL (SQLAlchemy Core, SQLite and PostgreSQL) and return
a few hundred rows at most. Each ``*_query`` function builds a ``Select``; the functions
without the suffix run it on a ``Connection`` or ``Session`` and shape the result with
the same code ``reports`` uses, so both paths give the same numbers by construction
(and ``tests/integration/analytics/test_stats_sql.py`` checks they do).

Unique recipients are counted in one pass: the events of a campaign are grouped by
recipient (see ``reports.recipient_ids``) with one flag per measure, then the flags are
summed. Events without any recipient form the NULL group, where every event counts.
Every query is filtered by ``organisation_id`` first.

In the default counting mode those per-recipient flags are already stored, one row per
recipient, by ``analytics.rollup`` as events are written: for a campaign whose rollup
accounts for all its events (``rollup.covered``), the unique counts and the device split
are sums over that table (``rollup_*_query``) instead of a grouping of every event. The
link and timeline figures still read the events (through the campaign indexes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import (
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.sql.elements import ColumnElement

from analytics import reports, rollup
from analytics.models import Answer, EventKind, RecipientActivity, SiteHit, TrackingEvent
from campaigns.models import Campaign, CampaignLink, Delivery
from contacts.models import RISKY_SOURCES, Subscription

__all__ = [
    "answers_query",
    "campaign_report",
    "campaign_stats",
    "campaign_summaries",
    "consent_sources",
    "delivery_status_query",
    "device_query",
    "event_counts_query",
    "link_clicks_query",
    "list_growth",
    "recipient_columns",
    "rollup_counts_query",
    "rollup_device_query",
    "site_traffic",
    "site_traffic_query",
    "site_visits_query",
    "timeline_query",
]

EV = TrackingEvent.__table__
RA = RecipientActivity.__table__
DL = Delivery.__table__
LK = CampaignLink.__table__
AN = Answer.__table__
SH = SiteHit.__table__
CP = Campaign.__table__
SB = Subscription.__table__

_OPENISH = (EventKind.OPEN.value, EventKind.CLICK.value)


def recipient_columns(mode: str | None = None) -> list[ColumnElement[Any]]:
    """The SQL columns naming an event's recipient, as ``reports.recipient_ids`` does.

    All NULL means unknown. Two plain columns rather than one concatenated string, so
    grouping costs no string building.
    """
    key = case((EV.c.recipient_key != "", EV.c.recipient_key), else_=null())
    if mode == "aggregate":
        return [key.label("who_key")]
    if mode == "per_contact":
        return [EV.c.delivery_id.label("who_delivery")]
    if mode not in (None, "auto"):
        raise ValueError(f"unknown counting mode {mode!r}")
    delivery = case((EV.c.recipient_key == "", EV.c.delivery_id), else_=null())
    return [key.label("who_key"), delivery.label("who_delivery")]


def _unknown(columns: Sequence[Any]) -> ColumnElement[bool]:
    return and_(*(c.is_(None) for c in columns))


def _known(columns: Sequence[Any]) -> ColumnElement[bool]:
    return or_(*(c.is_not(None) for c in columns))


def _human() -> ColumnElement[bool]:
    return not_(EV.c.is_machine)


def _measures() -> dict[str, ColumnElement[bool]]:
    kind = EV.c.kind
    return {
        "opens_unique": and_(kind.in_(_OPENISH), _human()),
        "opens_any": kind.in_(_OPENISH),
        "opens_pixel_unique": and_(kind == EventKind.OPEN.value, _human()),
        "clicks_unique": and_(kind == EventKind.CLICK.value, _human()),
        "clicks_any": kind == EventKind.CLICK.value,
        "unsubscribes": kind == EventKind.UNSUBSCRIBE.value,
        "bounces": kind == EventKind.BOUNCE.value,
        "complaints": kind == EventKind.COMPLAINT.value,
        "web_views": and_(kind == EventKind.WEB_VIEW.value, _human()),
    }


def event_counts_query(
    org_id: int,
    campaign_id: int | None = None,
    mode: str | None = None,
    dialect: str = "",
    campaign_ids: Sequence[int] | None = None,
) -> Select[Any]:
    """Unique counts of ``reports.event_counts``: one row, or one per campaign if no id.

    Events are grouped by recipient (an event without one is its own group, keyed by its
    id); each group says which measures it reached, and the outer query sums them. In
    PostgreSQL a group's measures are one ``bit_or`` of per-event bit masks, about four
    times faster than one ``MAX`` per measure (the portable form used elsewhere).
    """
    who = recipient_columns(mode)
    alone = case((_unknown(who), EV.c.id), else_=null()).label("who_event")
    group: list[Any] = [*who, alone]
    if campaign_id is None:
        group.insert(0, EV.c.campaign_id)
    measures = _measures()
    click_h = func.sum(case((measures["clicks_unique"], 1), else_=0)).label("clicks_n")
    if dialect == "postgresql":
        mask = sum(
            (case((cond, 1 << bit), else_=0) for bit, cond in enumerate(measures.values())),
            start=literal(0),
        )
        flags = [func.bit_or(mask).label("mask"), click_h]
    else:
        flags = [func.max(case((c, 1), else_=0)).label(n) for n, c in measures.items()]
        flags.append(click_h)
    inner = select(*group, *flags).where(EV.c.organisation_id == org_id)
    if campaign_id is not None:
        inner = inner.where(EV.c.campaign_id == campaign_id)
    if campaign_ids is not None:
        inner = inner.where(EV.c.campaign_id.in_(sorted(campaign_ids)))
    sub = inner.group_by(*group).subquery()
    outer: list[Any] = []
    for bit, name in enumerate(measures):
        if dialect == "postgresql":
            reached = case((sub.c.mask.op("&")(1 << bit) != 0, 1), else_=0)
        else:
            reached = sub.c[name]
        outer.append(func.coalesce(func.sum(reached), 0).label(name))
    outer.append(func.coalesce(func.sum(sub.c.clicks_n), 0).label("clicks_total"))
    if campaign_id is None:
        return select(sub.c.campaign_id, *outer).group_by(sub.c.campaign_id)
    return select(*outer)


def _uses_rollup(mode: str | None) -> bool:
    return mode in (None, "auto")


def rollup_counts_query(
    org_id: int, campaign_id: int | None = None, campaign_ids: Sequence[int] | None = None
) -> Select[Any]:
    """``event_counts_query`` (mode "auto") read from the per-recipient rollup.

    Each ``RecipientActivity`` row is one group of ``event_counts_query`` with its flags
    already computed, so the figures are sums over at most one row per recipient. Only
    right for campaigns ``rollup.covered`` says are complete.
    """
    sums = [func.coalesce(func.sum(RA.c[name]), 0).label(name) for name in _measures()]
    sums.append(func.coalesce(func.sum(RA.c.clicks_total), 0).label("clicks_total"))
    query = select(*sums).where(RA.c.organisation_id == org_id)
    if campaign_id is not None:
        return query.where(RA.c.campaign_id == campaign_id)
    if campaign_ids is not None:
        query = query.where(RA.c.campaign_id.in_(sorted(campaign_ids)))
    return query.add_columns(RA.c.campaign_id).group_by(RA.c.campaign_id)


def rollup_device_query(org_id: int, campaign_id: int) -> Select[Any]:
    """``device_query`` (mode "auto") from the rollup: each row's first human event."""
    return (
        select(RA.c.device_class, RA.c.client_family, func.count().label("count"))
        .where(
            RA.c.organisation_id == org_id,
            RA.c.campaign_id == campaign_id,
            RA.c.first_human_id.is_not(None),
        )
        .group_by(RA.c.device_class, RA.c.client_family)
    )


def delivery_status_query(org_id: int, campaign_id: int) -> Select[Any]:
    """``(status, count)`` of a campaign's delivery rows."""
    return (
        select(DL.c.status, func.count().label("n"))
        .where(DL.c.organisation_id == org_id, DL.c.campaign_id == campaign_id)
        .group_by(DL.c.status)
    )


def answers_query(org_id: int, campaign_id: int) -> Select[Any]:
    """``(kind, value, count)`` of a campaign's current RSVP and poll answers."""
    return (
        select(AN.c.kind, AN.c.value, func.count().label("n"))
        .where(AN.c.organisation_id == org_id, AN.c.campaign_id == campaign_id)
        .group_by(AN.c.kind, AN.c.value)
    )


def site_visits_query(org_id: int, campaign_id: int) -> Select[Any]:
    """The number of website visits a campaign brought (new visits attributed to it)."""
    return select(func.count()).where(
        SH.c.organisation_id == org_id,
        SH.c.campaign_id == campaign_id,
        SH.c.is_new_visit,
    )


def link_clicks_query(org_id: int, campaign_id: int, mode: str | None = None) -> Select[Any]:
    """Every stored link of a campaign with its human ``clicks_unique`` and ``clicks_total``."""
    who = recipient_columns(mode)
    per_who = (
        select(EV.c.link_id, *who, func.count().label("n"))
        .where(
            EV.c.organisation_id == org_id,
            EV.c.campaign_id == campaign_id,
            EV.c.kind == EventKind.CLICK.value,
            _human(),
            EV.c.link_id.is_not(None),
        )
        .group_by(EV.c.link_id, *who)
        .subquery()
    )
    unknown = _unknown([per_who.c[c.name] for c in who])
    per_link = (
        select(
            per_who.c.link_id,
            func.sum(case((unknown, per_who.c.n), else_=1)).label("uniq"),
            func.sum(per_who.c.n).label("total"),
        )
        .group_by(per_who.c.link_id)
        .subquery()
    )
    clicks_unique = func.coalesce(per_link.c.uniq, 0).label("clicks_unique")
    clicks_total = func.coalesce(per_link.c.total, 0).label("clicks_total")
    return (
        select(LK.c.id.label("link_id"), LK.c.url, LK.c.label, clicks_unique, clicks_total)
        .select_from(LK.outerjoin(per_link, per_link.c.link_id == LK.c.id))
        .where(LK.c.organisation_id == org_id, LK.c.campaign_id == campaign_id)
        .order_by(clicks_unique.desc(), clicks_total.desc(), LK.c.id)
    )


def device_query(
    org_id: int, campaign_id: int, mode: str | None = None, dialect: str = ""
) -> Select[Any]:
    """``(device_class, client_family, count)`` of people's first human open or click.

    The first event per person is found with ``DISTINCT ON`` in PostgreSQL, SQLite's
    bare columns beside ``MIN(id)`` in SQLite, and ``id IN (SELECT MIN(id) …)`` elsewhere.
    """
    who = recipient_columns(mode)
    base = and_(
        EV.c.organisation_id == org_id,
        EV.c.campaign_id == campaign_id,
        EV.c.kind.in_(_OPENISH),
        _human(),
    )
    pair = (EV.c.device_class, EV.c.client_family)
    if dialect == "postgresql":
        keyed = (
            select(*pair).where(base, _known(who)).ext(distinct_on(*who)).order_by(*who, EV.c.id)
        )
    elif dialect == "sqlite":
        # SQLite documents that bare columns come from the row holding the MIN().
        keyed = (
            select(func.min(EV.c.id).label("first_id"), *pair)
            .where(base, _known(who))
            .group_by(*who)
        )
    else:
        first_ids = select(func.min(EV.c.id)).where(base, _known(who)).group_by(*who)
        keyed = select(*pair).where(EV.c.id.in_(first_ids))
    keyed_sub = keyed.subquery()
    keyless = select(*pair).where(base, _unknown(who))
    both = union_all(
        select(keyed_sub.c.device_class, keyed_sub.c.client_family), keyless
    ).subquery()
    return select(both.c.device_class, both.c.client_family, func.count().label("count")).group_by(
        both.c.device_class, both.c.client_family
    )


def _epoch(column: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    if dialect == "postgresql":
        return func.extract("epoch", column)
    raise NotImplementedError(f"no epoch expression for {dialect}")


def timeline_query(
    org_id: int,
    campaign_id: int,
    started_at: dt.datetime,
    dialect: str,
    hours: int = reports.TIMELINE_HOURS,
) -> Select[Any]:
    """``(hour, kind, count)`` of human opens and clicks in each hour since the start."""
    start = started_at if started_at.tzinfo else started_at.replace(tzinfo=dt.UTC)
    start_epoch = int(start.timestamp())
    hour = func.floor((_epoch(EV.c.created_at, dialect) - start_epoch) / 3600.0)
    if dialect == "sqlite":  # SQLite has no floor() before 3.35; offsets are >= 0 here
        hour = cast((_epoch(EV.c.created_at, dialect) - start_epoch) / 3600, Integer)
    hour = hour.label("hour")
    return (
        select(hour, EV.c.kind, func.count().label("n"))
        .where(
            EV.c.organisation_id == org_id,
            EV.c.campaign_id == campaign_id,
            EV.c.kind.in_(_OPENISH),
            _human(),
            EV.c.created_at >= start,
            EV.c.created_at < start + dt.timedelta(hours=hours),
        )
        .group_by(hour, EV.c.kind)
    )


def _dialect(conn: Any) -> str:
    bind = conn.get_bind() if hasattr(conn, "get_bind") else conn
    return bind.dialect.name


def _campaign_row(conn: Any, org_id: int, campaign_id: int) -> Any:
    return conn.execute(
        select(CP.c.id, CP.c.status, CP.c.started_at).where(
            CP.c.organisation_id == org_id, CP.c.id == campaign_id
        )
    ).first()


def _links_frame(conn: Any, org_id: int, campaign_id: int, mode: str | None) -> pd.DataFrame:
    rows = conn.execute(link_clicks_query(org_id, campaign_id, mode)).all()
    frame = pd.DataFrame(rows, columns=["link_id", "url", "label", "clicks_unique", "clicks_total"])
    return frame.astype({"link_id": "int64", "clicks_unique": "int64", "clicks_total": "int64"})


def _stats(
    conn: Any,
    org_id: int,
    campaign_id: int,
    status: str,
    mode: str | None,
    poll_options: Sequence[str] | None,
    links: pd.DataFrame,
    from_rollup: bool = False,
) -> dict[str, Any]:
    statuses = dict(conn.execute(delivery_status_query(org_id, campaign_id)).all())
    if from_rollup:
        query = rollup_counts_query(org_id, campaign_id)
    else:
        query = event_counts_query(org_id, campaign_id, mode, _dialect(conn))
    counts = {k: int(v) for k, v in conn.execute(query).one()._mapping.items()}
    answer_rows = conn.execute(answers_query(org_id, campaign_id)).all()
    rsvp, poll = reports.answer_tallies(answer_rows, poll_options)
    visits = conn.execute(site_visits_query(org_id, campaign_id)).scalar_one()
    return reports.build_stats(
        statuses,
        counts,
        status=status,
        rsvp=rsvp,
        poll=poll,
        site_visits=visits,
        links=links[["url", "clicks_unique"]].to_dict("records"),
    )


def campaign_stats(
    conn: Any,
    org_id: int,
    campaign_id: int,
    *,
    mode: str | None = None,
    poll_options: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """The stats dict of ``reports.build_stats`` for one campaign; None if not this body's.

    ``reports.contract_stats`` of it is the body of ``GET /campaigns/{id}/stats``.
    """
    row = _campaign_row(conn, org_id, campaign_id)
    if row is None:
        return None
    links = _links_frame(conn, org_id, campaign_id, mode)
    fast = _rollup_covers(conn, campaign_id, mode)
    return _stats(conn, org_id, campaign_id, row.status, mode, poll_options, links, fast)


def _rollup_covers(conn: Any, campaign_id: int, mode: str | None) -> bool:
    """Whether the campaign's unique figures can be read from the rollup (checked once)."""
    return _uses_rollup(mode) and bool(rollup.covered(conn, [campaign_id]))


def campaign_report(
    conn: Any,
    org_id: int,
    campaign_id: int,
    *,
    mode: str | None = None,
    poll_options: Sequence[str] | None = None,
    with_comparison: bool = True,
) -> reports.CampaignReport | None:
    """The whole ``reports.CampaignReport`` of one campaign, from SQL aggregates."""
    row = _campaign_row(conn, org_id, campaign_id)
    if row is None:
        return None
    links = _links_frame(conn, org_id, campaign_id, mode)
    fast = _rollup_covers(conn, campaign_id, mode)
    stats = _stats(conn, org_id, campaign_id, row.status, mode, poll_options, links, fast)
    if fast:
        devices_q = rollup_device_query(org_id, campaign_id)
    else:
        devices_q = device_query(org_id, campaign_id, mode, _dialect(conn))
    device_rows = conn.execute(devices_q).all()
    devices, clients = reports.split_from_counts(
        pd.DataFrame(device_rows, columns=["device_class", "client_family", "count"])
    )
    tl = reports.timeline(None, row.started_at)
    if row.started_at is not None:
        q = timeline_query(org_id, campaign_id, row.started_at, _dialect(conn))
        for hour, kind, n in conn.execute(q).all():
            column = "opens" if kind == EventKind.OPEN.value else "clicks"
            tl.loc[int(hour), column] = int(n)
    report = reports.CampaignReport(stats, links, devices, clients, tl)
    if with_comparison:
        previous = campaign_summaries(conn, org_id, mode=mode)
        report.comparison = reports.compare_with_previous(
            stats, previous, before=row.started_at, exclude_campaign_id=campaign_id
        )
    return report


def campaign_summaries(conn: Any, org_id: int, *, mode: str | None = None) -> pd.DataFrame:
    """``reports.campaign_summaries`` for every campaign of a body, from SQL aggregates."""
    campaigns = conn.execute(
        select(CP.c.id, CP.c.name, CP.c.subject, CP.c.started_at).where(
            CP.c.organisation_id == org_id
        )
    ).all()
    out = pd.DataFrame(
        {
            "campaign_id": pd.Series([c.id for c in campaigns], dtype="int64"),
            "name": [c.name or "" for c in campaigns],
            "subject": [c.subject or "" for c in campaigns],
            "started_at": pd.to_datetime(
                pd.Series([c.started_at for c in campaigns], dtype=object), utc=True
            ),
        }
    )
    sent = func.sum(case((DL.c.status == "sent", 1), else_=0))
    per_delivery = conn.execute(
        select(DL.c.campaign_id, func.count(), sent)
        .where(DL.c.organisation_id == org_id)
        .group_by(DL.c.campaign_id)
    ).all()
    recipients = {r[0]: int(r[1]) for r in per_delivery}
    delivered = {r[0]: int(r[2] or 0) for r in per_delivery}
    out["recipients"] = out["campaign_id"].map(recipients).fillna(0).astype("int64")
    out["delivered"] = out["campaign_id"].map(delivered).fillna(0).astype("int64")
    fast = rollup.covered(conn, list(out["campaign_id"])) if _uses_rollup(mode) else set()
    slow = [int(c) for c in out["campaign_id"] if int(c) not in fast]
    rows = []
    if fast:
        rows += conn.execute(rollup_counts_query(org_id, campaign_ids=sorted(fast))).mappings()
    if slow or not _uses_rollup(mode):
        ids = None if not _uses_rollup(mode) else slow
        scan = event_counts_query(org_id, None, mode, _dialect(conn), campaign_ids=ids)
        rows += conn.execute(scan).mappings().all()
    counts = pd.DataFrame([dict(r) for r in rows])
    for name in ("opens_unique", "clicks_unique", "unsubscribes"):
        if len(counts):
            series = counts.set_index("campaign_id")[name]
            out[name] = out["campaign_id"].map(series).fillna(0).astype("int64")
        else:
            out[name] = 0
    return reports.finish_summaries(out)


def _day(column: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.date(column)
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    raise NotImplementedError(f"no day expression for {dialect}")


def site_traffic_query(org_id: int, start: dt.date, end: dt.date, dialect: str) -> Select[Any]:
    """Per UTC day from ``start`` to ``end`` inclusive: the ``site_traffic_daily`` counts."""
    day = _day(SH.c.created_at, dialect).label("day")
    lo = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return (
        select(
            day,
            func.count().label("page_views"),
            func.sum(case((SH.c.is_new_visit, 1), else_=0)).label("visits"),
            func.count(SH.c.visitor_hash.distinct()).label("visitors"),
            func.sum(
                case((and_(SH.c.is_new_visit, SH.c.campaign_id.is_not(None)), 1), else_=0)
            ).label("campaign_visits"),
        )
        .where(SH.c.organisation_id == org_id, SH.c.created_at >= lo, SH.c.created_at < hi)
        .group_by(day)
    )


def site_traffic(conn: Any, org_id: int, start: dt.date, end: dt.date) -> pd.DataFrame:
    """``reports.site_traffic_daily`` for a body from SQL aggregates."""
    rows = conn.execute(site_traffic_query(org_id, start, end, _dialect(conn))).all()
    frame = pd.DataFrame(
        rows, columns=["day", "page_views", "visits", "visitors", "campaign_visits"]
    )
    return reports.fill_days(frame, start, end)


def _month(column: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.strftime("%Y-%m", column)
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    raise NotImplementedError(f"no month expression for {dialect}")


def list_growth(conn: Any, org_id: int) -> pd.DataFrame:
    """``reports.list_growth`` for a body's subscriptions, from SQL aggregates."""
    dialect = _dialect(conn)
    joined = func.coalesce(SB.c.confirmed_at, SB.c.created_at)
    gain_month = _month(joined, dialect).label("month")
    gains = conn.execute(
        select(gain_month, func.count())
        .where(
            SB.c.organisation_id == org_id,
            or_(SB.c.status != "pending", SB.c.confirmed_at.is_not(None)),
        )
        .group_by(gain_month)
    ).all()
    loss_month = _month(SB.c.withdrawn_at, dialect).label("month")
    losses = conn.execute(
        select(loss_month, func.count())
        .where(SB.c.organisation_id == org_id, SB.c.withdrawn_at.is_not(None))
        .group_by(loss_month)
    ).all()
    return reports.growth_table(dict(gains), dict(losses))


def consent_sources(conn: Any, org_id: int) -> list[dict[str, Any]]:
    """``reports.consent_sources`` for a body's active subscriptions, from SQL."""
    rows = conn.execute(
        select(SB.c.source, func.count())
        .where(SB.c.organisation_id == org_id, SB.c.status == "active")
        .group_by(SB.c.source)
    ).all()
    total = sum(int(n) for _, n in rows)
    out = [
        {
            "source": str(src),
            "count": int(n),
            "share": int(n) / total,
            "risky": str(src) in RISKY_SOURCES,
        }
        for src, n in rows
    ]
    return sorted(out, key=lambda r: (-r["count"], r["source"]))
