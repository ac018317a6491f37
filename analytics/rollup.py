"""The per-recipient rollup of tracking events (``RecipientActivity``): keep, check, rebuild.

Unique figures (opens, clicks, device of the first human activity) group a campaign's
events by recipient; for a million events that grouping is the slow part of a report's
first view. So the writer of events (``analytics.tracking.store_hits``, and any ORM
insert of a ``TrackingEvent`` through the listener below) also upserts one row per
recipient and campaign, in the same transaction, with ``INSERT … ON CONFLICT DO UPDATE``
(SQLite ≥ 3.24 and PostgreSQL): flags are OR-ed (greatest), counts added, the first human
event kept by lowest id.

The events stay the source of truth. Rows written by another path (a bulk load with
``COPY``, a test's ``insert``) are not rolled up: :func:`covered` compares the rollup's
``events`` with the campaign's event count in one statement, and ``analytics.stats_sql``
reads the rollup only for campaigns where they match, scanning events otherwise.
:func:`rebuild` recomputes a campaign's rows from its events (after such a load, or
after an update of events, e.g. an erasure that removes their delivery).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    and_,
    case,
    delete,
    event,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from analytics.models import EventKind, RecipientActivity, TrackingEvent

__all__ = ["FLAGS", "covered", "rebuild", "record_events", "recipient_of"]

EV = TrackingEvent.__table__
RA = RecipientActivity.__table__

_OPENISH = (EventKind.OPEN.value, EventKind.CLICK.value)

# Column -> does an event (kind, is_machine) reach it; same as stats_sql._measures().
FLAGS: dict[str, Any] = {
    "opens_unique": lambda k, m: k in _OPENISH and not m,
    "opens_any": lambda k, m: k in _OPENISH,
    "opens_pixel_unique": lambda k, m: k == EventKind.OPEN.value and not m,
    "clicks_unique": lambda k, m: k == EventKind.CLICK.value and not m,
    "clicks_any": lambda k, m: k == EventKind.CLICK.value,
    "unsubscribes": lambda k, m: k == EventKind.UNSUBSCRIBE.value,
    "bounces": lambda k, m: k == EventKind.BOUNCE.value,
    "complaints": lambda k, m: k == EventKind.COMPLAINT.value,
    "web_views": lambda k, m: k == EventKind.WEB_VIEW.value and not m,
}
_KEY = ("campaign_id", "organisation_id", "recipient_key", "delivery_id")


def recipient_of(event_id: int, recipient_key: str | None, delivery_id: int | None) -> tuple:
    """``(recipient_key, delivery_id)`` of the rollup row an event belongs to."""
    if recipient_key:
        return (recipient_key, 0)
    if delivery_id is not None:
        return ("", int(delivery_id))
    return ("", -int(event_id))


def _rows(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One rollup row per recipient of ``events`` (dicts with ``id`` and event columns)."""
    out: dict[tuple, dict[str, Any]] = {}
    for ev in events:
        kind = str(ev["kind"])
        machine = bool(ev.get("is_machine"))
        who = recipient_of(ev["id"], ev.get("recipient_key"), ev.get("delivery_id"))
        key = (int(ev["campaign_id"]), int(ev["organisation_id"]), *who)
        row = out.get(key)
        if row is None:
            row = dict(zip(_KEY, key, strict=True))
            row.update({name: 0 for name in FLAGS})
            row.update(
                events=0,
                clicks_total=0,
                first_human_id=None,
                first_human_at=None,
                device_class="",
                client_family="",
            )
            out[key] = row
        row["events"] += 1
        for name, reached in FLAGS.items():
            if reached(kind, machine):
                row[name] = 1
        if kind == EventKind.CLICK.value and not machine:
            row["clicks_total"] += 1
        if kind in _OPENISH and not machine:
            first = row["first_human_id"]
            if first is None or ev["id"] < first:
                row["first_human_id"] = int(ev["id"])
                row["first_human_at"] = ev.get("created_at")
                row["device_class"] = ev.get("device_class") or "unknown"
                row["client_family"] = (ev.get("client_family") or "")[:40]
    return list(out.values())


