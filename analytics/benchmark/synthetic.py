"""Synthetic bodies with answers and observed usage, for the demo, the tests and the bench.

Answers are drawn around the 2010 baseline so that generated sectors look plausible;
nothing here is real data, and free-text answers carry a recognisable marker so that
tests can check they never reach an export.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

from analytics.benchmark.indicators import SOURCES, UsageCounts, observed_from_counts
from analytics.benchmark.survey import iter_questions

KINDS = (
    "commune",
    "intercommunalite",
    "departement",
    "region",
    "association",
    "syndicat_mixte",
    "agence",
    "service_etat",
    "other",
)
KIND_WEIGHTS = (45, 15, 5, 2, 18, 5, 4, 4, 2)
REGIONS = (
    "Auvergne-Rhône-Alpes",
    "Bourgogne-Franche-Comté",
    "Bretagne",
    "Centre-Val de Loire",
    "Corse",
    "Grand Est",
    "Hauts-de-France",
    "Île-de-France",
    "Normandie",
    "Nouvelle-Aquitaine",
    "Occitanie",
    "Pays de la Loire",
    "Provence-Alpes-Côte d'Azur",
    "Guadeloupe",
    "Martinique",
    "Guyane",
    "La Réunion",
    "Mayotte",
)
REGION_WEIGHTS = (12, 6, 7, 5, 1, 8, 9, 14, 6, 10, 10, 7, 8, 1, 1, 1, 2, 1)
FREE_TEXT_MARKER = "TEXTE-LIBRE-CONFIDENTIEL"


def synthetic_answers(defn: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
    """One respondent's plausible answers to every question."""
    answers: dict[str, Any] = {}
    for q in iter_questions(defn):
        if q["type"] == "multiple":
            options = [o for o in q["options"] if not o.get("exclusive")]
            chosen = [o["value"] for o in options if rng.random() < 0.45]
            exclusive = [o["value"] for o in q["options"] if o.get("exclusive")]
            if not chosen and exclusive:
                chosen = exclusive[:1]
            answers[q["id"]] = chosen or [options[0]["value"]]
        elif q["type"] == "single":
            answers[q["id"]] = rng.choice(q["options"])["value"]
        elif q["type"] == "percentage":
            answers[q["id"]] = float(rng.randint(0, 100))
        elif q["type"] == "scale":
            answers[q["id"]] = rng.randint(q["min"], q["max"])
        elif q["type"] == "text" and rng.random() < 0.3:
            answers[q["id"]] = f"{FREE_TEXT_MARKER} contact: maire@example.org"
    return answers


def synthetic_counts(rng: random.Random) -> UsageCounts:
    """Usage counts of one body over an edition's period."""
    sent = rng.choice((0, 1, 2, 4, 8, 12, 24))
    weights = {s: rng.randint(0, 400) if rng.random() < 0.6 else 0 for s in SOURCES}
    return UsageCounts(
        subscriptions_by_source={s: n for s, n in weights.items() if n},
        campaigns_sent=sent,
        newsletters_sent=rng.randint(0, sent),
        invitations_sent=rng.randint(0, sent),
        surveys_sent=rng.randint(0, sent // 3),
        press_campaigns_sent=rng.randint(0, sent // 4),
        video_campaigns=rng.randint(0, sent // 4),
        social_campaigns=rng.randint(0, sent),
        segmented_campaigns=rng.randint(0, sent // 2),
        mobile_friendly_campaigns=sent,
        stats_views=rng.choice((0, 0, 1, 5, 20)),
        click_report_views=rng.choice((0, 0, 0, 2)),
        site_stats_views=rng.choice((0, 0, 3)),
        deliveries_sent=sent * rng.randint(50, 2000),
        deliveries_failed=rng.randint(0, 30) if sent else 0,
    )


def synthetic_records(
    defn: Mapping[str, Any], count: int = 1000, seed: int = 7
) -> Iterator[dict[str, Any]]:
    """``count`` bodies as records for :func:`analytics.benchmark.aggregate.build_frames`."""
    rng = random.Random(seed)
    for i in range(count):
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        population = int(10 ** rng.uniform(2.3, 6.2)) if kind != "association" else None
        respondents = [
            {"role": "agent" if j == 0 or rng.random() < 0.6 else "elected",
             "answers": synthetic_answers(defn, rng)}
            for j in range(rng.choice((1, 1, 2, 3)))
        ]  # fmt: skip
        yield {
            "body": f"body-{i:05d}",
            "name": f"Commune fictive n° {i}",
            "kind": kind,
            "region": rng.choices(REGIONS, REGION_WEIGHTS)[0],
            "population": population,
            "respondents": respondents,
            "observed": observed_from_counts(synthetic_counts(rng)),
        }
