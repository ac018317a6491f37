"""Hostile input on the survey pages: markup stays text, forged forms are refused."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from analytics.benchmark import service
from analytics.benchmark.models import Respondent, SurveyEdition
from contacts.db import db
from tests.factories import PASSWORD, make_user
from tests.factories_benchmark import make_edition, sector

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>{{ config }}"


def test_markup_in_a_free_text_answer_is_shown_as_text(client, login_as):
    make_edition()
    db.session.commit()
    login_as("officer")
    client.post("/benchmark/questionnaire/repondants", data={"role": "agent"})
    person = db.session.scalars(select(Respondent)).one()
    client.post(f"/benchmark/questionnaire/repondants/{person.id}", data={"commentaire": PAYLOAD})
    page = client.get(f"/benchmark/questionnaire/repondants/{person.id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "{{ config }}" in page  # shown literally, never evaluated


def test_markup_in_an_edition_title_is_shown_as_text(client, login_as):
    login_as("analyst")
    client.post(
        "/benchmark/editions",
        data={"code": "x1", "title": PAYLOAD, "opens": "2026-01-01", "closes": "2026-02-01"},
    )
    assert db.session.scalar(select(func.count(SurveyEdition.id))) == 1
    page = client.get("/benchmark/editions").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page


def test_an_edition_code_with_path_characters_gives_a_safe_download_name(client, login_as):
    edition = make_edition('../../etc/"x;\r\nSet-Cookie: a=b')
    sector(edition, 6)
    login_as("analyst")
    response = client.post(f"/benchmark/editions/{edition.id}/export", data={"format": "csv"})
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    name = re.search(r'filename="([^"]+)"', disposition).group(1)
    assert re.fullmatch(r"barometre-[A-Za-z0-9_-]+-\d{8}\.csv", name), name
    assert "Set-Cookie" not in response.headers


class TestWithCsrf:
    @pytest.fixture
    def app_config(self):
        return {"WTF_CSRF_ENABLED": True}

    def test_a_submission_without_its_security_token_is_refused(self, client, org):
        edition = make_edition()
        person = service.add_respondent(org.id, edition.id, "agent")
        user = make_user(org, role="director")
        db.session.commit()
        login = client.get("/auth/login").get_data(as_text=True)
        token = re.search(r'name="csrf-token" content="([^"]+)"', login).group(1)
        signed_in = client.post(
            "/auth/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
        )
        assert signed_in.status_code == 302
        response = client.post("/benchmark/questionnaire/envoyer")
        assert response.status_code in (400, 403)
        forged = client.post(
            f"/benchmark/questionnaire/repondants/{person.id}", data={"usages": ["lettres"]}
        )
        assert forged.status_code in (400, 403)
        db.session.expire_all()
        assert db.session.get(Respondent, person.id).answers == {}
        assert service.get_response(org.id, edition.id).status == "draft"
