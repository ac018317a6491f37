from __future__ import annotations

import csv
import io
import re
import zipfile

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contacts.column_mapping import guess_mapping, preview
from contacts.emails import validate_email
from contacts.import_reader import ImportReader, iter_rows
from contacts.importfile import (
    ColumnMapping,
    FileFormat,
    ImportFileError,
    Limits,
    RowStatus,
    file_sha256,
    report_rows,
    safe_filename,
)


def rows_of(source, **kwargs) -> dict[int, object]:
    return {r.row: r for r in iter_rows(source, **kwargs)}


def refusal(source, **kwargs) -> str:
    with pytest.raises(ImportFileError) as exc:
        preview(source, **kwargs)
    return exc.value.code


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def rewrite_sheet(data: bytes, edit) -> bytes:
    """The same workbook with its first sheet's XML passed through ``edit``."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = edit(content)
            dst.writestr(info.filename, content)
    return out.getvalue()


# ------------------------------------------------------------------------ encodings


def test_excel_cp1252_file_is_detected_as_windows_1252_with_semicolons(data_file):
    p = preview(data_file("excel-cp1252-semicolon.csv"))
    assert (p.encoding, p.delimiter) == ("cp1252", ";")


def test_excel_cp1252_accents_oe_and_euro_are_decoded(data_file):
    rows = rows_of(data_file("excel-cp1252-semicolon.csv"))
    assert (rows[2].last_name, rows[3].fields["Commune"], rows[3].fields["Remarque"]) == (
        "Lefèvre",
        "Cœuvres",
        "Budget 500 €",
    )


def test_utf8_bom_is_not_part_of_the_first_title(data_file):
    p = preview(data_file("utf8-bom.csv"))
    assert (p.encoding, p.delimiter, p.headers[0]) == ("utf-8-sig", ",", "E-mail")


def test_tab_separated_file_with_mixed_line_endings_is_read(data_file):
    rows = rows_of(data_file("tabs-mixed-endings.tsv"))
    assert [(n, r.email, r.first_name) for n, r in rows.items()] == [
        (2, "a@mairie-exemple.fr", "Anne"),
        (3, "b@mairie-exemple.fr", "Bruno"),
        (4, "c@mairie-exemple.fr", "Céline"),
    ]


def test_excel_unicode_text_export_in_utf16_is_read(data_file):
    rows = rows_of(data_file("excel-unicode-utf16.txt"))
    assert (rows[2].email, rows[2].first_name) == ("utf16@mairie-exemple.fr", "Élodie")


def test_bytes_undefined_in_windows_1252_fall_back_to_latin_1():
    data = "Courriel;Nom\r\na@mairie.fr;Hélène\x81\r\n".encode("latin-1")
    assert preview(data).encoding == "latin-1"


def test_utf8_is_decided_on_the_whole_file_not_its_start():
    data = (
        b"Courriel;Nom\r\n"
        + b"a@mairie.fr;Martin\r\n" * 5000
        + "z@mairie.fr;Zoé\r\n".encode("cp1252")
    )
    assert len(data) > 64 * 1024 and preview(data).encoding == "cp1252"


def test_pure_ascii_file_is_read_as_utf8():
    assert preview(b"Email\na@mairie.fr\n").encoding == "utf-8"


def test_pipe_delimiter_is_detected():
    assert preview(b"Email|Nom\na@mairie.fr|Martin\nb@mairie.fr|Durand\n").delimiter == "|"


def test_commas_in_quoted_fields_do_not_beat_the_semicolon():
    data = b'Email;Adresse\na@m.fr;"1, rue A, Paris"\nb@m.fr;"2, rue B, Lyon"\n'
    assert preview(data).delimiter == ";"


def test_path_and_bytes_sources_give_the_same_preview(data_file):
    path = data_file("utf8-bom.csv")
    assert preview(path) == preview(path.read_bytes()) == preview(str(path))


# ------------------------------------------------------------------------ refusals


def test_empty_file_is_refused(data_file):
    assert refusal(data_file("empty.csv")) == "file_empty"


def test_file_of_blank_lines_is_refused_as_empty(data_file):
    assert refusal(data_file("blank-lines.csv")) == "file_empty"


def test_image_renamed_csv_is_refused_as_unreadable(data_file):
    assert refusal(data_file("image-renamed.csv")) == "file_unreadable"


def test_nul_bytes_make_a_csv_unreadable(data_file):
    assert refusal(data_file("nul-bytes.csv")) == "file_unreadable"


def test_nul_bytes_far_into_the_file_are_found():
    data = b"Email\n" + b"a@mairie.fr\n" * 200_000 + b"\x00"
    assert refusal(data) == "file_unreadable"


def test_zip_that_is_not_a_workbook_is_refused(data_file):
    assert refusal(data_file("not-a-workbook.xlsx")) == "file_unreadable"


def test_old_xls_workbook_gets_an_explanation(data_file):
    with pytest.raises(ImportFileError) as exc:
        preview(data_file("old-excel.xls"))
    assert exc.value.code == "file_unsupported" and ".xlsx ou CSV" in exc.value.message


def test_libreoffice_ods_gets_an_explanation():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", "<x/>")
    assert refusal(buf.getvalue()) == "file_unsupported"


def test_truncated_xlsx_is_refused_as_corrupt(data_file):
    assert refusal(data_file("truncated.xlsx")) == "file_corrupt"


def test_file_over_the_configured_size_is_refused(data_file):
    assert refusal(data_file("long-fields.csv"), limits=Limits(max_bytes=1000)) == "file_too_large"


def test_file_over_50_mb_is_refused_before_being_read(tmp_path):
    # A sparse file of NUL bytes: reading it would say "unreadable", not "too large".
    path = tmp_path / "enorme.csv"
    with open(path, "wb") as f:
        f.truncate(50 * 1024 * 1024 + 1)
    with pytest.raises(ImportFileError) as exc:
        ImportReader(path)
    assert exc.value.code == "file_too_large" and "50 Mo" in exc.value.message


def test_xlsx_bomb_is_refused_from_the_zip_directory():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\x00" * (20 * 1024 * 1024))
    assert len(buf.getvalue()) < 100_000
    assert refusal(buf.getvalue()) == "file_too_large"


def test_xlsx_over_the_uncompressed_limit_is_refused(data_file):
    limits = Limits(max_xlsx_uncompressed=4000)
    assert refusal(data_file("contacts.xlsx"), limits=limits) == "file_too_large"


def test_unclosed_quote_fails_with_the_row_number():
    data = b'Email;Nom\na@mairie.fr;A\nb@mairie.fr;"B\n' + b"x" * 140_000 + b"\n"
    with pytest.raises(ImportFileError) as exc:
        ImportReader(data)
    assert exc.value.code == "file_malformed" and "ligne 3" in exc.value.message


def test_file_over_the_row_limit_is_refused_before_any_row():
    data = b"Email\n" + b"".join(b"p%d@mairie.fr\n" % i for i in range(5))
    with pytest.raises(ImportFileError) as exc:
        iter_rows(data, limits=Limits(max_rows=4))
    assert exc.value.code == "too_many_rows"


def test_file_level_errors_raise_at_the_call_not_at_the_first_row(data_file):
    with pytest.raises(ImportFileError):
        iter_rows(data_file("no-email-column.csv"))


def test_file_without_addresses_is_refused_with_a_clear_message(data_file):
    with pytest.raises(ImportFileError) as exc:
        preview(data_file("no-email-column.csv"))
    assert exc.value.code == "no_email_column" and "« Courriel »" in exc.value.message


def test_refusals_are_domain_errors_with_status_400(data_file):
    from contacts.db import DomainError

    with pytest.raises(DomainError) as exc:
        preview(data_file("empty.csv"))
    assert exc.value.status == 400


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\contacts.csv", "contacts.csv"),
        ("dossier/../liste.csv", "liste.csv"),
        ("..", "import"),
        ("", "import"),
        (".cache.csv", "cache.csv"),
        ("liste\x00\n<script>.csv", "liste___script_.csv"),
        ("Abonnés été 2024.xlsx", "Abonnés été 2024.xlsx"),
    ],
)
def test_safe_filename_keeps_only_a_plain_name(name, expected):
    assert safe_filename(name) == expected


def test_safe_filename_shortens_long_names_but_keeps_the_extension():
    name = safe_filename("a" * 300 + ".xlsx")
    assert len(name) <= 100 and name.endswith(".xlsx")


# ------------------------------------------------------------------------ mapping


@pytest.mark.parametrize(
    "title",
    [
        "Courriel",
        "E-mail",
        "email",
        "Adresse mail",
        "Mail",
        "Adresse électronique",
        "ADRESSE E-MAIL",
        "e_mail",
        "Mél",
        "Email address",
        "Adresse mail pro",
    ],
)
def test_email_column_titles_are_recognised(title):
    assert guess_mapping(["Numéro", title]).email == 1


@pytest.mark.parametrize("title", ["Prénom", "PRENOM", "First name", "prénom usuel"])
def test_first_name_titles_are_recognised(title):
    assert guess_mapping(["Courriel", title]).first_name == 1


@pytest.mark.parametrize("title", ["Nom", "Nom de famille", "Last name", "NOM D'USAGE", "Surname"])
def test_last_name_titles_are_recognised(title):
    assert guess_mapping(["Courriel", title]).last_name == 1


def test_nom_de_la_commune_is_not_taken_for_a_last_name():
    m = guess_mapping(["Courriel", "Nom de la commune"])
    assert m.last_name is None and m.fields == {"Nom de la commune": 1}


def test_duplicate_titles_get_a_numbered_suffix(data_file):
    assert preview(data_file("duplicate-headers.csv")).headers == [
        "Email",
        "Nom",
        "Nom_2",
        "Email_2",
    ]


def test_first_of_duplicate_email_columns_is_used(data_file):
    rows = rows_of(data_file("duplicate-headers.csv"))
    assert rows[2].email == "d1@mairie-exemple.fr"
    assert rows[2].fields == {"Nom_2": "Dupuis", "Email_2": "autre@mairie-exemple.fr"}


def test_empty_titles_are_named_after_their_column_letter():
    assert preview(b"Email;;Ville\na@m.fr;x;Paris\n").headers == ["Email", "Colonne B", "Ville"]


def test_headerless_file_of_addresses_starts_at_row_1(data_file):
    p = preview(data_file("headerless.csv"))
    rows = rows_of(data_file("headerless.csv"))
    assert p.header_row == 0 and rows[1].email == "un@mairie-exemple.fr" and len(rows) == 3


def test_title_rows_above_the_header_are_skipped():
    data = "Inscrits à la lettre;;\r\n;;\r\nCourriel;Prénom;Nom\r\na@m.fr;Ana;Roy\r\n".encode(
        "cp1252"
    )
    p = preview(data)
    assert p.header_row == 3 and rows_of(data)[4].first_name == "Ana"


def test_email_column_without_a_known_title_is_found_by_its_content():
    p = preview(b"Contact;Nom\na@mairie.fr;Roy\nb@mairie.fr;Lin\n")
    assert p.header_row == 1 and p.guessed_mapping.email == 0


def test_other_titled_columns_become_custom_fields():
    m = preview(b"Courriel;Commune;Fonction\na@m.fr;Albi;Maire\n").guessed_mapping
    assert m.fields == {"Commune": 1, "Fonction": 2}


def test_known_fields_restrict_custom_fields_and_keep_their_spelling():
    p = preview(b"Courriel;COMMUNE;Fonction\na@m.fr;Albi;Maire\n", known_fields=["commune"])
    assert p.guessed_mapping.fields == {"commune": 1}


def test_preview_shows_a_cleaned_sample(data_file):
    p = preview(data_file("excel-cp1252-semicolon.csv"))
    assert p.sample_rows[0] == [
        "marie.lefevre@mairie-exemple.fr",
        "Marie",
        "Lefèvre",
        "Saint-Étienne",
        "Élue déléguée",
    ]
    assert p.total_estimate == 8


def test_total_estimate_of_a_large_file_is_close():
    data = b"Email;Nom\n" + b"".join(
        b"personne%d@mairie.fr;Nom %d\n" % (i, i) for i in range(20_000)
    )
    estimate = preview(data).total_estimate
    assert 18_000 <= estimate <= 22_000


def test_mapping_round_trips_through_json():
    m = ColumnMapping(email=2, first_name=0, last_name=None, fields={"Ville": 3})
    assert ColumnMapping.from_dict(m.to_dict()) == m


@pytest.mark.parametrize(
    "bad", [{"email": -1}, {"email": "B"}, {"email": 0, "fields": {"x": 1.5}}, {"email": True}]
)
def test_mapping_from_json_rejects_bad_columns(bad):
    with pytest.raises(ImportFileError) as exc:
        ColumnMapping.from_dict(bad)
    assert exc.value.code == "invalid_mapping"


def test_mapping_from_json_requires_an_email_column():
    with pytest.raises(ImportFileError) as exc:
        ColumnMapping.from_dict({"first_name": 1})
    assert exc.value.code == "no_email_column"


def test_format_round_trips_through_json(data_file):
    fmt = preview(data_file("excel-cp1252-semicolon.csv")).format
    assert FileFormat.from_dict(fmt.to_dict()) == fmt


def test_format_from_json_rejects_an_unknown_delimiter():
    with pytest.raises(ImportFileError):
        FileFormat.from_dict({"kind": "csv", "encoding": "utf-8", "delimiter": "x"})


def test_reader_reuses_the_previewed_format_and_a_chosen_mapping(data_file):
    path = data_file("excel-cp1252-semicolon.csv")
    fmt = preview(path).format
    chosen = ColumnMapping(email=0, first_name=2, last_name=1)  # columns swapped on purpose
    rows = rows_of(path, fmt=fmt, mapping=chosen)
    assert (rows[2].first_name, rows[2].last_name, rows[2].fields) == ("Lefèvre", "Marie", {})


def test_reader_refuses_a_header_row_that_is_not_there(data_file):
    with pytest.raises(ImportFileError) as exc:
        ImportReader(data_file("utf8-bom.csv"), fmt=FileFormat("csv", "utf-8-sig", ",", 40))
    assert exc.value.code == "invalid_format"


def test_reader_refuses_a_format_of_another_kind(data_file):
    with pytest.raises(ImportFileError):
        ImportReader(data_file("contacts.xlsx"), fmt=FileFormat("csv", "utf-8", ";"))


def test_mapped_column_missing_from_a_short_row_reads_as_empty():
    rows = rows_of(
        b"Email;Nom;Ville\na@m.fr\n",
        mapping=ColumnMapping(email=0, last_name=1, fields={"Ville": 2}),
    )
    assert (rows[2].last_name, rows[2].fields) == ("", {"Ville": ""})


# ------------------------------------------------------------------------ rows


def test_row_numbers_are_those_of_the_spreadsheet(data_file):
    rows = rows_of(data_file("excel-cp1252-semicolon.csv"))
    assert sorted(rows) == [2, 3, 4, 5, 6, 8, 9, 10]  # row 7 is blank


def test_row_numbers_stay_right_after_a_multi_line_quoted_field(data_file):
    rows = rows_of(data_file("excel-cp1252-semicolon.csv"))
    assert (rows[8].email, rows[9].email) == (
        "agathe@asso-exemple.org",
        "formule@mairie-exemple.fr",
    )


def test_line_breaks_inside_a_name_become_a_space(data_file):
    assert rows_of(data_file("excel-cp1252-semicolon.csv"))[8].first_name == "Agathe (deux lignes)"


def test_reader_counts_non_blank_data_rows_before_iterating(data_file):
    assert ImportReader(data_file("excel-cp1252-semicolon.csv")).total_rows == 8


def test_case_only_duplicate_is_reported_with_the_first_row(data_file):
    dup = rows_of(data_file("excel-cp1252-semicolon.csv"))[4]
    assert (dup.status, dup.duplicate_of, dup.reason) == (
        RowStatus.DUPLICATE,
        3,
        "Doublon de la ligne 3",
    )


def test_duplicate_leaves_the_first_occurrence_as_the_one_imported(data_file):
    rows = rows_of(data_file("excel-cp1252-semicolon.csv"))
    assert rows[3].ok and rows[3].first_name == "Jean" and not rows[4].ok


def test_idn_address_is_imported_in_unicode_form(data_file):
    assert rows_of(data_file("utf8-bom.csv"))[3].email == "chloe@exämple.fr"


def test_punycode_and_unicode_spellings_are_duplicates():
    rows = rows_of("Email\nzoe@exämple.fr\nZOE@xn--exmple-cua.fr\n".encode())
    assert rows[3].duplicate_of == 2


def test_invalid_address_gets_a_reason_in_french(data_file):
    row = rows_of(data_file("excel-cp1252-semicolon.csv"))[5]
    assert (row.status, row.reason) == (
        RowStatus.INVALID,
        "Adresse invalide : il manque le signe @",
    )


def test_row_with_data_but_no_address_is_reported_as_missing(data_file):
    assert rows_of(data_file("excel-cp1252-semicolon.csv"))[6].reason == "Adresse e-mail manquante"


def test_spaces_around_an_address_are_not_a_problem(data_file):
    assert rows_of(data_file("utf8-bom.csv"))[5].email == "leo@mairie-exemple.fr"


def test_over_long_address_is_rejected_with_a_reason(data_file):
    row = rows_of(data_file("long-fields.csv"))[3]
    assert row.reason == "Adresse trop longue (268 caractères, 254 au maximum)"


def test_report_shows_a_shortened_value():
    row = rows_of(("Email\n" + "x" * 5000 + "\n").encode())[2]
    assert len(row.value) == 100 and row.value.endswith("…")


def test_ten_thousand_character_name_is_truncated_with_a_warning(data_file):
    row = rows_of(data_file("long-fields.csv"))[2]
    assert (
        row.ok
        and len(row.first_name) == 200
        and row.warnings == ("Prénom tronqué à 200 caractères",)
    )


def test_long_custom_field_is_truncated_at_field_max():
    row = rows_of(("Email;Note\na@m.fr;" + "n" * 3000 + "\n").encode())[2]
    assert len(row.fields["Note"]) == 1000 and "Note tronqué" in row.warnings[0]


def test_html_and_script_in_names_are_kept_as_plain_text(data_file):
    row = rows_of(data_file("excel-cp1252-semicolon.csv"))[10]
    assert (row.first_name, row.last_name) == ("<script>alert(1)</script>", "<b>Gras</b>")


def test_control_and_invisible_characters_are_removed_from_names():
    data = 'Email;Prénom\na@m.fr;"Jean\x07\x1b\u202e\u200b-Pierre\x00\tde\r\n  Lyon"\n'.encode()
    with pytest.raises(ImportFileError):  # a NUL byte makes the whole file unreadable
        preview(data)
    row = rows_of(data.replace(b"\x00", b""))[2]
    assert row.first_name == "Jean-Pierre de Lyon"


def test_formula_cells_are_kept_as_data_on_import(data_file):
    row = rows_of(data_file("excel-cp1252-semicolon.csv"))[9]
    assert (
        row.first_name == '=HYPERLINK("http://x?"&A1;"clic")'
        and row.fields["Remarque"] == "@SUM(1+1)"
    )


def test_report_entry_has_row_value_and_reason(data_file):
    row = rows_of(data_file("excel-cp1252-semicolon.csv"))[5]
    assert row.report_entry() == {"row": 5, "value": "pas-une-adresse", "reason": row.reason}


def test_report_rows_list_only_the_problems(data_file):
    rows = list(report_rows(iter_rows(data_file("excel-cp1252-semicolon.csv"))))
    assert [r[0] for r in rows] == [4, 5, 6]


def test_deliverability_check_is_passed_to_the_validator(monkeypatch):
    import contacts.import_reader as import_reader

    calls = []

    def spy(value, *, check_deliverability):
        calls.append(check_deliverability)
        return validate_email(value)

    monkeypatch.setattr(import_reader, "validate_email", spy)
    list(iter_rows(b"Email\na@m.fr\n", check_deliverability=True))
    assert calls == [True]


# ------------------------------------------------------------------------ xlsx


def test_xlsx_numbers_and_dates_are_read_as_text(data_file):
    rows = rows_of(data_file("contacts.xlsx"))
    assert rows[2].fields == {"Code postal": "75001", "Inscrit le": "2024-03-01"}
    assert rows[6].fields == {"Code postal": "01000", "Inscrit le": "2024-12-25T09:00:00"}


def test_xlsx_rows_keep_their_sheet_numbers_across_a_blank_row(data_file):
    rows = rows_of(data_file("contacts.xlsx"))
    assert sorted(rows) == [2, 3, 5, 6] and rows[3].duplicate_of == 2


def test_xlsx_accents_and_ligatures_are_kept(data_file):
    assert rows_of(data_file("contacts.xlsx"))[6].last_name == "Œuvray"


def test_xlsx_with_a_wrong_declared_size_is_read_entirely():
    data = xlsx_bytes([["Email"], ["a@m.fr"], ["b@m.fr"], ["c@m.fr"]])
    lying = rewrite_sheet(
        data, lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1"', xml)
    )
    assert [r.email for r in iter_rows(lying)] == ["a@m.fr", "b@m.fr", "c@m.fr"]


def test_xlsx_formula_reads_as_the_value_excel_last_computed():
    data = xlsx_bytes([["Email", "Prénom"], ["a@m.fr", '=UPPER("jean")']])
    cached = rewrite_sheet(
        data,
        lambda xml: xml.replace(b"<v />", b"<v>JEAN</v>").replace(
            b'<c r="B2"', b'<c r="B2" t="str"'
        ),
    )
    assert rows_of(cached)[2].first_name == "JEAN"


def test_xlsx_title_rows_above_the_header_are_skipped():
    data = xlsx_bytes([["Liste des inscrits"], [], ["Courriel", "Nom"], ["a@m.fr", "Roy"]])
    assert preview(data).header_row == 3 and rows_of(data)[4].last_name == "Roy"


def test_xlsx_over_the_row_limit_is_refused_before_any_row():
    data = xlsx_bytes([["Email"]] + [[f"p{i}@m.fr"] for i in range(30)])
    with pytest.raises(ImportFileError) as exc:
        iter_rows(data, limits=Limits(max_rows=20))
    assert exc.value.code == "too_many_rows"


def test_file_checksum_is_the_sha256_of_the_bytes(data_file):
    import hashlib

    path = data_file("contacts.xlsx")
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------ properties

# Printable Windows-1252 text with line breaks and tabs (control characters are dropped
# on import, which the expectation below does not model).
_CP1252_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="cp1252", exclude_categories=("Cc", "Cf")), st.sampled_from("\t\r\n ")
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(names=st.lists(_CP1252_TEXT, min_size=1, max_size=8))
def test_any_excel_csv_round_trips_names_and_row_numbers(names):
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Courriel", "Prénom"])
    for i, name in enumerate(names):
        writer.writerow([f"p{i}@mairie.fr", name])
    rows = rows_of(buf.getvalue().encode("cp1252"))
    assert [(n, r.email) for n, r in rows.items()] == [
        (i + 2, f"p{i}@mairie.fr") for i in range(len(names))
    ]
    assert [r.first_name for r in rows.values()] == [" ".join(n.split())[:200] for n in names]