# The rollup's columns as written, with their PostgreSQL array type for ``unnest``.
_PG_ARRAYS = {
    "organisation_id": "integer[]",
    "campaign_id": "integer[]",
    "recipient_key": "varchar[]",
    "delivery_id": "bigint[]",
    "events": "integer[]",
    **{name: "smallint[]" for name in FLAGS},
    "clicks_total": "integer[]",
    "first_human_id": "bigint[]",
    "first_human_at": "timestamptz[]",
    "device_class": "varchar[]",
    "client_family": "varchar[]",
}


def _pg_source() -> Any:
    """``SELECT * FROM unnest(:col1::type[], …)``: a whole batch as one row set.

    One statement with one array per column, instead of one ``INSERT`` per row (what an
    ``executemany`` of an ``ON CONFLICT`` statement sends): about ten times cheaper for
    a batch of 500.
    """
    names = list(_PG_ARRAYS)
    arrays = ", ".join(f"CAST(:{n} AS {t})" for n, t in _PG_ARRAYS.items())
    source = text(f"unnest({arrays}) AS batch({', '.join(names)})")
    return select(*(literal_column(f"batch.{n}") for n in names)).select_from(source)


def _upsert(dialect: str) -> Any:
    if dialect == "postgresql":
        stmt = postgresql.insert(RA).from_select(list(_PG_ARRAYS), _pg_source())
    else:
        stmt = sqlite.insert(RA)
    new = stmt.excluded
    old = RA.c
    earlier = and_(
        new.first_human_id.is_not(None),
        (old.first_human_id.is_(None)) | (new.first_human_id < old.first_human_id),
    )
    values: dict[str, Any] = {
        name: case((new[name] > old[name], new[name]), else_=old[name]) for name in FLAGS
    }
    values["events"] = old.events + new.events
    values["clicks_total"] = old.clicks_total + new.clicks_total
    for name in ("first_human_id", "first_human_at", "device_class", "client_family"):
        values[name] = case((earlier, new[name]), else_=old[name])
    return stmt.on_conflict_do_update(index_elements=list(_KEY), set_=values)


def record_events(conn: Any, events: Sequence[dict[str, Any]]) -> int:
    """Fold stored events (dicts with their ``id``) into the rollup; same transaction.

    Returns the number of rollup rows touched (one statement; duplicates within the
    batch are merged first, as ``ON CONFLICT`` may not touch a row twice).
    """
    rows = _rows(events)
    if not rows:
        return 0
    dialect = conn.dialect.name if hasattr(conn, "dialect") else conn.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"no rollup upsert for {dialect}")
    if dialect == "postgresql":
        conn.execute(_upsert(dialect), {n: [r[n] for r in rows] for n in _PG_ARRAYS})
    else:
        conn.execute(_upsert(dialect), rows)
    return len(rows)


@event.listens_for(TrackingEvent, "after_insert")
def _after_orm_insert(mapper: Any, connection: Any, target: TrackingEvent) -> None:
    """An event added through the ORM (an unsubscribe) is rolled up in its flush."""
    record_events(
        connection,
        [
            {
                "id": target.id,
                "organisation_id": target.organisation_id,
                "campaign_id": target.campaign_id,
                "kind": target.kind,
                "is_machine": bool(target.is_machine),
                "recipient_key": target.recipient_key or "",
                "delivery_id": target.delivery_id,
                "device_class": target.device_class or "unknown",
                "client_family": target.client_family or "",
                "created_at": target.created_at,
            }
        ],
    )


def covered(conn: Any, campaign_ids: Sequence[int]) -> set[int]:
    """The campaigns among ``campaign_ids`` whose rollup accounts for every event.

    Both counts come from one statement (one snapshot): the events through the index
    ``ix_tracking_events_campaign_id_id``, the rollup's ``events`` from its unique key.
    """
    ids = sorted({int(c) for c in campaign_ids})
    if not ids:
        return set()
    counted = (
        select(EV.c.campaign_id.label("cid"), func.count().label("n"), literal(0).label("r"))
        .where(EV.c.campaign_id.in_(ids))
        .group_by(EV.c.campaign_id)
    )
    rolled = (
        select(RA.c.campaign_id.label("cid"), literal(0).label("n"), func.sum(RA.c.events))
        .where(RA.c.campaign_id.in_(ids))
        .group_by(RA.c.campaign_id)
    )
    both = counted.union_all(rolled).subquery()
    rows = conn.execute(
        select(both.c.cid, func.sum(both.c.n), func.sum(both.c.r)).group_by(both.c.cid)
    ).all()
    seen = {int(cid): (int(n or 0), int(r or 0)) for cid, n, r in rows}
    return {cid for cid in ids if seen.get(cid, (0, 0))[0] == seen.get(cid, (0, 0))[1]}


