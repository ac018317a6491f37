"""A minimal, fast XLSX writer: several sheets of plain values, text as inline strings.

openpyxl (even write-only) took about 2 s for the 5,000-row benchmark export; writing
the SpreadsheetML parts directly takes about 0.1 s. Inline strings are never evaluated
as formulas, and text still goes through :func:`contacts.spreadsheet.safe_cell` so that
CSV and XLSX show the same ``'``-prefixed values. Numbers stay numbers; None is an empty
cell. Nothing else (styles, widths, dates) is supported: the benchmark needs none.
"""

from __future__ import annotations

import io
import math
import numbers
import re
import zipfile
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from contacts.spreadsheet import safe_cell


def _cell(value: Any) -> Any:
    return safe_cell(value)


def write_xlsx(sheets: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> bytes:
    """The bytes of a workbook with one sheet per (name, rows), in order."""
    ns = "http://schemas.openxmlformats.org/"
    rel = ns + "officeDocument/2006/relationships"
    ct_sheet = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Types xmlns="{ns}package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/>'
            + "".join(
                f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{ct_sheet}"/>'
                for i in range(1, len(sheets) + 1)
            )
            + "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Relationships xmlns="{ns}package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<workbook xmlns="{ns}spreadsheetml/2006/main" xmlns:r="{rel}"><sheets>'
            + "".join(
                f'<sheet name="{_xml(name)}" sheetId="{i}" r:id="rId{i}"/>'
                for i, (name, _) in enumerate(sheets, start=1)
            )
            + "</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Relationships xmlns="{ns}package/2006/relationships">'
            + "".join(
                f'<Relationship Id="rId{i}" Type="{rel}/worksheet" '
                f'Target="worksheets/sheet{i}.xml"/>'
                for i in range(1, len(sheets) + 1)
            )
            + "</Relationships>"
        ),
    }
    for i, (_, rows) in enumerate(sheets, start=1):
        files[f"xl/worksheets/sheet{i}.xml"] = _sheet_xml(rows, ns)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _sheet_xml(rows: Sequence[Sequence[Any]], ns: str) -> str:
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<worksheet xmlns="{ns}spreadsheetml/2006/main"><sheetData>'
    ]
    width = max((len(row) for row in rows), default=0)
    letters = [_column(c) for c in range(width)]
    texts: dict[str, str] = {}  # labels repeat on every row: escape each once
    for r, row in enumerate(rows, start=1):
        parts.append(f'<row r="{r}">')
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, str):
                cell = texts.get(value)
                if cell is None:
                    cell = texts[value] = (
                        f'" t="inlineStr"><is><t>{_xml(str(_cell(value)))}</t></is></c>'
                    )
                parts.append(f'<c r="{letters[c]}{r}{cell}')
                continue
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                number = float(value)
                if math.isfinite(number):
                    shown = str(int(number)) if number.is_integer() else repr(number)
                    parts.append(f'<c r="{letters[c]}{r}"><v>{shown}</v></c>')
                continue
            text = _xml(str(_cell(str(value))))
            parts.append(f'<c r="{letters[c]}{r}" t="inlineStr"><is><t>{text}</t></is></c>')
        parts.append("</row>")
    parts.append("</sheetData></worksheet>")
    return "".join(parts)


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    return xml_escape(_XML_INVALID.sub("", text), {'"': "&quot;"})
