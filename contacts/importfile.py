"""Reading a contact file for import: sniffing, column mapping and per-row validation.

Pure code, no database: the import job (``contacts`` services) opens an
:class:`ImportReader`, which refuses an unreadable file as a whole with one
:class:`ImportFileError` *before any row is read*, then walks it row by row, yielding one
:class:`RowResult` per non-blank row. Row problems never stop the walk.

What it accepts is what people really have: CSV from Excel (Windows-1252, ``;``), UTF-8
with or without BOM, UTF-16 "texte Unicode" exports, any of ``; , tab |`` as delimiter,
mixed line endings, and XLSX. Files are streamed (``csv`` module, openpyxl read-only), so
memory stays bounded whatever the row count; the only thing that grows is the set of
addresses already seen, needed to report duplicates.

Decisions:
- Row numbers are those the person sees in their spreadsheet: the header is row 1, a
  quoted field spanning several lines is still one row, blank rows still count.
- Names and custom fields are cleaned (control and invisible characters removed, runs of
  whitespace and line breaks become one space) and **truncated, not rejected**, beyond
  ``Limits.name_max`` / ``Limits.field_max`` characters: the address is what matters, and
  the truncation is reported as a warning on the row. HTML stays as typed: escaping is
  the view's job, and exports go through :mod:`contacts.spreadsheet`.
- Formula cells: a CSV cell ``=HYPERLINK(...)`` is kept as text; an XLSX formula is read
  as the value Excel last computed (``data_only``), i.e. what the person sees.
- The first occurrence of an address wins; later ones are duplicates, compared on the
  lowercased normalised form (see :mod:`contacts.emails`).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import enum
import hashlib
import io
import os
import re
import unicodedata
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from contacts.db import DomainError
from contacts.emails import InvalidEmail, clean_email_text, validate_email

FileSource = str | os.PathLike[str] | bytes

_CHUNK = 1 << 20
_SAMPLE_BYTES = 64 * 1024
_HEADER_SEARCH_ROWS = 10
_SAMPLE_ROWS = 10
_DELIMITERS = ";,\t|"
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_LOOKS_LIKE_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class Limits:
    """What an import accepts; the defaults are the product's, tests pass smaller ones."""

    max_bytes: int = 50 * 1024 * 1024
    max_rows: int = 1_000_000
    max_columns: int = 500
    max_xlsx_uncompressed: int = 500 * 1024 * 1024  # sum of the zip members, as declared
    max_xlsx_ratio: int = 200  # per member over 1 MB: a higher ratio is a zip bomb
    name_max: int = 200  # Contact.first_name / last_name are String(200)
    field_max: int = 1000
    report_value_max: int = 100  # how much of a rejected value the report shows


LIMITS = Limits()


