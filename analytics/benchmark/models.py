"""Tables of the practice benchmark: survey editions, answers, baselines, releases, signals.

Survey editions and baselines belong to the association (no ``organisation_id``): the
analyst runs them for the whole sector. A body's response and its respondents carry the
body's ``organisation_id`` like every row that belongs to a body. A release is the frozen
input of a published export, kept so that the next export can be checked against it for
differencing (see :mod:`analytics.benchmark.anonymise`); it never leaves the database.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contacts.db import OrgScoped, db, utcnow


class EditionStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class ResponseStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class RespondentRole(enum.StrEnum):
    AGENT = "agent"
    ELECTED = "elected"


class SignalKind(enum.StrEnum):
    """Practices Crieur sees a body do in the app itself (no survey answer needed)."""

    STATS_VIEWED = "stats_viewed"  # a campaign's statistics page was read
    CLICKS_VIEWED = "clicks_viewed"  # the per-link click report was read
    SITE_STATS_VIEWED = "site_stats_viewed"  # the website traffic report was read


class SurveyEdition(db.Model):
    """One run of the practice survey, with a frozen copy of its questions."""

    __tablename__ = "survey_editions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    opens_at: Mapped[dt.datetime]
    closes_at: Mapped[dt.datetime]
    # Snapshot of the survey definition: answers always refer to the questions they saw.
    questions: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=EditionStatus.OPEN)
    baseline_code: Mapped[str] = mapped_column(String(40), default="2010")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SurveyResponse(OrgScoped, db.Model):
    """A body's one response to an edition; respondents fill it in, one of them submits."""

    __tablename__ = "survey_responses"
    __table_args__ = (UniqueConstraint("organisation_id", "edition_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_id: Mapped[int] = mapped_column(
        ForeignKey("survey_editions.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default=ResponseStatus.DRAFT)
    # Observed indicators over the edition's period, computed at submission (or refreshed
    # at closing) so sector aggregates never query every body's campaigns at export time.
    observed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    observed_at: Mapped[dt.datetime | None]
    # Declared indicator values computed at submission ({"body": {...}, "roles": {...}}):
    # a submitted response no longer changes, and sector pages then skip the answers.
    indicators: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[dt.datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Respondent(OrgScoped, db.Model):
    """One person's answers within a body's response: an agent or an elected official."""

    __tablename__ = "survey_respondents"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("survey_responses.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(20), default=RespondentRole.AGENT)
    # The user who fills it in, when they have an account; elected officials often do not.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BaselineEdition(db.Model):
    """A reference table (the shipped 2010 study, or a later one an analyst loaded)."""

    __tablename__ = "baseline_editions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    year: Mapped[int]
    source: Mapped[str] = mapped_column(Text, default="")
    is_shipped: Mapped[bool] = mapped_column(default=False)
    loaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    loaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BaselineValue(db.Model):
    __tablename__ = "baseline_values"
    __table_args__ = (UniqueConstraint("baseline_edition_id", "indicator"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    baseline_edition_id: Mapped[int] = mapped_column(
        ForeignKey("baseline_editions.id", ondelete="CASCADE"), index=True
    )
    indicator: Mapped[str] = mapped_column(String(80))
    theme: Mapped[str] = mapped_column(String(40), default="")
    label_fr: Mapped[str] = mapped_column(String(300), default="")
    label_en: Mapped[str] = mapped_column(String(300), default="")
    value_pct: Mapped[float]
    qualifier: Mapped[str] = mapped_column(String(20), default="exact")
    note: Mapped[str] = mapped_column(String(300), default="")


class BenchmarkRelease(db.Model):
    """The frozen, pseudonymised input of one export and which cells it published.

    Later exports of the same edition are checked against every earlier release, so that
    two exports differing by fewer than k bodies never both publish a cell.
    """

    __tablename__ = "benchmark_releases"
    __table_args__ = (Index("ix_benchmark_releases_edition_created", "edition_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("survey_editions.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_cells: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Published figures by cell key ({n, value, q1, median, q3}): what body pages show.
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PracticeSignal(OrgScoped, db.Model):
    """A daily counter of a practice seen in the app (e.g. statistics pages read)."""

    __tablename__ = "practice_signals"
    __table_args__ = (UniqueConstraint("organisation_id", "kind", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    day: Mapped[dt.date] = mapped_column(Date)
    count: Mapped[int] = mapped_column(default=0)
