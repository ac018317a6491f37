"""Progress of a send: counts by status, possible duplicates, the recent rate, the time left,
and the pages of delivery rows of one kind (sent, pending, duplicates…).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from campaigns.dbclock import db_now
from campaigns.delivery import UNFINISHED, D, T
from campaigns.models import Campaign, CampaignStatus
from contacts.db import DomainError, db
from contacts.models import Contact

S = CampaignStatus


@dataclass
class Progress:
    campaign_id: int
    status: str
    counts: dict[str, int]
    possible_duplicates: int
    rate: float  # messages accepted per second over the last minute
    eta_seconds: float | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        return sum(self.counts.get(s, 0) for s in UNFINISHED)

    @property
    def done(self) -> int:
        return self.total - self.remaining

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "status": self.status,
            "recipients": self.total,
            **{str(s): self.counts.get(s, 0) for s in D},
            "remaining": self.remaining,
            "done": self.done,
            "possible_duplicates": self.possible_duplicates,
            "rate": round(self.rate, 2),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


RATE_WINDOW = dt.timedelta(seconds=60)


def progress(org_id: int, campaign: Campaign) -> Progress:
    """Counts by status, possible duplicates, the recent rate and the time left."""
    rows = db.session.execute(
        select(T.c.status, func.count())
        .where(T.c.campaign_id == campaign.id, T.c.organisation_id == org_id)
        .group_by(T.c.status)
    ).all()
    counts = {str(status): int(n) for status, n in rows}
    duplicates = int(
        db.session.scalar(
            select(func.count())
            .select_from(T)
            .where(
                T.c.campaign_id == campaign.id,
                T.c.possible_duplicate.is_(True),
                T.c.status != D.SENDING,  # in flight right now: not (yet) ambiguous
            )
        )
        or 0
    )
    now = db_now()
    window_start = max(now - RATE_WINDOW, campaign.started_at or now - RATE_WINDOW)
    recent = int(
        db.session.scalar(
            select(func.count())
            .select_from(T)
            .where(
                T.c.campaign_id == campaign.id,
                T.c.status.in_((D.SENT, D.UNKNOWN)),
                T.c.sent_at > window_start,
            )
        )
        or 0
    )
    seconds = max((now - window_start).total_seconds(), 1.0)
    rate = recent / seconds
    remaining = sum(counts.get(s, 0) for s in UNFINISHED)
    eta = None
    if remaining == 0:
        eta = 0.0
    elif rate > 0 and campaign.status == S.SENDING:
        eta = remaining / rate
    return Progress(
        campaign_id=campaign.id,
        status=campaign.status,
        counts=counts,
        possible_duplicates=duplicates,
        rate=rate,
        eta_seconds=eta,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
    )


WHICH = {
    "sent": (T.c.status == D.SENT,),
    "pending": (T.c.status.in_(UNFINISHED),),
    "duplicates": (T.c.possible_duplicate.is_(True), T.c.status != D.SENDING),
    "failed": (T.c.status == D.FAILED,),
    "unknown": (T.c.status == D.UNKNOWN,),
    "skipped": (T.c.status.in_((D.SKIPPED, D.CANCELLED)),),
}


def delivery_rows(
    org_id: int, campaign_id: int, which: str, *, after_id: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    """One page (keyset on id) of the campaign's deliveries of one kind (:data:`WHICH`)."""
    if which not in WHICH:
        raise DomainError("invalid_filter", "Filtre inconnu.")
    rows = db.session.execute(
        select(
            T.c.id,
            Contact.email,
            T.c.status,
            T.c.attempts,
            T.c.sent_at,
            T.c.last_error,
            T.c.possible_duplicate,
            T.c.next_attempt_at,
        )
        .select_from(T)
        .join(Contact, Contact.id == T.c.contact_id)
        .where(
            T.c.organisation_id == org_id,
            T.c.campaign_id == campaign_id,
            T.c.id > after_id,
            *WHICH[which],
        )
        .order_by(T.c.id)
        .limit(min(max(limit, 1), 1000))
    ).all()
    return [
        {
            "id": r[0],
            "email": r[1],
            "status": r[2],
            "attempts": r[3],
            "sent_at": r[4],
            "last_error": r[5],
            "possible_duplicate": bool(r[6]),
            "next_attempt_at": r[7],
        }
        for r in rows
    ]
