"""Opening a contact file for import and validating it row by row.

:class:`ImportReader` refuses an unreadable file in its constructor, before any row is
read (for a CSV it parses the whole file once to count the rows and find a malformed
one); iterating then yields one :class:`~contacts.importfile.RowResult` per non-blank row:
the normalised address, or why not (invalid, duplicate of an earlier row). Names and
custom fields are cleaned and truncated with a warning, never a refusal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from contacts.column_mapping import Head, find_header, read_head
from contacts.emails import InvalidEmail, clean_email_text, validate_email
from contacts.file_sniffing import read_records, sniff
from contacts.importfile import (
    LIMITS,
    ColumnMapping,
    FileFormat,
    FileSource,
    ImportFileError,
    Limits,
    RowResult,
    RowStatus,
    clean_line,
    no_email_column_error,
    too_many_rows_error,
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
        sniffed, _ = sniff(source, limits)
        if fmt is None:
            fmt = sniffed
        elif fmt.kind != sniffed.kind:
            raise ImportFileError("invalid_format", "Le fichier n'est plus du type annoncé.")
        given_header = None if fmt is sniffed else fmt.header_row
        fmt, head = read_head(source, fmt, limits)
        found, headers, guessed, _ = find_header(fmt, head, limits, known_fields, given_header)
        self.source = source
        self.format = found
        self.headers = headers
        if mapping is None:
            if guessed is None:
                raise no_email_column_error()
            mapping = guessed
        self.mapping = mapping
        self.limits = limits
        self.check_deliverability = check_deliverability
        if any(c >= limits.max_columns for c in self.mapping.columns()):
            raise ImportFileError("invalid_mapping", "Colonne choisie hors du fichier.")
        self.total_rows = self._count_rows(head)

    def __iter__(self) -> Iterator[RowResult]:
        return self._rows()

    def _count_rows(self, head: Head) -> int | None:
        limits, fmt = self.limits, self.format
        if fmt.kind == "xlsx":
            if head.complete:
                total = sum(1 for n, _ in head.rows if n > fmt.header_row)
            elif head.declared_rows is None:
                return None
            else:
                total = max(head.declared_rows - fmt.header_row, 0)
        else:
            records = read_records(self.source, fmt, limits)
            total = sum(1 for n, r in records if n > fmt.header_row and "".join(r).strip())
        if total > limits.max_rows:
            raise too_many_rows_error(limits)
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
        for rownum, rec in read_records(self.source, self.format, limits):
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
                raise too_many_rows_error(limits)
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
                        rownum, INVALID, None, clean_line(shown, value_max),
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
    cleaned = clean_line(value, cap + 1)
    if len(cleaned) > cap:
        notes.append(f"{label} tronqué à {cap} caractères")
        return cleaned[:cap].rstrip()
    return cleaned
