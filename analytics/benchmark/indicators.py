"""Indicator values per body: declared (from survey answers) and observed (from real usage).

Declared values: each respondent's answers become 0/100 per share indicator (did they
tick an option feeding it) or a percentage; a body's value is the mean over its
respondents, using the agents' answers first for factual questions (``agents_first``:
agents run the practice) and everyone's for opinions (``all``). Values are on a 0–100
scale so that a body's mean of 0/100 answers and a sector share read alike.

Observed values: where Crieur sees the practice itself, :func:`observed_from_counts`
turns plain counts (:class:`UsageCounts`) into the same indicator ids, so the benchmark
page can show them beside what the body declared. :func:`usage_counts` is the one place
that reads other packages' tables to build those counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from analytics.benchmark.survey import CHOICE_TYPES, indicator_catalogue, iter_questions
from contacts.i18n import N_

SOURCES = (
    "web_form",
    "event_signup",
    "internal_file",
    "directory",
    "exchanged",
    "purchased",
    "unknown",
    "api",
)
RISKY = ("exchanged", "purchased", "unknown")

# Observed-only indicators (no survey question), with their French labels.
OBSERVED_LABELS: dict[str, str] = {
    **{
        f"contacts_source_{s}_pct": N_("Part des inscriptions de source « %(source)s »", source=s)
        for s in SOURCES
    },
    "contacts_risky_pct": N_(
        "Part des inscriptions de sources à risque (échange, achat, inconnue)"
    ),
    "mobile_friendly_campaigns_pct": N_("Part des campagnes adaptées au mobile"),
    "delivery_failure_pct": N_("Part des envois en échec"),
}


class IndicatorMap:
    """A survey definition compiled for turning answers into indicators quickly.

    Building frames for 1,000 bodies calls this thousands of times; walking the JSON
    definition each time was the slowest part of an export.
    """

    def __init__(self, defn: Mapping[str, Any]) -> None:
        self.questions: list[tuple[str, str, Any, bool]] = []
        for q in iter_questions(defn):
            inds = _fed(q)
            if not inds:
                continue
            agents_first = q.get("respondents", "agents_first") == "agents_first"
            if q["type"] in CHOICE_TYPES:
                options = [(o["value"], tuple(o.get("indicators", ()))) for o in q["options"]]
                self.questions.append((q["id"], "choice", (tuple(inds), options), agents_first))
            elif q["type"] == "percentage":
                self.questions.append((q["id"], "pct", (q["indicator"],), agents_first))
            elif q["type"] == "scale":
                rule = (q["indicator"], q["threshold"])
                self.questions.append((q["id"], "scale", rule, agents_first))

    def respondent(self, answers: Mapping[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for qid, kind, rule, _ in self.questions:
            value = answers.get(qid)
            if value is None or value == []:
                continue
            if kind == "choice":
                inds, options = rule
                chosen = {value} if isinstance(value, str) else set(value)
                for ind in inds:
                    out[ind] = 0.0
                for option, fed in options:
                    if option in chosen:
                        for ind in fed:
                            out[ind] = 100.0
            elif kind == "pct":
                out[rule[0]] = float(value)
            else:
                out[rule[0]] = 100.0 if value >= rule[1] else 0.0
        return out

    def body_and_roles(
        self, respondents: Iterable[Mapping[str, Any]]
    ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """(body values, role → values) from the same per-respondent values."""
        people = [
            (r.get("role", "agent"), self.respondent(r.get("answers", {}))) for r in respondents
        ]
        body: dict[str, float] = {}
        for _, kind, rule, agents_first in self.questions:
            inds = rule[0] if kind == "choice" else (rule[0],)
            answered = [(role, vals) for role, vals in people if inds[0] in vals]
            if agents_first:
                answered = [p for p in answered if p[0] == "agent"] or answered
            if answered:
                for ind in inds:
                    body[ind] = sum(vals[ind] for _, vals in answered) / len(answered)
        sums: dict[str, dict[str, list[float]]] = {}
        for role, vals in people:
            bucket = sums.setdefault(role, {})
            for ind, v in vals.items():
                bucket.setdefault(ind, []).append(v)
        roles = {
            role: {ind: sum(vs) / len(vs) for ind, vs in inds.items()}
            for role, inds in sums.items()
        }
        return body, roles


def response_indicators(
    defn: Mapping[str, Any] | IndicatorMap, respondents: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """``{"body": {...}, "roles": {role: {...}}}``: what a submitted response stores."""
    body, roles = _map(defn).body_and_roles(respondents)
    return {"body": body, "roles": roles}


def _map(defn: Mapping[str, Any] | IndicatorMap) -> IndicatorMap:
    return defn if isinstance(defn, IndicatorMap) else IndicatorMap(defn)


def respondent_indicators(
    defn: Mapping[str, Any] | IndicatorMap, answers: Mapping[str, Any]
) -> dict[str, float]:
    """One respondent's cleaned answers → indicator values on 0–100 (unanswered: absent)."""
    return _map(defn).respondent(answers)


