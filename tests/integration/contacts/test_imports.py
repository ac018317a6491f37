"""Imports end to end: the fixture files of tests/data, the job, the ledger it writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from contacts import (
    consent,
    consent_history,
    gdpr,
    import_report,
    imports,
    memberships,
    people,
    uploads,
)
from contacts.actors import run_import
from contacts.db import DomainError, db
from contacts.importfile import ImportFileError, Limits
from contacts.models import ConsentEvent, Contact, ImportBatch, Subscription
from tests.factories import make_list, make_org, make_user
from tests.factories_contacts import make_contact, make_suppressed, secret

DATA = Path(__file__).resolve().parents[2] / "data"


def start(app, org, lst, name: str, *, source="internal_file", max_bytes=10**8, user=None):
    """Store a fixture as an upload and record a pending batch for it."""
    root = Path(app.instance_path) / "imports"
    try:
        with open(DATA / name, "rb") as f:
            stored = uploads.store_upload(root, org.id, f, name, max_bytes)
        error = None
    except ImportFileError as exc:
        stored, error = None, exc
    batch = imports.create_import(
        org.id,
        lst.id,
        source=source,
        legal_basis="consent",
        attestation="Fichier des inscrits au forum des associations 2024",
        stored=stored,
        filename=name,
        uploaded_by_id=user.id if user else None,
        error=error,
    )
    db.session.commit()
    return batch


def run(app, org, lst, name: str, **kw) -> ImportBatch:
    batch = start(app, org, lst, name, **kw)
    imports.process_import(org.id, batch.id, secret=secret(), limits=Limits())
    db.session.expire_all()
    return db.session.get(ImportBatch, batch.id)


def _counts() -> tuple[int, int, int]:
    return (
        db.session.scalar(select(func.count(Contact.id))),
        db.session.scalar(select(func.count(Subscription.id))),
        db.session.scalar(select(func.count(ConsentEvent.id))),
    )


def test_an_excel_cp1252_semicolon_file_is_imported_with_a_per_row_report(app, org):
    lst = make_list(org)
    batch = run(app, org, lst, "excel-cp1252-semicolon.csv")
    assert (batch.status, batch.total_rows, batch.imported, batch.duplicates) == ("done", 8, 5, 1)
    assert [(e["row"], e["kind"]) for e in batch.rejected] == [
        (4, "duplicate"),
        (5, "invalid"),
        (6, "invalid"),
    ]
    assert import_report.rejected_for_api(batch) == [
        {"row": 5, "reason": "Adresse invalide : il manque le signe @"},
        {"row": 6, "reason": "Adresse e-mail manquante"},
    ]
    marie = people.find_contact(org.id, "marie.lefevre@mairie-exemple.fr")
    assert (marie.first_name, marie.last_name) == ("Marie", "Lefèvre")
    assert people.find_contact(org.id, "jean.dupont@mairie-exemple.fr").first_name == "Jean"


def test_every_imported_address_has_its_evidence_in_the_ledger(app, org):
    user = make_user(org)
    lst = make_list(org)
    batch = run(app, org, lst, "utf8-bom.csv", user=user)
    zoe = people.find_contact(org.id, "zoe@exämple.fr")
    [entry] = consent_history.consent_history(org.id, zoe.id)
    assert (entry.action, entry.source, entry.import_batch_id) == (
        "grant",
        "internal_file",
        batch.id,
    )
    assert entry.actor_user_id == user.id and entry.evidence == {"row": 2}
    assert len(batch.sha256) == 64 and batch.attestation.startswith("Fichier")
    assert memberships.is_sendable(org.id, zoe.id, lst.id)


def test_an_idn_address_is_kept_in_unicode_and_matches_its_punycode_form(app, org):
    lst = make_list(org)
    batch = run(app, org, lst, "utf8-bom.csv")
    assert people.find_contact(org.id, "chloe@xn--exmple-cua.fr") is not None
    assert batch.imported == 3


def test_an_xlsx_workbook_is_imported(app, org):
    lst = make_list(org)
    batch = run(app, org, lst, "contacts.xlsx")
    assert (batch.status, batch.imported, batch.duplicates) == ("done", 2, 1)
    assert people.find_contact(org.id, "noel@mairie-exemple.fr").last_name == "Œuvray"


@pytest.mark.parametrize(
    ("name", "code_words"),
    [
        ("empty.csv", "vide"),
        ("blank-lines.csv", "vide"),
        ("image-renamed.csv", "ni un CSV"),
        ("nul-bytes.csv", "ni un CSV"),
        ("no-email-column.csv", "Aucune colonne"),
        ("truncated.xlsx", "endommagé"),
        ("not-a-workbook.xlsx", "ni un CSV"),
        ("old-excel.xls", "97-2003"),
    ],
)
def test_an_unreadable_file_fails_with_one_message_and_changes_nothing(app, org, name, code_words):
    lst = make_list(org)
    make_contact(org, lst)
    before = _counts()
    batch = run(app, org, lst, name)
    assert batch.status == "failed" and code_words in batch.error
    assert batch.imported == 0 and batch.rejected == []
    assert _counts() == before


def test_a_file_over_the_configured_size_fails_before_being_stored(app, org):
    lst = make_list(org)
    batch = run(app, org, lst, "excel-cp1252-semicolon.csv", max_bytes=100)
    assert batch.status == "failed" and "taille maximale" in batch.error
    assert batch.file_path == "" and _counts() == (0, 0, 0)
    assert list((Path(app.instance_path) / "imports").rglob("*.csv")) == []


def test_formula_cells_are_kept_as_text(app, org):
    lst = make_list(org)
    run(app, org, lst, "excel-cp1252-semicolon.csv")
    contact = people.find_contact(org.id, "formule@mairie-exemple.fr")
    assert contact.first_name.startswith('=HYPERLINK("http://x?"')


def test_a_ten_thousand_character_field_is_truncated_and_reported(app, org):
    lst = make_list(org)
    batch = run(app, org, lst, "long-fields.csv")
    assert batch.imported == 1
    assert len(people.find_contact(org.id, "long@mairie-exemple.fr").first_name) == 200
    kinds = {e["kind"] for e in batch.rejected}
    assert kinds == {"warning", "invalid"}


def test_duplicate_headers_take_the_first_column(app, org):
    lst = make_list(org)
    batch = run(app, org, lst, "duplicate-headers.csv")
    assert batch.imported == 1
    assert people.find_contact(org.id, "d1@mairie-exemple.fr").last_name == "Durand"
    assert people.find_contact(org.id, "autre@mairie-exemple.fr") is None


def test_addresses_already_on_the_list_are_counted_as_duplicates(app, org):
    lst = make_list(org)
    make_contact(org, lst, email="marie.lefevre@mairie-exemple.fr", first_name="Marie-Déjà")
    batch = run(app, org, lst, "excel-cp1252-semicolon.csv")
    assert (batch.imported, batch.duplicates) == (4, 2)
    contact = people.find_contact(org.id, "marie.lefevre@mairie-exemple.fr")
    assert contact.first_name == "Marie-Déjà"  # what was stored is not changed


def test_an_existing_contact_is_added_to_another_list(app, org):
    first, second = make_list(org), make_list(org)
    run(app, org, first, "headerless.csv")
    batch = run(app, org, second, "headerless.csv")
    assert (batch.imported, batch.duplicates) == (3, 0)
    assert db.session.scalar(select(func.count(Contact.id))) == 3


def test_suppressed_addresses_are_never_re_added(app, org):
    lst = make_list(org)
    make_suppressed(org, "DEUX@mairie-exemple.fr", "bounced")
    batch = run(app, org, lst, "headerless.csv")
    assert batch.imported == 2
    [entry] = import_report.rejected_for_api(batch)
    assert entry["row"] == 2 and "opposition" in entry["reason"]
    assert people.find_contact(org.id, "deux@mairie-exemple.fr") is None


def test_a_person_who_left_the_list_is_not_put_back(app, org):
    lst = make_list(org)
    contact = make_contact(org, lst, email="un@mairie-exemple.fr")
    consent.record_consent(org.id, contact.id, lst.id, "withdraw")
    db.session.commit()
    batch = run(app, org, lst, "headerless.csv")
    assert batch.imported == 2
    assert consent.get_subscription(org.id, contact.id, lst.id).status == "withdrawn"


def test_an_erased_address_stays_suppressed_when_imported_again(app, org):
    lst = make_list(org)
    contact = make_contact(org, lst, email="trois@mairie-exemple.fr")
    gdpr.erase_contact(org.id, contact.id, secret())
    db.session.commit()
    batch = run(app, org, lst, "headerless.csv")
    assert batch.imported == 2
    assert people.find_contact(org.id, "trois@mairie-exemple.fr") is None
    assert "opposition" in import_report.rejected_for_api(batch)[0]["reason"]


def test_risky_sources_are_imported_pending_and_flagged(app, org):
    lst = make_list(org)
    run(app, org, lst, "headerless.csv", source="purchased")
    contact = people.find_contact(org.id, "un@mairie-exemple.fr")
    sub = consent.get_subscription(org.id, contact.id, lst.id)
    assert (sub.status, sub.is_risky) == ("pending", True)
    assert not memberships.is_sendable(org.id, contact.id, lst.id)


def test_an_import_into_another_bodys_list_is_not_found(app, org):
    other = make_org()
    foreign = make_list(other)
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        imports.create_import(
            org.id,
            foreign.id,
            source="internal_file",
            legal_basis="consent",
            attestation="x",
            stored=None,
        )
    assert exc.value.status == 404


def test_an_import_needs_an_attestation(app, org):
    lst = make_list(org)
    with pytest.raises(DomainError) as exc:
        imports.create_import(
            org.id,
            lst.id,
            source="internal_file",
            legal_basis="consent",
            attestation=" ",
            stored=None,
        )
    assert exc.value.code == "attestation_required"


def test_a_second_run_of_the_same_batch_does_nothing(app, org):
    lst = make_list(org)
    batch = run(app, org, lst, "headerless.csv")
    assert imports.process_import(org.id, batch.id, secret=secret()) is None
    assert db.session.scalar(select(func.count(ConsentEvent.id))) == 3


def test_small_chunks_give_the_same_result(app, org):
    lst = make_list(org)
    batch = start(app, org, lst, "excel-cp1252-semicolon.csv")
    imports.process_import(org.id, batch.id, secret=secret(), chunk_rows=2)
    db.session.expire_all()
    batch = db.session.get(ImportBatch, batch.id)
    assert (batch.imported, batch.duplicates, batch.processed_rows) == (5, 1, 8)


def test_the_dramatiq_job_runs_an_import_end_to_end(app, org, stub_broker, stub_worker):
    lst = make_list(org)
    batch = start(app, org, lst, "utf8-bom.csv")
    run_import.send(org.id, batch.id)
    stub_broker.join("imports")
    stub_worker.join()
    db.session.expire_all()
    batch = db.session.get(ImportBatch, batch.id)
    assert (batch.status, batch.imported, batch.duplicates) == ("done", 3, 1)


@pytest.mark.backends("postgres")
def test_a_large_import_refreshes_the_planner_statistics(app, org, monkeypatch):
    from sqlalchemy import text

    monkeypatch.setattr(imports, "ANALYZE_AFTER_ROWS", 3)  # the fixture has 3 addresses
    db.session.execute(text("SELECT pg_stat_reset()"))
    db.session.commit()
    lst = make_list(org)
    run(app, org, lst, "utf8-bom.csv")
    analysed = db.session.execute(
        text(
            "SELECT relname FROM pg_stat_user_tables WHERE analyze_count > 0 "
            "AND relname IN ('contacts', 'subscriptions') ORDER BY relname"
        )
    ).scalars()
    assert list(analysed) == ["contacts", "subscriptions"]