class ImportFileError(DomainError):
    """The file as a whole cannot be imported; nothing from it may be written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, status=400)


class RowStatus(enum.StrEnum):
    OK = "ok"
    INVALID = "invalid"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class FileFormat:
    """How to read a file, as sniffed by :func:`preview`; JSON-able for the import job."""

    kind: str  # "csv" | "xlsx"
    encoding: str | None = None  # csv only
    delimiter: str | None = None  # csv only
    header_row: int = 1  # spreadsheet row of the column titles; 0 when there is none

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileFormat:
        kind = data.get("kind")
        if kind not in ("csv", "xlsx"):
            raise ImportFileError("invalid_format", "Format de fichier inconnu.")
        delimiter = data.get("delimiter")
        if kind == "csv" and delimiter not in tuple(_DELIMITERS):
            raise ImportFileError("invalid_format", "Séparateur de colonnes non pris en charge.")
        encoding = data.get("encoding")
        if kind == "csv":
            try:
                codecs.lookup(str(encoding))
            except LookupError:
                raise ImportFileError("invalid_format", "Encodage inconnu.") from None
        return cls(kind, encoding, delimiter, _as_index(data.get("header_row", 1), "header_row"))


@dataclass(frozen=True)
class ColumnMapping:
    """Which column (0-based index) holds what; ``fields`` maps custom field names."""

    email: int
    first_name: int | None = None
    last_name: int | None = None
    fields: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "fields": dict(self.fields),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnMapping:
        """Build from JSON (the wizard's form or ``ImportBatch.mapping``), checking types."""
        if data.get("email") is None:
            raise ImportFileError("no_email_column", "Choisissez la colonne des adresses e-mail.")
        fields = data.get("fields") or {}
        if not isinstance(fields, Mapping):
            raise ImportFileError("invalid_mapping", "Correspondance des colonnes invalide.")
        return cls(
            email=_as_index(data["email"], "email"),
            first_name=_optional_index(data.get("first_name"), "first_name"),
            last_name=_optional_index(data.get("last_name"), "last_name"),
            fields={_clean_line(str(k), 100): _as_index(v, str(k)) for k, v in fields.items() if k},
        )

    def columns(self) -> list[int]:
        cols = [self.email, self.first_name, self.last_name, *self.fields.values()]
        return [c for c in cols if c is not None]


@dataclass(frozen=True)
class Preview:
    """What the import wizard shows before anything is written."""

    kind: str
    encoding: str | None
    delimiter: str | None
    header_row: int
    headers: list[str]
    guessed_mapping: ColumnMapping  # always has an e-mail column, else preview() raised
    sample_rows: list[list[str]]
    total_estimate: int | None  # data rows, exact for small files, else estimated

    @property
    def format(self) -> FileFormat:
        return FileFormat(self.kind, self.encoding, self.delimiter, self.header_row)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~1 µs a row
class RowResult:
    """One non-blank data row: the address to import, or why not."""

    row: int  # as the person sees it in their spreadsheet (header = row 1)
    status: RowStatus
    email: str | None  # normalised address, when status is ok or duplicate
    value: str  # the e-mail cell as found (cleaned, shortened), for the report
    reason: str = ""  # plain French, empty when ok
    first_name: str = ""
    last_name: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    duplicate_of: int | None = None  # row of the first occurrence
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == RowStatus.OK

    def report_entry(self) -> dict[str, Any]:
        """The line of the per-row report (CONTRACT: ``{"row", "reason"}`` plus the value)."""
        return {"row": self.row, "value": self.value, "reason": self.reason}


# ---------------------------------------------------------------------------- public API


def preview(
    source: FileSource,
    *,
    limits: Limits = LIMITS,
    known_fields: Sequence[str] | None = None,
) -> Preview:
    """Sniff a file and guess its mapping, for the wizard; raises :class:`ImportFileError`.

    ``known_fields`` are the list's custom fields: when given, only columns whose title
    matches one of them are proposed as custom fields; otherwise every other titled column is.
    """
    fmt, size = _sniff(source, limits)
    fmt, head = _read_head(source, fmt, limits)
    fmt, headers, mapping, data = _find_header(fmt, head, limits, known_fields)
    if mapping is None:
        raise _no_email_column()
    cap = limits.report_value_max
    sample = [_pad([_clean_line(c, cap) for c in r], len(headers)) for _, r in data]
    return Preview(
        kind=fmt.kind,
        encoding=fmt.encoding,
        delimiter=fmt.delimiter,
        header_row=fmt.header_row,
        headers=headers,
        guessed_mapping=mapping,
        sample_rows=sample[:_SAMPLE_ROWS],
        total_estimate=_estimate_rows(fmt, head, data, size),
    )


class ImportReader:
    """A file opened for import. File-level problems raise in the constructor.

    ``total_rows`` is the exact count of non-blank data rows for CSV (from a first
    parsing pass, which also finds malformed files before anything is imported); for
    XLSX it is exact for small sheets, else the sheet's declared size, or None when the
    sheet declares none. Iterating yields one :class:`RowResult` per non-blank row; it
    may raise :class:`ImportFileError` only for an XLSX whose declared size lied (too many
    rows) or whose XML is corrupt further down, which the job must treat as a failed
    import (roll back, or mark the batch failed).
    """

    def __init__(
        self,
        source: FileSource,
        mapping: ColumnMapping | None = None,
        *,
        fmt: FileFormat | None = None,
        limits: Limits = LIMITS,
        check_deliverability: bool = False,
        known_fields: Sequence[str] | None = None,
    ) -> None:
        sniffed, _ = _sniff(source, limits)
        if fmt is None:
            fmt = sniffed
        elif fmt.kind != sniffed.kind:
            raise ImportFileError("invalid_format", "Le fichier n'est plus du type annoncé.")
        given_header = None if fmt is sniffed else fmt.header_row
        fmt, head = _read_head(source, fmt, limits)
        found, headers, guessed, _ = _find_header(fmt, head, limits, known_fields, given_header)
        self.source = source
        self.format = found
        self.headers = headers
        if mapping is None:
            if guessed is None:
                raise _no_email_column()
            mapping = guessed
        self.mapping = mapping
        self.limits = limits
        self.check_deliverability = check_deliverability
        if any(c >= limits.max_columns for c in self.mapping.columns()):
            raise ImportFileError("invalid_mapping", "Colonne choisie hors du fichier.")
        self.total_rows = self._count_rows(head)

    def __iter__(self) -> Iterator[RowResult]:
        return self._rows()

    def _count_rows(self, head: _Head) -> int | None:
        limits, fmt = self.limits, self.format
        if fmt.kind == "xlsx":
            if head.complete:
                total = sum(1 for n, _ in head.rows if n > fmt.header_row)
            elif head.declared_rows is None:
                return None
            else:
                total = max(head.declared_rows - fmt.header_row, 0)
        else:
            records = _records(self.source, fmt, limits)
            total = sum(1 for n, r in records if n > fmt.header_row and "".join(r).strip())
        if total > limits.max_rows:
            raise _too_many_rows(limits)
        return total

    def _rows(self) -> Iterator[RowResult]:
        m, limits, header_row = self.mapping, self.limits, self.format.header_row
        ei, fi, li = m.email, m.first_name, m.last_name
        custom = tuple(m.fields.items())
        name_max, field_max, value_max = limits.name_max, limits.field_max, limits.report_value_max
        deliverability = self.check_deliverability
        OK, INVALID, DUPLICATE = RowStatus.OK, RowStatus.INVALID, RowStatus.DUPLICATE  # noqa: N806
        seen: dict[str, int] = {}
        count = 0
        for rownum, rec in _records(self.source, self.format, limits):
            if rownum <= header_row:
                continue
            n = len(rec)
            raw = rec[ei] if ei < n else ""
            if not raw or raw.isspace():
                if not "".join(rec).strip():
                    continue  # a blank row, as spreadsheets leave them
                raw = ""
            count += 1
            if count > limits.max_rows:
                raise _too_many_rows(limits)
            notes: list[str] = []
            first = _cell(rec, fi, n, name_max, "Prénom", notes) if fi is not None else ""
            last = _cell(rec, li, n, name_max, "Nom", notes) if li is not None else ""
            extra = {k: _cell(rec, i, n, field_max, k, notes) for k, i in custom}
            value = clean_email_text(raw)
            shown = value if len(value) <= value_max else value[: value_max - 1] + "…"
            quick = value.lower()
            first_row = seen.get(quick)
            if first_row is None:
                try:
                    email = validate_email(value, check_deliverability=deliverability)
                except InvalidEmail as exc:
                    yield RowResult(
                        rownum, INVALID, None, _clean_line(shown, value_max),
                        exc.reason, first, last, extra, None, tuple(notes) if notes else (),
                    )  # fmt: skip
                    continue
                first_row = seen.get(email)
                if first_row is None:
                    seen[email] = rownum
                    yield RowResult(
                        rownum, OK, email, shown, "", first, last, extra, None,
                        tuple(notes) if notes else (),
                    )  # fmt: skip
                    continue
            else:
                email = quick  # equal to a normalised address already seen
            yield RowResult(
                rownum, DUPLICATE, email, shown, f"Doublon de la ligne {first_row}",
                first, last, extra, first_row, tuple(notes) if notes else (),
            )  # fmt: skip


def iter_rows(
    source: FileSource,
    mapping: ColumnMapping | None = None,
    *,
    fmt: FileFormat | None = None,
    limits: Limits = LIMITS,
    check_deliverability: bool = False,
) -> Iterator[RowResult]:
    """Walk a file's rows; file-level problems raise at the call, before the first row."""
    reader = ImportReader(
        source, mapping, fmt=fmt, limits=limits, check_deliverability=check_deliverability
    )
    return iter(reader)


def safe_filename(name: str, default: str = "import") -> str:
    """A file name safe to store and show: no directory, no ``..``, no control characters."""
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ]", "_", name).strip(" .")
    name = re.sub(r"\.{2,}", ".", name)
    if len(name) > 100:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 95 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:100]
    return name or default


