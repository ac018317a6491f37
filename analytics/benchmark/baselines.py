"""Sector baselines: the shipped 2010 table, and later editions an analyst loads from CSV.

A baseline is a table of reference percentages keyed by indicator id, the same ids the
survey questions and observed indicators use. The 2010 OTeN × Dolist.net figures ship in
``data/sector-baselines-2010.csv`` (provenance in ``data/README.md``). Analysts can load a
later study in the same CSV layout; it is validated here with French messages naming the
line at fault, then stored beside 2010 (:func:`import_baseline_edition`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from analytics.benchmark.models import BaselineEdition, BaselineValue
from contacts.db import DomainError, db
from contacts.i18n import N_, join_messages

DATA_DIR = Path(__file__).resolve().parent / "data"
SHIPPED_FILE = DATA_DIR / "sector-baselines-2010.csv"
SHIPPED_CODE = "2010"
SHIPPED_TITLE = "L'e-mail marketing et les organismes publics (OTeN × Dolist.net, 2010)"
SHIPPED_SOURCE = (
    "Enquête « L'e-mail marketing et les organismes publics », Dolist.net et Observatoire des "
    "Territoires Numériques (OTeN), 2010 ; chiffres tels que publiés dans « Praticiens du "
    "numérique, premiers résultats », Philippe Ourliac, a-brest, 19 décembre 2010 (licence "
    "Creative Commons)."
)

REQUIRED_COLUMNS = ("indicator", "theme", "label_fr", "value_pct")
OPTIONAL_COLUMNS = ("label_en", "qualifier", "note")
QUALIFIERS = ("exact", "approx", "upper_bound", "lower_bound")
MAX_BYTES = 1_000_000
MAX_ROWS = 2_000


@dataclass(frozen=True)
class BaselineRow:
    indicator: str
    theme: str
    label_fr: str
    label_en: str
    value_pct: float
    qualifier: str
    note: str


@dataclass(frozen=True)
class BaselineTable:
    """One edition of reference figures; ``warnings`` lists non-blocking remarks."""

    code: str
    title: str
    year: int
    source: str
    rows: tuple[BaselineRow, ...]
    warnings: tuple[str, ...] = ()

    def values(self) -> dict[str, float]:
        return {r.indicator: r.value_pct for r in self.rows}

    def row(self, indicator: str) -> BaselineRow | None:
        return next((r for r in self.rows if r.indicator == indicator), None)


def load_baseline_csv(
    data: bytes | str,
    *,
    code: str,
    title: str,
    year: int,
    source: str,
    known_indicators: Iterable[str] | None = None,
) -> BaselineTable:
    """Parse and validate a baseline CSV; raise ``baseline_invalid`` listing every problem.

    Accepts UTF-8 (with or without BOM) or Windows-1252, comma or semicolon, and a decimal
    comma (« 13,5 »), because that is what a spreadsheet saved in France produces.
    Indicators unknown to the survey are accepted with a warning: a later study may
    measure something the current survey does not ask yet.
    """
    problems: list[str] = []
    if not str(code).strip():
        problems.append(N_("Le code de l'édition est obligatoire (ex. « 2030 »)."))
    if not str(title).strip():
        problems.append(N_("Le titre de l'édition est obligatoire."))
    if not str(source).strip():
        problems.append(N_("La source est obligatoire : d'où viennent ces chiffres ?"))
    if not isinstance(year, int) or not 1990 <= year <= 2100:
        problems.append(N_("L'année doit être comprise entre 1990 et 2100."))
    text = _decode(data)
    if not text.strip():
        raise _refuse([*problems, N_("Le fichier est vide.")])
    first_line = text.splitlines()[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise _refuse(
            [*problems, N_("Colonnes manquantes : %(columns)s.", columns=", ".join(missing))]
        )
    rows: list[BaselineRow] = []
    seen: dict[str, int] = {}
    for line_no, record in enumerate(reader, start=2):
        if line_no - 1 > MAX_ROWS:
            problems.append(N_("Trop de lignes : %(max)s au plus.", max=MAX_ROWS))
            break
        if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue
        row, row_problems = _parse_row(record, line_no)
        problems.extend(row_problems)
        if row is None:
            continue
        if row.indicator in seen:
            problems.append(
                N_(
                    "Ligne %(row)s : l'indicateur « %(indicator)s » figure déjà ligne %(first)s.",
                    row=line_no,
                    indicator=row.indicator,
                    first=seen[row.indicator],
                )
            )
            continue
        seen[row.indicator] = line_no
        rows.append(row)
    if not rows and not problems:
        problems.append(N_("Le fichier ne contient aucune valeur."))
    if problems:
        raise _refuse(problems)
    warnings: list[str] = []
    if known_indicators is not None:
        known = set(known_indicators)
        unknown = [r.indicator for r in rows if r.indicator not in known]
        if unknown:
            warnings.append(
                N_(
                    "Indicateurs absents du questionnaire (gardés, sans comparaison) : "
                    "%(indicators)s.",
                    indicators=", ".join(unknown),
                )
            )
    return BaselineTable(
        code=str(code).strip(),
        title=str(title).strip(),
        year=int(year),
        source=str(source).strip(),
        rows=tuple(rows),
        warnings=tuple(warnings),
    )


def _parse_row(record: dict[str, str | None], line_no: int) -> tuple[BaselineRow | None, list[str]]:
    get = {k: (record.get(k) or "").strip() for k in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)}
    problems = []
    indicator = get["indicator"]
    if not indicator or not indicator.replace("_", "").isalnum() or not indicator.isascii():
        problems.append(
            N_(
                "Ligne %(row)s : identifiant d'indicateur invalide « %(indicator)s ».",
                row=line_no,
                indicator=indicator,
            )
        )
    if not get["label_fr"]:
        problems.append(N_("Ligne %(row)s : le libellé français est vide.", row=line_no))
    raw = get["value_pct"].replace("%", "").replace("\xa0", "").replace(" ", "").replace(",", ".")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= 100:
        problems.append(
            N_(
                "Ligne %(row)s : « %(value)s » n'est pas un pourcentage entre 0 et 100.",
                row=line_no,
                value=get["value_pct"],
            )
        )
    qualifier = get["qualifier"] or "exact"
    if qualifier not in QUALIFIERS:
        problems.append(
            N_(
                "Ligne %(row)s : qualificatif « %(qualifier)s » inconnu (attendu : %(allowed)s).",
                row=line_no,
                qualifier=qualifier,
                allowed=", ".join(QUALIFIERS),
            )
        )
    if problems:
        return None, problems
    return (
        BaselineRow(
            indicator=indicator,
            theme=get["theme"],
            label_fr=get["label_fr"],
            label_en=get["label_en"],
            value_pct=value,
            qualifier=qualifier,
            note=get["note"],
        ),
        [],
    )


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    if len(data) > MAX_BYTES:
        raise _refuse([N_("Fichier trop volumineux : %(max)s ko au plus.", max=MAX_BYTES // 1000)])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _refuse(problems: list[str]) -> DomainError:
    return DomainError(
        "baseline_invalid",
        "Fichier de référence invalide : %(problems)s",
        params={"problems": join_messages(problems)},
        errors=problems,
    )


@lru_cache(maxsize=1)
def shipped_baseline() -> BaselineTable:
    """The 2010 table shipped with Crieur (read once per process)."""
    return load_baseline_csv(
        SHIPPED_FILE.read_bytes(),
        code=SHIPPED_CODE,
        title=SHIPPED_TITLE,
        year=2010,
        source=SHIPPED_SOURCE,
    )


def baselines_frame(tables: Iterable[BaselineTable]) -> pd.DataFrame:
    """Long frame (edition, year, indicator, theme, label_fr, value_pct, qualifier) for trends."""
    records = [
        {
            "edition": t.code,
            "year": t.year,
            "indicator": r.indicator,
            "theme": r.theme,
            "label_fr": r.label_fr,
            "value_pct": r.value_pct,
            "qualifier": r.qualifier,
        }
        for t in tables
        for r in t.rows
    ]
    columns = ["edition", "year", "indicator", "theme", "label_fr", "value_pct", "qualifier"]
    return pd.DataFrame.from_records(records, columns=columns)


# --- database (thin): the analyst's loaded editions -------------------------------------


def ensure_shipped_baseline() -> BaselineEdition:
    """Store the shipped 2010 table once; later calls return the stored edition."""
    edition = db.session.scalars(
        select(BaselineEdition).where(BaselineEdition.code == SHIPPED_CODE)
    ).first()
    if edition is None:
        edition = _store(shipped_baseline(), is_shipped=True, user_id=None)
    return edition


def import_baseline_edition(
    data: bytes | str,
    *,
    code: str,
    title: str,
    year: int,
    source: str,
    user_id: int | None = None,
    known_indicators: Iterable[str] | None = None,
) -> tuple[BaselineEdition, tuple[str, ...]]:
    """Validate and store a later edition beside 2010; returns it with its warnings."""
    table = load_baseline_csv(
        data, code=code, title=title, year=year, source=source, known_indicators=known_indicators
    )
    exists = db.session.scalars(
        select(BaselineEdition.id).where(BaselineEdition.code == table.code)
    ).first()
    if exists is not None:
        raise DomainError(
            "baseline_exists",
            "Une édition de référence « %(code)s » existe déjà.",
            status=409,
            params={"code": table.code},
        )
    return _store(table, is_shipped=False, user_id=user_id), table.warnings


def _store(table: BaselineTable, *, is_shipped: bool, user_id: int | None) -> BaselineEdition:
    edition = BaselineEdition(
        code=table.code,
        title=table.title,
        year=table.year,
        source=table.source,
        is_shipped=is_shipped,
        loaded_by_id=user_id,
    )
    db.session.add(edition)
    db.session.flush()
    db.session.add_all(
        BaselineValue(
            baseline_edition_id=edition.id,
            indicator=r.indicator,
            theme=r.theme,
            label_fr=r.label_fr,
            label_en=r.label_en,
            value_pct=r.value_pct,
            qualifier=r.qualifier,
            note=r.note,
        )
        for r in table.rows
    )
    db.session.flush()
    return edition


def list_baseline_tables() -> list[BaselineTable]:
    """Every stored baseline edition, oldest first (the shipped one even if not stored yet)."""
    editions = db.session.scalars(select(BaselineEdition).order_by(BaselineEdition.year)).all()
    tables = []
    for e in editions:
        values = db.session.scalars(
            select(BaselineValue)
            .where(BaselineValue.baseline_edition_id == e.id)
            .order_by(BaselineValue.id)
        ).all()
        rows = tuple(
            BaselineRow(
                v.indicator, v.theme, v.label_fr, v.label_en, v.value_pct, v.qualifier, v.note
            )
            for v in values
        )
        tables.append(BaselineTable(e.code, e.title, e.year, e.source, rows))
    if not any(t.code == SHIPPED_CODE for t in tables):
        tables.insert(0, shipped_baseline())
    return tables
