"""The anonymised sector export: one data structure, rendered as CSV, JSON or XLSX.

:func:`build_export` turns an edition's frames into protected cells
(:mod:`analytics.benchmark.anonymise`) and labelled rows; the renderers only format.
What an export can hold is fixed here: indicator ids and labels, the breakdown (kind of
body, population band, region, respondent role), the number of bodies and rounded
figures. Never a body's name or id, a contact, or a free-text answer: those are not in
the frames to begin with, and no column could carry them.

Every export carries its metadata (edition, collection period, method, thresholds,
rounding, reference) — as a sheet in XLSX, an object in JSON, and ``#`` lines heading
the CSV (``pandas.read_csv(path, comment="#")`` reads it back).

Cells are formula-safe: text a spreadsheet would run as a formula (``= + - @``, a tab…)
is prefixed with ``'`` by the shared rule, :func:`contacts.spreadsheet.safe_cell`. The
XLSX is written by :mod:`analytics.benchmark.xlsx` (two sheets, inline strings, fast).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.benchmark.aggregate import (
    ALL,
    BAND_LABELS,
    OBSERVED_PREFIX,
    ROLE_LABELS,
    TABLES,
    cell_stats,
    indicator_columns,
)
from analytics.benchmark.anonymise import (
    PUBLISHED,
    Policy,
    Release,
    make_release,
    protect,
    published_figures,
    snapshot_from_frames,
)
from analytics.benchmark.baselines import BaselineTable
from analytics.benchmark.indicators import OBSERVED_LABELS
from analytics.benchmark.survey import indicator_catalogue
from analytics.benchmark.xlsx import write_xlsx
from contacts.db import DomainError
from contacts.i18n import N_
from contacts.spreadsheet import safe_cell

FORMATS = ("csv", "json", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
KIND_LABELS = {
    "commune": N_("Communes"),
    "intercommunalite": N_("Intercommunalités"),
    "departement": N_("Départements"),
    "region": N_("Régions"),
    "association": N_("Associations"),
    "syndicat_mixte": N_("Syndicats mixtes"),
    "agence": N_("Agences"),
    "service_etat": N_("Services de l'État"),
    "other": N_("Autres organismes"),
}
UNIT_LABELS = {
    "share": N_("part des organismes (%)"),
    "pct": N_("moyenne des pourcentages déclarés"),
}
SECRET = "secret"
COLUMNS = [
    "indicateur",
    "theme",
    "libelle",
    "source",
    "unite",
    "ventilation",
    "type_organisme",
    "strate_population",
    "region",
    "role_repondant",
    "nb_organismes",
    "valeur_pct",
    "q1_pct",
    "mediane_pct",
    "q3_pct",
    "reference_pct",
    "statut",
]
NUMERIC = {"nb_organismes", "valeur_pct", "q1_pct", "mediane_pct", "q3_pct", "reference_pct"}


@dataclass
class Export:
    """An anonymised export, ready to render; ``release`` is what to store afterwards."""

    metadata: list[tuple[str, str]]
    columns: list[str]
    rows: list[list[Any]]
    release: Release
    figures: dict[str, dict[str, float | None]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def method_text(policy: Policy) -> list[tuple[str, str]]:
    """The method and thresholds, in French, as (label, text) lines for the metadata."""
    return [
        ("Seuil de diffusion", f"Chaque valeur publiée repose sur au moins {policy.k} organismes."),
        (
            "Règle de dominance",
            f"Aucun organisme ne représente plus de {round(policy.dominance * 100)} % de la "
            "valeur d'une case ; pour un indicateur oui/non, une case avec un seul « oui » "
            "est secrète.",
        ),
        (
            "Secret secondaire",
            "Quand une case est secrète, une autre case de la même ligne ou colonne l'est "
            "aussi, pour qu'aucune ne se déduise des totaux ; un audit algébrique vérifie "
            "qu'aucune réponse d'un organisme ne se déduit des cases publiées.",
        ),
        (
            "Exports successifs",
            f"Une case déjà publiée n'est republiée que si ses contributions sont identiques "
            f"ou ont changé d'au moins {policy.k} organismes : la différence entre deux "
            "exports ne révèle aucune réponse individuelle.",
        ),
        (
            "Arrondi",
            f"Valeurs arrondies à {policy.rounding} point(s) de pourcentage ; effectifs "
            f"exacts ; quartiles publiés seulement pour les pourcentages et les cases d'au "
            f"moins {2 * policy.k} organismes.",
        ),
        ("Cases secrètes", "Le statut « secret » remplace toutes les valeurs de la case."),
        (
            "Données exclues",
            "Aucune donnée de contact, aucun nom ni identifiant d'organisme, aucune réponse libre.",
        ),
    ]


def build_export(
    bodies: pd.DataFrame,
    roles: pd.DataFrame | None,
    defn: Mapping[str, Any],
    *,
    edition: Mapping[str, Any],
    policy: Policy | None = None,
    releases: Sequence[Release] = (),
    baseline: BaselineTable | None = None,
    generated_at: dt.datetime | None = None,
) -> Export:
    """Protect and label an edition's aggregates.

    ``edition``: ``code``, ``title``, ``opens_at``, ``closes_at``. ``releases``: earlier
    releases of the same edition, oldest first (see :class:`anonymise.Release`).
    """
    policy = policy or Policy()
    catalogue = indicator_catalogue(defn)
    present = set(indicator_columns(bodies))
    declared = [i for i in catalogue if i in present]
    observed = sorted(i for i in present if i.startswith(OBSERVED_PREFIX))
    indicators = declared + observed
    units = {i: catalogue[i]["unit"] for i in declared}
    for i in observed:
        base = i.removeprefix(OBSERVED_PREFIX)
        units[i] = catalogue.get(base, {}).get("unit", "pct" if base.endswith("_pct") else "share")
    quartiles = {i for i, u in units.items() if u == "pct"}
    cells = cell_stats(bodies, roles, indicators, quantile_indicators=quartiles)
    snapshot = snapshot_from_frames(bodies, roles)
    protected = protect(
        cells,
        bodies,
        policy,
        roles=roles,
        releases=releases,
        quantile_indicators=quartiles,
        snapshot=snapshot,
    )
    reference = baseline.values() if baseline else {}
    order = {ind: i for i, ind in enumerate(indicators)}
    dims = ["kind", "band", "region", "role"]
    table_rank = {tuple(d in t for d in dims): i for i, t in enumerate(TABLES)}
    table = [table_rank.get(tuple(v != ALL for v in row), len(TABLES))
             for row in protected[dims].itertuples(index=False)]  # fmt: skip
    protected = (
        protected.assign(_order=protected["indicator"].map(order), _table=table)
        .sort_values(["_order", "_table", *dims], kind="stable")
        .drop(columns=["_order", "_table"])
    )
    rows = [_row(cell, catalogue, units, reference) for cell in protected.to_dict("records")]
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    bodies_count = int(len(bodies))
    published = int((protected["status"] == PUBLISHED).sum())
    metadata = [
        ("Titre", "Baromètre des pratiques de communication par e-mail — export anonymisé"),
        ("Édition", f"{edition['code']} — {edition['title']}"),
        ("Période de collecte", _period(edition.get("opens_at"), edition.get("closes_at"))),
        ("Date de l'export", generated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("Diffusion n°", str(len(releases) + 1)),
        (
            "Organismes répondants",
            str(bodies_count) if bodies_count >= policy.k else f"moins de {policy.k}",
        ),
        (
            "Méthode de collecte",
            "Questionnaire en ligne auto-administré, une réponse par organisme et par édition, "
            "remplie par un ou plusieurs agents et élus ; indicateurs « observés » calculés "
            "par Crieur à partir de l'usage réel sur la période de l'édition.",
        ),
        (
            "Calcul par organisme",
            "Moyenne des répondants de l'organisme ; pour les questions factuelles, les "
            "réponses des agents priment.",
        ),
        *method_text(policy),
    ]
    if baseline is not None:
        metadata.append(("Référence", f"{baseline.title} — {baseline.source}"))
    return Export(
        metadata=metadata,
        columns=list(COLUMNS),
        rows=rows,
        release=make_release(bodies, roles, protected, snapshot),
        figures=published_figures(protected),
        summary={"cells": len(rows), "published": published, "bodies": bodies_count},
    )


def _period(opens_at: Any, closes_at: Any) -> str:
    def day(value: Any) -> str:
        if isinstance(value, dt.datetime | dt.date):
            return value.strftime("%d/%m/%Y")
        return str(value or "?")

    return f"du {day(opens_at)} au {day(closes_at)}"


def _breakdown(cell: Mapping[str, Any]) -> str:
    dims = [d for d in ("kind", "band", "region", "role") if cell[d] != ALL]
    names = {
        (): "Ensemble",
        ("kind",): "Type d'organisme",
        ("band",): "Strate de population",
        ("kind", "band"): "Type × strate de population",
        ("region",): "Région",
        ("role",): "Rôle du répondant",
    }
    return names.get(tuple(dims), " × ".join(dims))


def _row(
    cell: Mapping[str, Any],
    catalogue: Mapping[str, Mapping[str, Any]],
    units: Mapping[str, str],
    reference: Mapping[str, float],
) -> list[Any]:
    ind = cell["indicator"]
    base = ind.removeprefix(OBSERVED_PREFIX)
    is_observed = ind.startswith(OBSERVED_PREFIX)
    meta = catalogue.get(base, {})
    label = meta.get("label_fr") or OBSERVED_LABELS.get(base, base)
    published = cell["status"] == PUBLISHED

    def figure(value: Any) -> Any:
        if not published or value is None or pd.isna(value):
            return None
        number = float(value)
        return int(number) if number.is_integer() else number

    def label_of(value: str, labels: Mapping[str, str]) -> str:
        return "" if value == ALL else labels.get(value, value)

    return [
        base,
        meta.get("theme", "observation"),
        label,
        "observé" if is_observed else "déclaré",
        UNIT_LABELS.get(units.get(ind, "share"), ""),
        _breakdown(cell),
        label_of(cell["kind"], KIND_LABELS),
        label_of(cell["band"], BAND_LABELS),
        label_of(cell["region"], {}),
        label_of(cell["role"], ROLE_LABELS),
        figure(cell["n"]),
        figure(cell["value"]),
        figure(cell["q1"]),
        figure(cell["median"]),
        figure(cell["q3"]),
        reference.get(base),
        "publié" if published else SECRET,
    ]


# --- renderers ---------------------------------------------------------------------------


def _safe_cell(value: Any) -> Any:
    """A value a spreadsheet will show, never evaluate (the shared rule, plus no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return safe_cell(value)


def export_csv(export: Export) -> bytes:
    """UTF-8 with BOM (Excel opens it right), comma-separated, metadata as ``#`` lines."""
    out = io.StringIO()
    for label, text in export.metadata:
        out.write("# " + _comment(f"{label} : {text}") + "\n")
    # Strings quoted, so a "#" inside a label is never read as a comment.
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(export.columns)
    for row in export.rows:
        writer.writerow(["" if v is None else _safe_cell(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _comment(text: str) -> str:
    return " ".join(str(_safe_cell(text)).split())


def export_json(export: Export) -> bytes:
    payload = {
        "metadata": {label: text for label, text in export.metadata},
        "columns": export.columns,
        "cells": [dict(zip(export.columns, row, strict=True)) for row in export.rows],
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def export_xlsx(export: Export) -> bytes:
    """Two sheets: « Métadonnées » then « Indicateurs »; every text cell is formula-safe.

    Texts are inline strings, which a spreadsheet never evaluates, and are ``'``-prefixed
    like the CSV for good measure.
    """
    meta = [["Rubrique", "Valeur"], *([label, text] for label, text in export.metadata)]
    data = [export.columns, *export.rows]
    return write_xlsx([("Métadonnées", meta), ("Indicateurs", data)])


def render_export(export: Export, fmt: str) -> bytes:
    """Bytes of the export in ``fmt`` (csv, json or xlsx)."""
    renderers = {"csv": export_csv, "json": export_json, "xlsx": export_xlsx}
    if fmt not in renderers:
        raise DomainError(
            "export_format", "Format d'export inconnu : choisissez csv, json ou xlsx."
        )
    return renderers[fmt](export)


def write_export_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write an export atomically: a killed export never leaves a partial file behind.

    The bytes go to a temporary file beside the target, are synced, then renamed over it.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def export_filename(edition_code: str, fmt: str, generated_at: dt.datetime) -> str:
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "-" for c in edition_code)
    return f"barometre-{safe}-{generated_at.strftime('%Y%m%d')}.{fmt}"