def report_rows(results: Iterable[RowResult]) -> Iterator[list[Any]]:
    """Rows of the downloadable report (not-ok rows), for :mod:`contacts.spreadsheet`."""
    for r in results:
        if not r.ok:
            yield [r.row, r.value, r.reason]


REPORT_HEADER = ["Ligne", "Valeur", "Motif"]

# Reasons the import job adds for checks that need the database, worded like the others.
REASON_ALREADY_IN_LIST = "Déjà dans cette liste"
REASON_SUPPRESSED = (
    "Adresse bloquée (désinscription, adresse en erreur ou effacement) : jamais réimportée"
)


def file_sha256(source: FileSource) -> str:
    """Checksum of the uploaded file, kept as consent evidence (``ImportBatch.sha256``)."""
    digest = hashlib.sha256()
    with _open_binary(source) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- sniffing


def _size(source: FileSource) -> int:
    if isinstance(source, bytes):
        return len(source)
    return os.stat(source).st_size


def _open_binary(source: FileSource) -> IO[bytes]:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    return open(source, "rb")  # noqa: SIM115 - the caller closes it


def _sniff(source: FileSource, limits: Limits) -> tuple[FileFormat, int]:
    """Size, kind and encoding; refuses what cannot be a contact file."""
    size = _size(source)
    if size > limits.max_bytes:
        mb = limits.max_bytes / (1024 * 1024)
        shown = f"{mb:.0f} Mo" if mb >= 1 else f"{limits.max_bytes // 1024} Ko"
        raise ImportFileError(
            "file_too_large",
            f"Le fichier dépasse la taille maximale ({shown}). Découpez-le en plusieurs fichiers.",
        )
    if size == 0:
        raise _empty()
    with _open_binary(source) as f:
        head = f.read(8192)
    if head.startswith(b"PK\x03\x04"):
        _check_xlsx_zip(source, limits)
        return FileFormat("xlsx"), size
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            "file_unsupported",
            "Les classeurs Excel 97-2003 (.xls) et les classeurs protégés par mot de passe ne "
            "sont pas pris en charge : enregistrez le fichier au format .xlsx ou CSV.",
        )
    if head.startswith(b"PK") or head.startswith((b"%PDF", b"\x1f\x8b", b"\x89PNG", b"GIF8")):
        raise _binary()
    return FileFormat("csv", encoding=_detect_encoding(source, head)), size


