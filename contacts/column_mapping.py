"""Finding the header row and the columns of a contact file; the wizard's preview.

The header is row 1, a row under a title, or absent (addresses from the first row). The
mapping is guessed from the column titles (French and English wordings, accents and case
ignored), else from the content: the column where addresses are. :func:`preview` shows
the person what was understood before anything is written.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from contacts.emails import clean_email_text
from contacts.file_sniffing import guess_delimiter, read_records, sniff, text_sample
from contacts.importfile import (
    LIMITS,
    ColumnMapping,
    FileFormat,
    FileSource,
    ImportFileError,
    Limits,
    Preview,
    clean_line,
    empty_file_error,
    no_email_column_error,
)
from contacts.lists import field_key
from contacts.xlsx_reading import declared_rows, open_workbook, xlsx_records

HEADER_SEARCH_ROWS = 10
SAMPLE_ROWS = 10
_LOOKS_LIKE_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


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
    fmt, size = sniff(source, limits)
    fmt, head = read_head(source, fmt, limits)
    fmt, headers, mapping, data = find_header(fmt, head, limits, known_fields)
    if mapping is None:
        raise no_email_column_error()
    cap = limits.report_value_max
    sample = [pad([clean_line(c, cap) for c in r], len(headers)) for _, r in data]
    return Preview(
        kind=fmt.kind,
        encoding=fmt.encoding,
        delimiter=fmt.delimiter,
        header_row=fmt.header_row,
        headers=headers,
        guessed_mapping=mapping,
        sample_rows=sample[:SAMPLE_ROWS],
        total_estimate=estimate_rows(fmt, head, data, size),
    )


@dataclass
class Head:
    rows: list[tuple[int, list[str]]]  # the first rows, blank ones dropped
    complete: bool  # the whole file is in ``rows``
    sample_text_bytes: int = 0  # for CSV estimates
    sample_records: int = 0
    declared_rows: int | None = None  # for XLSX


def read_head(source: FileSource, fmt: FileFormat, limits: Limits) -> tuple[FileFormat, Head]:
    """The first rows (to find the header and show a sample); sets the CSV delimiter."""
    if fmt.kind == "xlsx":
        with open_workbook(source) as ws:
            declared = declared_rows(ws)
            head = _first_rows(xlsx_records(ws, limits))
        return fmt, Head(head[0], head[1], declared_rows=declared)
    text_bytes = records = 0
    if fmt.delimiter is None:
        encoding = fmt.encoding or "utf-8"
        sample = text_sample(source, encoding)
        text_bytes = len(sample.encode(encoding, errors="replace"))
        delimiter, records = guess_delimiter(sample)
        fmt = FileFormat(fmt.kind, fmt.encoding, delimiter, fmt.header_row)
    rows, complete = _first_rows(read_records(source, fmt, limits))
    return fmt, Head(rows, complete, text_bytes, records)


def _first_rows(records: Iterator[tuple[int, list[str]]]) -> tuple[list[Any], bool]:
    want = HEADER_SEARCH_ROWS + SAMPLE_ROWS + 1
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
        raise empty_file_error()
    return rows, complete


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


def find_header(
    fmt: FileFormat,
    head: Head,
    limits: Limits,
    known_fields: Sequence[str] | None,
    header_row: int | None = None,
) -> tuple[FileFormat, list[str], ColumnMapping | None, list[tuple[int, list[str]]]]:
    """Locate the header (row 1, a row under a title, or none) and guess the mapping."""
    rows = head.rows
    candidates = rows[:HEADER_SEARCH_ROWS]
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
    width = max([len(headers), *(len(r) for _, r in data[:SAMPLE_ROWS])])
    if width > 0 and len(headers) < width:
        headers = _headers(headers + [""] * (width - len(headers)))
    if width > limits.max_columns:
        raise ImportFileError("too_many_columns", "Le fichier a trop de colonnes.")
    mapping = guess_mapping(headers, known_fields) if row_no else None
    if mapping is None:
        email = _email_column_by_content(data[:SAMPLE_ROWS])
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
        title = clean_line(cell, 100) or f"Colonne {_column_letter(i)}"
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


def estimate_rows(fmt: FileFormat, head: Head, data: list[Any], size: int) -> int | None:
    if head.complete:
        return len(data)
    if fmt.kind == "xlsx":
        declared = head.declared_rows
        return None if declared is None else max(declared - fmt.header_row, 0)
    if not head.sample_records or not head.sample_text_bytes:
        return None
    return max(round(size * head.sample_records / head.sample_text_bytes) - fmt.header_row, 0)


def pad(row: list[str], width: int) -> list[str]:
    return row[:width] + [""] * (width - len(row))


# The wizard shows one choice per column: "email", "first_name", "last_name",
# "field:<name>" (a custom field; "new:<name>" for one the list does not have yet) or "".


def mapping_choices(mapping: ColumnMapping, width: int) -> list[str]:
    """The wizard's choice for each of ``width`` columns, from a (guessed) mapping."""
    choices: list[str] = []
    for i in range(width):
        if mapping.email == i:
            choices.append("email")
        elif mapping.first_name == i:
            choices.append("first_name")
        elif mapping.last_name == i:
            choices.append("last_name")
        else:
            name = next((k for k, v in mapping.fields.items() if v == i), None)
            choices.append(f"field:{name}" if name else "")
    return choices


def mapping_from_choices(choices: Sequence[str]) -> ColumnMapping:
    """The mapping the person chose in the wizard, one choice per column (see above).

    Custom field names become list field keys (``contacts.lists.field_key``); the first
    column chosen for a name or a field wins; two e-mail columns are refused.
    """
    email = first = last = None
    fields: dict[str, int] = {}
    for i, choice in enumerate(choices):
        if choice == "email":
            if email is not None:
                raise ImportFileError(
                    "invalid_mapping", "Une seule colonne peut contenir les adresses e-mail."
                )
            email = i
        elif choice == "first_name" and first is None:
            first = i
        elif choice == "last_name" and last is None:
            last = i
        elif choice.startswith(("field:", "new:")):
            key = field_key(choice.split(":", 1)[1])
            if key and key not in fields:
                fields[key] = i
    if email is None:
        raise ImportFileError("no_email_column", "Choisissez la colonne des adresses e-mail.")
    return ColumnMapping(email=email, first_name=first, last_name=last, fields=fields)
