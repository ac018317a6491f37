"""The JSON API of CONTRACT.md for lists, imports and contacts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contacts import consent_history, people, suppression
from contacts.db import db
from contacts.models import Contact, ImportBatch, MailingList
from tests.factories import make_list, make_org
from tests.factories_contacts import make_contact, secret

DATA = Path(__file__).resolve().parents[2] / "data"
FORM = {"source": "internal_file", "legal_basis": "consent", "attestation": "Registre des élus"}


def _post_file(client, lst_id: int, name: str, content: bytes | None = None, **form):
    data = dict(FORM, **form)
    data["file"] = (
        io.BytesIO(content if content is not None else (DATA / name).read_bytes()),
        name,
    )
    return client.post(f"/lists/{lst_id}/imports", data=data, content_type="multipart/form-data")


def test_lists_are_created_and_listed(api):
    officer = api("officer")
    response = officer.post(
        "/lists", json={"name": "Presse", "purpose": "press", "double_opt_in": False}
    )
    assert response.status_code == 201
    created = response.get_json()
    assert (created["purpose"], created["double_opt_in"]) == ("press", False)
    [listed] = officer.get("/lists").get_json()["lists"]
    assert listed["id"] == created["id"] and listed["counts"]["active"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "purpose": "newsletter"},
        {"name": "x", "purpose": "propaganda"},
        {"name": "x", "double_opt_in": "yes"},
    ],
)
def test_a_bad_list_is_refused_with_a_json_error(api, body):
    response = api("officer").post("/lists", json=body)
    assert response.status_code == 400 and "code" in response.get_json()["error"]


def test_an_import_runs_and_reports_per_row(api, org, stub_broker, stub_worker):
    officer = api("officer")
    lst = make_list(org)
    db.session.commit()
    response = _post_file(officer, lst.id, "excel-cp1252-semicolon.csv")
    assert response.status_code == 202
    batch_id = response.get_json()["id"]
    stub_broker.join("imports")
    stub_worker.join()
    body = officer.get(f"/imports/{batch_id}").get_json()
    assert body["status"] == "done"
    assert (body["total_rows"], body["imported"], body["duplicates"]) == (8, 5, 1)
    assert body["rejected"] == [
        {"row": 5, "reason": "Adresse invalide : il manque le signe @"},
        {"row": 6, "reason": "Adresse e-mail manquante"},
    ]
    contact = people.find_contact(org.id, "marie.lefevre@mairie-exemple.fr")
    [entry] = consent_history.consent_history(org.id, contact.id)
    assert entry.api_token_id is not None and entry.import_batch_id == batch_id


def test_an_import_is_pending_until_the_worker_runs(api, org, stub_broker):
    officer = api("officer")
    lst = make_list(org)
    db.session.commit()
    batch_id = _post_file(officer, lst.id, "utf8-bom.csv").get_json()["id"]
    assert officer.get(f"/imports/{batch_id}").get_json()["status"] == "pending"


def test_an_unreadable_file_is_a_failed_import_that_changes_nothing(
    api, org, stub_broker, stub_worker
):
    officer = api("officer")
    lst = make_list(org)
    db.session.commit()
    batch_id = _post_file(officer, lst.id, "image-renamed.csv").get_json()["id"]
    stub_broker.join("imports")
    stub_worker.join()
    body = officer.get(f"/imports/{batch_id}").get_json()
    assert body["status"] == "failed" and "ni un CSV" in body["error"]
    assert db.session.scalar(select(func.count(Contact.id))) == 0


@pytest.mark.parametrize("app_config", [{"CRIEUR_IMPORT_MAX_BYTES": 100}])
def test_a_file_over_the_size_limit_fails_at_once(api, org, app_config):
    officer = api("officer")
    lst = make_list(org)
    db.session.commit()
    batch_id = _post_file(officer, lst.id, "excel-cp1252-semicolon.csv").get_json()["id"]
    body = officer.get(f"/imports/{batch_id}").get_json()
    assert body["status"] == "failed" and "taille maximale" in body["error"]


@pytest.mark.parametrize(
    "form",
    [{"source": "bought"}, {"legal_basis": "legitimate_interest"}, {"attestation": ""}],
)
def test_an_import_without_a_valid_origin_is_refused(api, org, form):
    officer = api("officer")
    lst = make_list(org)
    db.session.commit()
    response = _post_file(officer, lst.id, "headerless.csv", **form)
    assert response.status_code == 400
    assert db.session.scalar(select(func.count(ImportBatch.id))) == 0


def test_an_import_without_a_file_is_refused(api, org):
    lst = make_list(org)
    db.session.commit()
    response = api("officer").post(f"/lists/{lst.id}/imports", data=FORM)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "missing_file"


def test_a_contact_is_found_by_address_with_its_consent_history(api, org):
    lst = make_list(org, double_opt_in=True)
    contact = make_contact(org, lst, email="anne@exemple.fr")
    db.session.commit()
    officer = api("officer")
    [found] = officer.get("/contacts?email=%20ANNE@exemple.fr").get_json()["contacts"]
    assert found["id"] == contact.id
    assert officer.get("/contacts?email=nobody@exemple.fr").get_json() == {"contacts": []}
    body = officer.get(f"/contacts/{contact.id}").get_json()
    assert [e["action"] for e in body["consent_history"]] == ["grant", "confirm"]
    assert body["consent_history"][0]["source"] == "web_form"
    assert body["subscriptions"][0]["sendable"] is True


def test_put_ignores_organisation_consent_and_suppression(api, org):
    other = make_org()
    lst = make_list(org)
    contact = make_contact(org, lst, status="bounced")
    db.session.commit()
    response = api("officer").put(
        f"/contacts/{contact.id}",
        json={
            "first_name": "Léa",
            "organisation_id": other.id,
            "status": "active",
            "suppressed": False,
            "consent": [{"list_id": lst.id, "action": "grant"}],
            "email": "autre@exemple.fr",
        },
    )
    assert response.status_code == 200
    db.session.expire_all()
    fresh = db.session.get(Contact, contact.id)
    assert (fresh.first_name, fresh.organisation_id, fresh.status) == ("Léa", org.id, "bounced")
    assert fresh.email == contact.email
    assert suppression.is_suppressed(org.id, contact.email, secret())


def test_export_then_erase_then_reimport_stays_suppressed(api, org, stub_broker, stub_worker):
    officer = api("officer")
    lst = make_list(org)
    contact = make_contact(org, lst, email="un@mairie-exemple.fr")
    db.session.commit()
    export = officer.get(f"/contacts/{contact.id}/export").get_json()
    assert export["contact"]["email"] == "un@mairie-exemple.fr"
    assert "consent_history" in export and "deliveries" in export and "events" in export
    erased = officer.post(f"/contacts/{contact.id}/erase")
    assert erased.get_json() == {"id": contact.id, "status": "erased"}
    assert officer.get("/contacts?email=un@mairie-exemple.fr").get_json() == {"contacts": []}
    batch_id = _post_file(officer, lst.id, "headerless.csv").get_json()["id"]
    stub_broker.join("imports")
    stub_worker.join()
    body = officer.get(f"/imports/{batch_id}").get_json()
    assert body["imported"] == 2 and body["rejected"][0]["row"] == 1
    assert people.find_contact(org.id, "un@mairie-exemple.fr") is None


def test_an_analyst_gets_403_everywhere(api, org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    db.session.commit()
    analyst = api("analyst")
    for path in ("/lists", f"/lists/{lst.id}", "/contacts?email=x@y.fr", f"/contacts/{contact.id}"):
        assert analyst.get(path).status_code == 403, path
    assert analyst.post(f"/contacts/{contact.id}/erase").status_code == 403


def test_a_director_reads_contacts_but_cannot_erase(api, org):
    contact = make_contact(org, make_list(org))
    db.session.commit()
    director = api("director")
    assert director.get(f"/contacts/{contact.id}").status_code == 200
    assert director.post(f"/contacts/{contact.id}/erase").status_code == 403


def test_another_bodys_objects_are_not_found(api, org):
    other = make_org()
    lst = make_list(other)
    contact = make_contact(other, lst, email="voisin@exemple.fr")
    batch = ImportBatch(
        organisation_id=other.id, list_id=lst.id, source="internal_file", legal_basis="consent"
    )
    db.session.add(batch)
    db.session.commit()
    officer = api("officer")
    assert officer.get(f"/lists/{lst.id}").status_code == 404
    assert _post_file(officer, lst.id, "headerless.csv").status_code == 404
    assert officer.get(f"/imports/{batch.id}").status_code == 404
    assert officer.get(f"/contacts/{contact.id}").status_code == 404
    assert officer.get(f"/contacts/{contact.id}/export").status_code == 404
    assert officer.put(f"/contacts/{contact.id}", json={"first_name": "x"}).status_code == 404
    assert officer.post(f"/contacts/{contact.id}/erase").status_code == 404
    assert officer.get("/contacts?email=voisin@exemple.fr").get_json() == {"contacts": []}
    assert all(item["id"] != lst.id for item in officer.get("/lists").get_json()["lists"])
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).status == "active"
    assert db.session.scalar(select(func.count(ImportBatch.id))) == 1
    assert db.session.get(MailingList, lst.id) is not None


def test_the_openapi_document_describes_the_contacts_routes(app):
    from webapp.api import build_spec

    paths = build_spec(app)["paths"]
    for path in (
        "/lists",
        "/lists/{list_id}/imports",
        "/imports/{batch_id}",
        "/contacts/{contact_id}/erase",
    ):
        assert path in paths, path