def _detect_encoding(source: FileSource, head: bytes) -> str:
    """BOM, else UTF-8 if the whole file decodes strictly, else Windows-1252, else Latin-1."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # NUL bytes are expected there
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, cp1252 = True, True
    with _open_binary(source) as f:
        while chunk := f.read(_CHUNK):
            if b"\x00" in chunk:
                raise _binary()
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


def _check_xlsx_zip(source: FileSource, limits: Limits) -> None:
    """Refuse a zip that is not a workbook, or that would inflate beyond the limits.

    Python's zipfile never inflates a member beyond its declared size (and checks its
    CRC), so the sizes in the central directory are a safe bound before openpyxl reads.
    """
    try:
        with _open_binary(source) as f, zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            mimetype = b""
            if "mimetype" in names:
                with zf.open("mimetype") as member:
                    mimetype = member.read(100)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise _corrupt() from None
    if "xl/workbook.xml" not in names:
        if b"opendocument.spreadsheet" in mimetype:
            raise ImportFileError(
                "file_unsupported",
                "Les classeurs LibreOffice (.ods) ne sont pas pris en charge : enregistrez le "
                "fichier au format .xlsx ou CSV.",
            )
        raise _binary()
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


# ---------------------------------------------------------------------------- records


def _records(
    source: FileSource, fmt: FileFormat, limits: Limits
) -> Iterator[tuple[int, list[str]]]:
    """(spreadsheet row number, cells as text) for every row, blank ones included."""
    if fmt.kind == "xlsx":
        with _open_workbook(source) as ws:
            yield from _xlsx_records(ws, limits)
        return
    with _open_binary(source) as raw:
        text = io.TextIOWrapper(raw, encoding=fmt.encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=fmt.delimiter or ",")
        rownum = 0
        try:
            for rownum, rec in enumerate(reader, 1):
                yield rownum, rec
        except csv.Error:
            raise ImportFileError(
                "file_malformed",
                f"Le fichier est mal formé vers la ligne {rownum + 1} : un guillemet est "
                "peut-être resté ouvert, ou une cellule est démesurément longue.",
            ) from None


class _open_workbook:  # noqa: N801 - used as a context manager
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
            raise _corrupt() from None
        return ws

    def __exit__(self, *exc: object) -> None:
        self.wb.close()


def _declared_rows(ws: Any) -> int | None:
    """The row count the sheet declares (``<dimension>``); only an estimate."""
    try:
        return ws.max_row
    except Exception:
        return None


def _xlsx_records(ws: Any, limits: Limits) -> Iterator[tuple[int, list[str]]]:
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
            raise _corrupt() from None
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


# ---------------------------------------------------------------------------- mapping


@dataclass
class _Head:
    rows: list[tuple[int, list[str]]]  # the first rows, blank ones dropped
    complete: bool  # the whole file is in ``rows``
    sample_text_bytes: int = 0  # for CSV estimates
    sample_records: int = 0
    declared_rows: int | None = None  # for XLSX


def _read_head(source: FileSource, fmt: FileFormat, limits: Limits) -> tuple[FileFormat, _Head]:
    """The first rows (to find the header and show a sample); sets the CSV delimiter."""
    if fmt.kind == "xlsx":
        with _open_workbook(source) as ws:
            declared = _declared_rows(ws)
            head = _first_rows(_xlsx_records(ws, limits))
        return fmt, _Head(head[0], head[1], declared_rows=declared)
    text_bytes = records = 0
    if fmt.delimiter is None:
        encoding = fmt.encoding or "utf-8"
        sample = _text_sample(source, encoding)
        text_bytes = len(sample.encode(encoding, errors="replace"))
        delimiter, records = _guess_delimiter(sample)
        fmt = FileFormat(fmt.kind, fmt.encoding, delimiter, fmt.header_row)
    rows, complete = _first_rows(_records(source, fmt, limits))
    return fmt, _Head(rows, complete, text_bytes, records)


def _first_rows(records: Iterator[tuple[int, list[str]]]) -> tuple[list[Any], bool]:
    want = _HEADER_SEARCH_ROWS + _SAMPLE_ROWS + 1
    rows: list[tuple[int, list[str]]] = []
    complete = True
    for rownum, rec in records:
        if not "".join(rec).strip():
            continue
        if len(rows) >= want:
            complete = False
            break
        rows.append((rownum, rec))
    if hasattr(records, "close"):
        records.close()
    if not rows:
        raise _empty()
    return rows, complete


def _text_sample(source: FileSource, encoding: str) -> str:
    with _open_binary(source) as f:
        data = f.read(_SAMPLE_BYTES)
        more = bool(f.read(1))
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(data)
    if more:  # drop the partial last line
        cut = max(text.rfind("\n"), text.rfind("\r"))
        text = text[: cut + 1] if cut > 0 else text
    return text


def _guess_delimiter(sample: str) -> tuple[str, int]:
    """csv.Sniffer's guess, kept only if no other delimiter splits the rows more consistently.

    A delimiter scores by (splits rows at all, share of rows with the usual field count,
    that count); ties go to the order of ``_DELIMITERS``, French Excel's ``;`` first.
    """
    scores = {d: _delimiter_score(sample, d) for d in _DELIMITERS}

    def rank(d: str) -> tuple[bool, float, int]:
        share, usual, _ = scores[d]
        return (usual > 1, share, usual)

    best = max(_DELIMITERS, key=rank)
    try:
        sniffed = csv.Sniffer().sniff(sample[:8192], delimiters=_DELIMITERS).delimiter
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


def _norm(text: str) -> str:
    """A column title reduced for matching: no accents, case, punctuation or extra spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


