"""Reading a contact file for import: the vocabulary every reading module shares.

Pure code, no database. The import job (``contacts.imports``) opens an
:class:`~contacts.import_reader.ImportReader`, which refuses an unreadable file as a whole
with one :class:`ImportFileError` *before any row is read*, then walks it row by row,
yielding one :class:`RowResult` per non-blank row. Row problems never stop the walk.

This module holds what the reading modules and their callers share: the limits, the
file-level error and its messages, the format and mapping (JSON-able, kept on the batch),
the preview and row results, text cleaning, and the file helpers (opening, checksum,
safe name). The reading itself is split by topic:

- :mod:`contacts.file_sniffing`: size, kind, encoding, delimiter; CSV records;
- :mod:`contacts.xlsx_reading`: the workbook checks (zip bomb) and XLSX records;
- :mod:`contacts.column_mapping`: the header row, the mapping guessed from titles or
  content, and the wizard's :func:`~contacts.column_mapping.preview`;
- :mod:`contacts.import_reader`: :class:`~contacts.import_reader.ImportReader`, the
  per-row validation.

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
import enum
import hashlib
import io
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from contacts.db import DomainError
from contacts.i18n import N_

FileSource = str | os.PathLike[str] | bytes

DELIMITERS = ";,\t|"
"""The delimiters a CSV may use, in order of preference on a tie (French Excel's first)."""
CHUNK_BYTES = 1 << 20  # read size when hashing or decoding a whole file


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

    def __init__(self, code: str, message: str, *, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(code, message, status=400, params=params)


class RowStatus(enum.StrEnum):
    OK = "ok"
    INVALID = "invalid"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class FileFormat:
    """How to read a file, as sniffed by ``column_mapping.preview``; JSON-able for the job."""

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
        if kind == "csv" and delimiter not in tuple(DELIMITERS):
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
            fields={clean_line(str(k), 100): _as_index(v, str(k)) for k, v in fields.items() if k},
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


REPORT_HEADER = [N_("Ligne"), N_("Valeur"), N_("Motif")]


def file_sha256(source: FileSource) -> str:
    """Checksum of the uploaded file, kept as consent evidence (``ImportBatch.sha256``)."""
    digest = hashlib.sha256()
    with open_binary(source) as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def file_size(source: FileSource) -> int:
    if isinstance(source, bytes):
        return len(source)
    return os.stat(source).st_size


def open_binary(source: FileSource) -> IO[bytes]:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    return open(source, "rb")  # noqa: SIM115 - the caller closes it


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


def clean_line(value: str, cap: int) -> str:
    """One line of plain text: no control or invisible characters, single spaces, capped."""
    if not value.isprintable():  # controls, line breaks, odd spaces (NBSP), invisibles
        value = value.translate(_CONTROL_TABLE)
        if not value.isprintable():
            value = " ".join(value.split())
    if "  " in value or value[:1] == " " or value[-1:] == " ":
        value = " ".join(value.split())
    return value[:cap].rstrip() if len(value) > cap else value


def _as_index(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _invalid_column(name)
    try:
        index = int(value)
    except ValueError:
        raise _invalid_column(name) from None
    if index < 0:
        raise _invalid_column(name)
    return index


def _invalid_column(name: str) -> ImportFileError:
    return ImportFileError(
        "invalid_mapping", "Colonne invalide pour « %(name)s ».", params={"name": name}
    )


def _optional_index(value: Any, name: str) -> int | None:
    return None if value is None or value == "" else _as_index(value, name)


def no_email_column_error() -> ImportFileError:
    return ImportFileError(
        "no_email_column",
        "Aucune colonne d'adresses e-mail n'a été trouvée. La première ligne doit donner le "
        "titre des colonnes, dont une « E-mail » ou « Courriel ».",
    )


def empty_file_error() -> ImportFileError:
    return ImportFileError("file_empty", "Le fichier est vide.")


def binary_file_error() -> ImportFileError:
    return ImportFileError(
        "file_unreadable",
        "Ce fichier n'est ni un CSV ni un classeur .xlsx lisible. Exportez vos contacts au "
        "format CSV ou .xlsx depuis votre tableur.",
    )


def corrupt_xlsx_error() -> ImportFileError:
    return ImportFileError(
        "file_corrupt",
        "Le classeur .xlsx est endommagé ou illisible. Ouvrez-le dans votre tableur et "
        "enregistrez-le à nouveau, ou exportez-le au format CSV.",
    )


def too_many_rows_error(limits: Limits) -> ImportFileError:
    count = f"{limits.max_rows:,}".replace(",", "\u202f")
    return ImportFileError(
        "too_many_rows",
        "Le fichier dépasse %(count)s lignes. Découpez-le en plusieurs fichiers.",
        params={"count": count},
    )
