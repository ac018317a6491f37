"""Sniffing and decoding a CSV: what kind of file it is, its encoding and delimiter; its records.

Refuses what cannot be a contact file before anything is read: too large, empty, a binary
(PDF, image, archive), an Excel 97-2003 or LibreOffice workbook. An XLSX is recognised
here and read by :mod:`contacts.xlsx_reading`; :func:`read_records` hands back either kind row
by row, as the spreadsheet numbers them.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from collections.abc import Iterator

from contacts.i18n import N_
from contacts.importfile import (
    CHUNK_BYTES,
    DELIMITERS,
    FileFormat,
    FileSource,
    ImportFileError,
    Limits,
    binary_file_error,
    empty_file_error,
    file_size,
    open_binary,
)
from contacts.xlsx_reading import check_xlsx_zip, open_workbook, xlsx_records

_SAMPLE_BYTES = 64 * 1024
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


def sniff(source: FileSource, limits: Limits) -> tuple[FileFormat, int]:
    """Size, kind and encoding; refuses what cannot be a contact file."""
    size = file_size(source)
    if size > limits.max_bytes:
        mb = limits.max_bytes / (1024 * 1024)
        shown = (
            N_("%(n)s Mo", n=f"{mb:.0f}") if mb >= 1 else N_("%(n)s Ko", n=limits.max_bytes // 1024)
        )
        raise ImportFileError(
            "file_too_large",
            "Le fichier dépasse la taille maximale (%(size)s). Découpez-le en plusieurs fichiers.",
            params={"size": shown},
        )
    if size == 0:
        raise empty_file_error()
    with open_binary(source) as f:
        head = f.read(8192)
    if head.startswith(b"PK\x03\x04"):
        check_xlsx_zip(source, limits)
        return FileFormat("xlsx"), size
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            "file_unsupported",
            "Les classeurs Excel 97-2003 (.xls) et les classeurs protégés par mot de passe ne "
            "sont pas pris en charge : enregistrez le fichier au format .xlsx ou CSV.",
        )
    if head.startswith(b"PK") or head.startswith((b"%PDF", b"\x1f\x8b", b"\x89PNG", b"GIF8")):
        raise binary_file_error()
    return FileFormat("csv", encoding=detect_encoding(source, head)), size


def detect_encoding(source: FileSource, head: bytes) -> str:
    """BOM, else UTF-8 if the whole file decodes strictly, else Windows-1252, else Latin-1."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # NUL bytes are expected there
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, cp1252 = True, True
    with open_binary(source) as f:
        while chunk := f.read(CHUNK_BYTES):
            if b"\x00" in chunk:
                raise binary_file_error()
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
            if cp1252 and any(b in chunk for b in _CP1252_UNDEFINED):
                cp1252 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if utf8:
        return "utf-8"
    return "cp1252" if cp1252 else "latin-1"


def read_records(
    source: FileSource, fmt: FileFormat, limits: Limits
) -> Iterator[tuple[int, list[str]]]:
    """(spreadsheet row number, cells as text) for every row, blank ones included."""
    if fmt.kind == "xlsx":
        with open_workbook(source) as ws:
            yield from xlsx_records(ws, limits)
        return
    with open_binary(source) as raw:
        text = io.TextIOWrapper(raw, encoding=fmt.encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=fmt.delimiter or ",")
        rownum = 0
        try:
            for rownum, rec in enumerate(reader, 1):
                yield rownum, rec
        except csv.Error:
            raise ImportFileError(
                "file_malformed",
                "Le fichier est mal formé vers la ligne %(row)s : un guillemet est "
                "peut-être resté ouvert, ou une cellule est démesurément longue.",
                params={"row": rownum + 1},
            ) from None


def text_sample(source: FileSource, encoding: str) -> str:
    with open_binary(source) as f:
        data = f.read(_SAMPLE_BYTES)
        more = bool(f.read(1))
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(data)
    if more:  # drop the partial last line
        cut = max(text.rfind("\n"), text.rfind("\r"))
        text = text[: cut + 1] if cut > 0 else text
    return text


def guess_delimiter(sample: str) -> tuple[str, int]:
    """csv.Sniffer's guess, kept only if no other delimiter splits the rows more consistently.

    A delimiter scores by (splits rows at all, share of rows with the usual field count,
    that count); ties go to the order of ``DELIMITERS``, French Excel's ``;`` first.
    """
    scores = {d: _delimiter_score(sample, d) for d in DELIMITERS}

    def rank(d: str) -> tuple[bool, float, int]:
        share, usual, _ = scores[d]
        return (usual > 1, share, usual)

    best = max(DELIMITERS, key=rank)
    try:
        sniffed = csv.Sniffer().sniff(sample[:8192], delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = best
    choice = sniffed if sniffed in scores and rank(sniffed) >= rank(best) else best
    if scores[choice][1] <= 1:
        choice = ","  # a single column: the delimiter does not matter
    return choice, scores[choice][2]


def _delimiter_score(sample: str, delimiter: str) -> tuple[float, int, int]:
    """(share of rows with the usual field count, that count, rows) when split on delimiter."""
    try:
        counts = [
            len(r) for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r
        ]
    except csv.Error:
        return (0.0, 0, 0)
    if not counts:
        return (0.0, 0, 0)
    usual, times = Counter(counts).most_common(1)[0]
    return (round(times / len(counts), 2), usual, len(counts))