_EMAIL_TITLES = {
    "email", "e mail", "mail", "courriel", "mel", "adresse mail", "adresse e mail",
    "adresse email", "adresse electronique", "adresse courriel", "adresse mel",
    "adresse de courriel", "adresse de messagerie", "messagerie", "email address",
    "e mail address", "mail address", "courriel professionnel", "email professionnel",
    "adresse mail professionnelle", "adresse electronique professionnelle",
}  # fmt: skip
_FIRST_TITLES = {
    "prenom", "prenoms", "first name", "firstname", "given name", "forename", "prenom usuel",
    "prenom du contact",
}  # fmt: skip
_LAST_TITLES = {
    "nom", "nom de famille", "last name", "lastname", "surname", "family name", "nom d usage",
    "nom patronymique", "nom de naissance", "nom du contact", "nom contact",
}  # fmt: skip
_EMAIL_WORDS = {"email", "mail", "courriel", "mel", "emails", "mails", "courriels"}


def guess_mapping(
    headers: Sequence[str], known_fields: Sequence[str] | None = None
) -> ColumnMapping | None:
    """Guess the columns from their titles; None when no title names an e-mail column."""
    normed = [_norm(h) for h in headers]
    email = next((i for i, n in enumerate(normed) if n in _EMAIL_TITLES), None)
    if email is None:
        email = next((i for i, n in enumerate(normed) if _EMAIL_WORDS & set(n.split())), None)
    if email is None:
        return None
    return _complete_mapping(email, headers, normed, known_fields)


