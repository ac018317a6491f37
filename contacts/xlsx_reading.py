"""Reading an XLSX workbook for import: the zip checks before openpyxl opens it, then records.

The first worksheet is read in openpyxl's read-only, values-only mode, so memory stays
bounded; a formula is read as the value Excel last computed. Cells come back as the text
the person sees (``VRAI``/``FAUX``, whole numbers without ``.0``, ISO dates).
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

from contacts.importfile import (
    FileSource,
    ImportFileError,
    Limits,
    binary_file_error,
    corrupt_xlsx_error,
    open_binary,
)


def check_xlsx_zip(source: FileSource, limits: Limits) -> None:
    """Refuse a zip that is not a workbook, or that would inflate beyond the limits.

    Python's zipfile never inflates a member beyond its declared size (and checks its
    CRC), so the sizes in the central directory are a safe bound before openpyxl reads.
    """
    try:
        with open_binary(source) as f, zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            mimetype = b""
            if "mimetype" in names:
                with zf.open("mimetype") as member:
                    mimetype = member.read(100)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise corrupt_xlsx_error() from None
    if "xl/workbook.xml" not in names:
        if b"opendocument.spreadsheet" in mimetype:
            raise ImportFileError(
                "file_unsupported",
                "Les classeurs LibreOffice (.ods) ne sont pas pris en charge : enregistrez le "
                "fichier au format .xlsx ou CSV.",
            )
        raise binary_file_error()
    total = sum(i.file_size for i in infos)
    bomb = len(infos) > 10_000 or total > limits.max_xlsx_uncompressed
    for i in infos:
        if i.file_size > 1 << 20 and i.file_size > limits.max_xlsx_ratio * max(i.compress_size, 1):
            bomb = True
    if bomb:
        raise ImportFileError(
            "file_too_large",
            "Ce classeur est trop volumineux une fois décompressé. Enregistrez la feuille des "
            "contacts seule, au format CSV.",
        )


class open_workbook:  # noqa: N801 - used as a context manager
    """First worksheet of a workbook in openpyxl's read-only, values-only mode."""

    def __init__(self, source: FileSource) -> None:
        self.source = source

    def __enter__(self) -> Any:
        import openpyxl

        target: Any = io.BytesIO(self.source) if isinstance(self.source, bytes) else self.source
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.wb = openpyxl.load_workbook(
                    target, read_only=True, data_only=True, keep_links=False
                )
            ws = self.wb.worksheets[0]
        except Exception:
            raise corrupt_xlsx_error() from None
        return ws

    def __exit__(self, *exc: object) -> None:
        self.wb.close()


def declared_rows(ws: Any) -> int | None:
    """The row count the sheet declares (``<dimension>``); only an estimate."""
    try:
        return ws.max_row
    except Exception:
        return None


def xlsx_records(ws: Any, limits: Limits) -> Iterator[tuple[int, list[str]]]:
    # openpyxl stops at the declared dimension, which some generators write wrong
    # (often "A1"): forget it and read every row there is.
    ws.reset_dimensions()
    rows = ws.iter_rows(values_only=True)
    rownum = 0
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except Exception:
            raise corrupt_xlsx_error() from None
        rownum += 1
        yield rownum, [_xlsx_text(v) for v in values[: limits.max_columns]]


def _xlsx_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "VRAI" if value else "FAUX"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)