def rebuild(org_id: int, campaign_id: int, conn: Any = None) -> int:
    """Recompute a campaign's rollup from its events; returns the rows written.

    ``org_id`` must own the campaign (else nothing happens and 0 is returned); the rows of
    every body's events for the campaign are rebuilt, so :func:`covered` holds after.
    Without ``conn`` it runs and commits on ``db.session``. On PostgreSQL it locks the
    rollup table against writes until the transaction ends (writers of events wait, the
    buffer keeps their hits meanwhile), so no batch is counted twice or missed.
    """
    from campaigns.models import Campaign
    from contacts.db import db

    if conn is None:
        written = rebuild(org_id, campaign_id, db.session.connection())
        db.session.commit()
        return written
    owner = conn.execute(
        select(Campaign.organisation_id).where(Campaign.id == campaign_id)
    ).scalar()
    if owner is None or int(owner) != int(org_id):
        return 0
    if conn.dialect.name == "postgresql":
        # Writers wait until the rebuild commits (their upserts then add their own
        # events), and a batch committed before the lock is in the events read below.
        conn.execute(text(f"LOCK TABLE {RA.name} IN SHARE ROW EXCLUSIVE MODE"))
    conn.execute(delete(RA).where(RA.c.campaign_id == campaign_id))
    key = case((EV.c.recipient_key != "", EV.c.recipient_key), else_="")
    delivery = case(
        (EV.c.recipient_key != "", 0),
        (EV.c.delivery_id.is_not(None), EV.c.delivery_id),
        else_=-EV.c.id,
    )
    kind, human = EV.c.kind, EV.c.is_machine.is_(False)
    conds = {
        "opens_unique": and_(kind.in_(_OPENISH), human),
        "opens_any": kind.in_(_OPENISH),
        "opens_pixel_unique": and_(kind == EventKind.OPEN.value, human),
        "clicks_unique": and_(kind == EventKind.CLICK.value, human),
        "clicks_any": kind == EventKind.CLICK.value,
        "unsubscribes": kind == EventKind.UNSUBSCRIBE.value,
        "bounces": kind == EventKind.BOUNCE.value,
        "complaints": kind == EventKind.COMPLAINT.value,
        "web_views": and_(kind == EventKind.WEB_VIEW.value, human),
    }
    assert conds.keys() == FLAGS.keys()
    first = func.min(case((and_(kind.in_(_OPENISH), human), EV.c.id), else_=null()))
    grouped = (
        select(
            EV.c.campaign_id,
            EV.c.organisation_id,
            key.label("recipient_key"),
            delivery.label("delivery_id"),
            func.count().label("events"),
            *(func.max(case((c, 1), else_=0)).label(n) for n, c in conds.items()),
            func.sum(case((conds["clicks_unique"], 1), else_=0)).label("clicks_total"),
            first.label("first_human_id"),
        )
        .where(EV.c.campaign_id == campaign_id)
        .group_by(EV.c.campaign_id, EV.c.organisation_id, key, delivery)
    )
    columns = [c.name for c in grouped.selected_columns]
    conn.execute(insert(RA).from_select(columns, grouped))
    # The device and time of each first human event, by primary key.
    src = EV.alias("first_event")

    def of_first(name: str) -> Any:
        return select(src.c[name]).where(src.c.id == RA.c.first_human_id).scalar_subquery()

    conn.execute(
        update(RA)
        .where(RA.c.campaign_id == campaign_id, RA.c.first_human_id.is_not(None))
        .values(
            device_class=of_first("device_class"),
            client_family=of_first("client_family"),
            first_human_at=of_first("created_at"),
        )
    )
    written = conn.execute(
        select(func.count()).select_from(RA).where(RA.c.campaign_id == campaign_id)
    ).scalar_one()
    return int(written)