def _complete_mapping(
    email: int, headers: Sequence[str], normed: Sequence[str], known: Sequence[str] | None
) -> ColumnMapping:
    taken = {email}
    first = next((i for i, n in enumerate(normed) if n in _FIRST_TITLES and i not in taken), None)
    if first is None:
        first = next(
            (i for i, n in enumerate(normed) if "prenom" in n.split() and "nom" not in n.split()),
            None,
        )
    last = next(
        (i for i, n in enumerate(normed) if n in _LAST_TITLES and i not in (email, first)), None
    )
    taken = {email, first, last}
    wanted = {_norm(k): k for k in known} if known is not None else None
    fields: dict[str, int] = {}
    for i, (h, n) in enumerate(zip(headers, normed, strict=True)):
        if i in taken or not n or h.startswith("Colonne "):
            continue
        if wanted is None:
            fields.setdefault(h, i)
        elif n in wanted:
            fields.setdefault(wanted[n], i)
    return ColumnMapping(email, first, last, fields)


def _find_header(
    fmt: FileFormat,
    head: _Head,
    limits: Limits,
    known_fields: Sequence[str] | None,
    header_row: int | None = None,
) -> tuple[FileFormat, list[str], ColumnMapping | None, list[tuple[int, list[str]]]]:
    """Locate the header (row 1, a row under a title, or none) and guess the mapping."""
    rows = head.rows
    candidates = rows[:_HEADER_SEARCH_ROWS]
    if header_row is not None:
        candidates = [(n, r) for n, r in rows if n == header_row] if header_row else []
        if header_row and not candidates:
            raise ImportFileError("invalid_format", "Ligne des titres introuvable.")
    else:
        for k, (n, r) in enumerate(candidates):
            if _looks_like_data(r):
                # Addresses before any recognised title: the row just above, if any,
                # holds the titles (e.g. "Contact"); none at all means no header row.
                candidates = candidates[k - 1 : k] if k else []
                break
            if guess_mapping(_headers(r)) is not None:
                candidates = [(n, r)]
                break
        else:
            candidates = candidates[:1]
    if candidates:
        row_no, rec = candidates[0]
        headers = _headers(rec)
    else:
        row_no, headers = 0, []
    data = [(n, r) for n, r in rows if n > row_no]
    width = max([len(headers), *(len(r) for _, r in data[:_SAMPLE_ROWS])])
    if width > 0 and len(headers) < width:
        headers = _headers(headers + [""] * (width - len(headers)))
    if width > limits.max_columns:
        raise ImportFileError("too_many_columns", "Le fichier a trop de colonnes.")
    mapping = guess_mapping(headers, known_fields) if row_no else None
    if mapping is None:
        email = _email_column_by_content(data[:_SAMPLE_ROWS])
        if email is not None:
            normed = [_norm(h) for h in headers]
            mapping = _complete_mapping(email, headers, normed, known_fields)
    found = FileFormat(fmt.kind, fmt.encoding, fmt.delimiter, row_no)
    return found, headers, mapping, data


def _headers(rec: Sequence[str]) -> list[str]:
    """Cleaned column titles: empty ones named after their letter, duplicates suffixed _2."""
    out: list[str] = []
    seen: Counter[str] = Counter()
    for i, cell in enumerate(rec):
        title = _clean_line(cell, 100) or f"Colonne {_column_letter(i)}"
        seen[title.lower()] += 1
        if seen[title.lower()] > 1:
            title = f"{title}_{seen[title.lower()]}"
        out.append(title)
    return out