def body_indicators(
    defn: Mapping[str, Any] | IndicatorMap, respondents: Iterable[Mapping[str, Any]]
) -> dict[str, float]:
    """A body's declared value per indicator from all its respondents.

    ``respondents`` are mappings with ``role`` (agent|elected) and cleaned ``answers``.
    """
    return _map(defn).body_and_roles(respondents)[0]


def role_indicators(
    defn: Mapping[str, Any] | IndicatorMap, respondents: Iterable[Mapping[str, Any]]
) -> dict[str, dict[str, float]]:
    """Per role (agent, elected) the mean value per indicator over that role's respondents."""
    return _map(defn).body_and_roles(respondents)[1]


def _fed(question: Mapping[str, Any]) -> list[str]:
    if question["type"] in CHOICE_TYPES:
        return list(dict.fromkeys(i for o in question["options"] for i in o.get("indicators", [])))
    return [question["indicator"]] if question.get("indicator") else []


@dataclass
class UsageCounts:
    """What Crieur saw a body do over a period: plain counts, no personal data."""

    subscriptions_by_source: dict[str, int] = field(default_factory=dict)
    campaigns_sent: int = 0
    newsletters_sent: int = 0
    invitations_sent: int = 0
    surveys_sent: int = 0  # campaigns carrying a poll block
    press_campaigns_sent: int = 0  # sent to a list whose purpose is press
    video_campaigns: int = 0
    social_campaigns: int = 0
    segmented_campaigns: int = 0
    mobile_friendly_campaigns: int = 0
    stats_views: int = 0
    click_report_views: int = 0
    site_stats_views: int = 0
    deliveries_sent: int = 0
    deliveries_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def observed_from_counts(counts: UsageCounts) -> dict[str, float]:
    """Observed indicator values (0–100) from usage counts; no activity, no value.

    Collection indicators need contacts; practice and measurement indicators need at
    least one campaign sent in the period (a body that sent nothing has no practice to
    observe, which is not the same as a practice of 0).
    """
    out: dict[str, float] = {}
    by_source = {s: int(counts.subscriptions_by_source.get(s, 0)) for s in SOURCES}
    total = sum(by_source.values())
    if total:
        for s, n in by_source.items():
            out[f"contacts_source_{s}_pct"] = 100.0 * n / total
        out["contacts_risky_pct"] = 100.0 * sum(by_source[s] for s in RISKY) / total
        out["collect_website_signup"] = (
            100.0 * (by_source["web_form"] + by_source["event_signup"]) / total
        )
        flags = {
            "collect_website_any": "web_form",
            "collect_event_signup": "event_signup",
            "collect_internal_files": "internal_file",
            "collect_directories": "directory",
            "risk_exchange_contacts": "exchanged",
            "risk_buy_files": "purchased",
            "risk_unknown_source": "unknown",
        }
        for ind, source in flags.items():
            out[ind] = 100.0 if by_source[source] else 0.0
    sent = counts.campaigns_sent
    if sent:
        used = {
            "use_newsletters": counts.newsletters_sent,
            "use_events_invitations": counts.invitations_sent,
            "use_surveys": counts.surveys_sent,
            "use_press_relations": counts.press_campaigns_sent,
            "practice_video": counts.video_campaigns,
            "practice_social_networks": counts.social_campaigns,
            "practice_segmentation": counts.segmented_campaigns,
            "measure_standard_kpis": counts.stats_views,
            "measure_click_rate": counts.click_report_views,
            "measure_site_traffic": counts.site_stats_views,
        }
        for ind, n in used.items():
            out[ind] = 100.0 if n else 0.0
        looked = counts.stats_views + counts.click_report_views + counts.site_stats_views
        out["measure_none"] = 0.0 if looked else 100.0
        mobile = 100.0 * min(counts.mobile_friendly_campaigns, sent) / sent
        out["mobile_friendly_campaigns_pct"] = mobile
        out["practice_mobile_done"] = 100.0 if mobile >= 50 else 0.0
        out["practice_mobile_optimisation"] = out["practice_mobile_done"]
    attempted = counts.deliveries_sent + counts.deliveries_failed
    if attempted:
        out["delivery_failure_pct"] = 100.0 * counts.deliveries_failed / attempted
    return out


def declared_vs_observed(
    defn: Mapping[str, Any], declared: Mapping[str, float], observed: Mapping[str, float]
) -> list[dict[str, Any]]:
    """Rows for the indicators both declared and observed, flagging where they disagree.

    Share indicators agree when both sides are on the same side of 50; percentages agree
    within 15 points. A disagreement is not an error: it is a prompt to look again.
    """
    catalogue = indicator_catalogue(defn)
    rows = []
    for ind, meta in catalogue.items():
        if ind not in observed:
            continue
        d, o = declared.get(ind), observed[ind]
        if d is None:
            agrees = None
        elif meta["unit"] == "pct":
            agrees = abs(d - o) <= 15
        else:
            agrees = (d >= 50) == (o >= 50)
        rows.append(
            {
                "indicator": ind,
                "theme": meta.get("theme", ""),
                "label_fr": meta["label_fr"],
                "unit": meta["unit"],
                "declared": d,
                "observed": o,
                "agrees": agrees,
            }
        )
    return rows


