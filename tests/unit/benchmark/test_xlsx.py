"""The minimal XLSX writer: readable, typed, formula-safe, XML-safe."""

from __future__ import annotations

import io

import numpy as np
import openpyxl

from analytics.benchmark.xlsx import write_xlsx


def read(data: bytes) -> dict[str, list[list]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return {ws.title: [[c.value for c in row] for row in ws.iter_rows()] for ws in book}


def test_sheets_keep_their_order_names_and_values():
    data = write_xlsx([("Première", [["a", 1], ["b", 2.5]]), ("Seconde", [["x"]])])
    assert read(data) == {"Première": [["a", 1], ["b", 2.5]], "Seconde": [["x"]]}


def test_numpy_numbers_are_written_as_numbers():
    rows = read(write_xlsx([("S", [[np.int64(3), np.float64(0.5)]])]))["S"]
    assert rows == [[3, 0.5]]


def test_missing_and_non_finite_values_leave_the_cell_empty():
    rows = read(write_xlsx([("S", [[None, float("nan"), "z"]])]))["S"]
    assert rows == [[None, None, "z"]]


def test_characters_xml_forbids_are_dropped_and_markup_is_escaped():
    rows = read(write_xlsx([("S", [['a\x00b<c>&"d']])]))["S"]
    assert rows == [['ab<c>&"d']]


def test_formula_text_stays_text():
    rows = read(write_xlsx([("S", [["=1+1", "@SUM(A1)"]])]))["S"]
    assert rows == [["'=1+1", "'@SUM(A1)"]]