def _column_letter(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        letters = chr(65 + r) + letters
    return letters


def _looks_like_email(value: str) -> bool:
    return bool(_LOOKS_LIKE_EMAIL.match(clean_email_text(value)))


def _looks_like_data(rec: Sequence[str]) -> bool:
    return any(_looks_like_email(c) for c in rec)


def _email_column_by_content(data: Sequence[tuple[int, list[str]]]) -> int | None:
    votes: Counter[int] = Counter()
    for _, rec in data:
        for i, c in enumerate(rec):
            if _looks_like_email(c):
                votes[i] += 1
    return votes.most_common(1)[0][0] if votes else None


def _estimate_rows(fmt: FileFormat, head: _Head, data: list[Any], size: int) -> int | None:
    if head.complete:
        return len(data)
    if fmt.kind == "xlsx":
        declared = head.declared_rows
        return None if declared is None else max(declared - fmt.header_row, 0)
    if not head.sample_records or not head.sample_text_bytes:
        return None
    return max(round(size * head.sample_records / head.sample_text_bytes) - fmt.header_row, 0)


# ---------------------------------------------------------------------------- cleaning

# Line and tab characters separate words: they become spaces. Other control characters
# (BEL, ESC, C1…) and invisible formatting ones (zero-width, bidi overrides) are dropped.
_CONTROL: dict[int, str | None] = dict.fromkeys([*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)])
_CONTROL.update(dict.fromkeys(map(ord, "\t\n\x0b\x0c\r\x85\u2028\u2029"), " "))
_CONTROL.update(
    dict.fromkeys(
        map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f"
            "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"),
        None,
    )
)  # fmt: skip
_CONTROL_TABLE = str.maketrans(_CONTROL)


def _clean_line(value: str, cap: int) -> str:
    """One line of plain text: no control or invisible characters, single spaces, capped."""
    if not value.isprintable():  # controls, line breaks, odd spaces (NBSP), invisibles
        value = value.translate(_CONTROL_TABLE)
        if not value.isprintable():
            value = " ".join(value.split())
    if "  " in value or value[:1] == " " or value[-1:] == " ":
        value = " ".join(value.split())
    return value[:cap].rstrip() if len(value) > cap else value


def _cell(rec: list[str], i: int, n: int, cap: int, label: str, notes: list[str]) -> str:
    if i >= n:
        return ""
    value = rec[i]
    if (
        len(value) <= cap
        and value.isprintable()
        and value[:1] != " "
        and value[-1:] != " "
        and "  " not in value
    ):
        return value  # the common case, kept fast: most cells need no cleaning
    cleaned = _clean_line(value, cap + 1)
    if len(cleaned) > cap:
        notes.append(f"{label} tronqué à {cap} caractères")
        return cleaned[:cap].rstrip()
    return cleaned


def _pad(row: list[str], width: int) -> list[str]:
    return row[:width] + [""] * (width - len(row))


def _as_index(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ImportFileError("invalid_mapping", f"Colonne invalide pour « {name} ».")
    try:
        index = int(value)
    except ValueError:
        raise ImportFileError("invalid_mapping", f"Colonne invalide pour « {name} ».") from None
    if index < 0:
        raise ImportFileError("invalid_mapping", f"Colonne invalide pour « {name} ».")
    return index


def _optional_index(value: Any, name: str) -> int | None:
    return None if value is None or value == "" else _as_index(value, name)


def _no_email_column() -> ImportFileError:
    return ImportFileError(
        "no_email_column",
        "Aucune colonne d'adresses e-mail n'a été trouvée. La première ligne doit donner le "
        "titre des colonnes, dont une « E-mail » ou « Courriel ».",
    )


def _empty() -> ImportFileError:
    return ImportFileError("file_empty", "Le fichier est vide.")


def _binary() -> ImportFileError:
    return ImportFileError(
        "file_unreadable",
        "Ce fichier n'est ni un CSV ni un classeur .xlsx lisible. Exportez vos contacts au "
        "format CSV ou .xlsx depuis votre tableur.",
    )


def _corrupt() -> ImportFileError:
    return ImportFileError(
        "file_corrupt",
        "Le classeur .xlsx est endommagé ou illisible. Ouvrez-le dans votre tableur et "
        "enregistrez-le à nouveau, ou exportez-le au format CSV.",
    )


def _too_many_rows(limits: Limits) -> ImportFileError:
    count = f"{limits.max_rows:,}".replace(",", "\u202f")
    return ImportFileError(
        "too_many_rows", f"Le fichier dépasse {count} lignes. Découpez-le en plusieurs fichiers."
    )