# --- database: the one place that reads other packages' tables ---------------------------


def usage_counts(org_id: int, start: dt.datetime, end: dt.datetime) -> UsageCounts:
    """Count what the body did in ``[start, end)``: subscriptions, campaigns, reports read.

    A campaign is counted when it started sending in the period. "Mobile-friendly" means
    compiled through MJML, whose layouts are responsive; a campaign without compiled MJML
    is not counted as such. Subscriptions are those alive at ``end``.
    """
    from sqlalchemy import func, or_, select

    from analytics.benchmark.models import PracticeSignal, SignalKind
    from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
    from contacts.db import db, scoped
    from contacts.models import MailingList, Purpose, Subscription

    counts = UsageCounts()
    rows = db.session.execute(
        select(Subscription.source, func.count())
        .where(
            Subscription.organisation_id == org_id,
            Subscription.created_at < end,
            or_(Subscription.withdrawn_at.is_(None), Subscription.withdrawn_at >= end),
        )
        .group_by(Subscription.source)
    ).all()
    counts.subscriptions_by_source = {str(source): int(n) for source, n in rows}

    press_lists = set(
        db.session.scalars(
            select(MailingList.id).where(
                MailingList.organisation_id == org_id, MailingList.purpose == Purpose.PRESS
            )
        )
    )
    started = (CampaignStatus.SENDING, CampaignStatus.PAUSED, CampaignStatus.SENT)
    campaigns = db.session.scalars(
        scoped(Campaign, org_id).where(
            Campaign.status.in_(started), Campaign.started_at >= start, Campaign.started_at < end
        )
    ).all()
    for c in campaigns:
        types = {b.get("type") for b in (c.blocks or []) if isinstance(b, dict)}
        counts.campaigns_sent += 1
        counts.newsletters_sent += c.kind == "newsletter"
        counts.invitations_sent += c.kind == "invitation"
        counts.surveys_sent += "poll" in types
        counts.video_campaigns += "video" in types
        counts.social_campaigns += "social" in types
        counts.segmented_campaigns += bool(c.segment_ids)
        counts.press_campaigns_sent += bool(press_lists & set(c.list_ids or []))
        counts.mobile_friendly_campaigns += bool((c.compiled_mjml or "").strip())
    if campaigns:
        statuses = dict(
            db.session.execute(
                select(Delivery.status, func.count())
                .where(
                    Delivery.organisation_id == org_id,
                    Delivery.campaign_id.in_([c.id for c in campaigns]),
                )
                .group_by(Delivery.status)
            ).all()
        )
        counts.deliveries_sent = int(statuses.get(DeliveryStatus.SENT, 0))
        counts.deliveries_failed = int(statuses.get(DeliveryStatus.FAILED, 0))

    signals = dict(
        db.session.execute(
            select(PracticeSignal.kind, func.sum(PracticeSignal.count))
            .where(
                PracticeSignal.organisation_id == org_id,
                PracticeSignal.day >= start.date(),
                PracticeSignal.day <= end.date(),
            )
            .group_by(PracticeSignal.kind)
        ).all()
    )
    counts.stats_views = int(signals.get(SignalKind.STATS_VIEWED, 0) or 0)
    counts.click_report_views = int(signals.get(SignalKind.CLICKS_VIEWED, 0) or 0)
    counts.site_stats_views = int(signals.get(SignalKind.SITE_STATS_VIEWED, 0) or 0)
    return counts


def observed_indicators(org_id: int, start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    """Observed indicator values for one body over ``[start, end)``."""
    return observed_from_counts(usage_counts(org_id, start, end))


def record_practice_signal(org_id: int, kind: str, when: dt.datetime | None = None) -> None:
    """Count one occurrence of a practice seen in the app (e.g. a statistics page read).

    Called by the views that show statistics; one row per body, kind and day, bumped
    with an atomic UPDATE so that two requests at once both count.
    """
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from analytics.benchmark.models import PracticeSignal, SignalKind
    from contacts.db import db, utcnow

    kind = SignalKind(kind)
    day = (when or utcnow()).date()
    bump = (
        update(PracticeSignal)
        .where(
            PracticeSignal.organisation_id == org_id,
            PracticeSignal.kind == kind,
            PracticeSignal.day == day,
        )
        .values(count=PracticeSignal.count + 1)
        .execution_options(synchronize_session=False)
    )
    if db.session.execute(bump).rowcount:
        return
    try:
        with db.session.begin_nested():
            db.session.add(PracticeSignal(organisation_id=org_id, kind=kind, day=day, count=1))
    except IntegrityError:  # created meanwhile by another request
        db.session.execute(bump)
