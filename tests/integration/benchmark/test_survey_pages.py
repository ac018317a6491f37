"""The survey through the pages: the analyst opens an edition, bodies answer it, the
analyst sees answers arrive."""

from __future__ import annotations

import datetime as dt
import html
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from analytics.benchmark import service
from analytics.benchmark.models import Respondent, SurveyEdition, SurveyResponse
from contacts.db import db
from tests.factories import make_org
from tests.factories_benchmark import complete_answers, make_edition, sector


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _form(answers: dict) -> dict:
    """Answers as a browser posts them (lists for checkboxes, strings elsewhere)."""
    return {k: (v if isinstance(v, list) else str(v)) for k, v in answers.items()}


def test_an_analyst_opens_an_edition_with_its_dates(client, login_as):
    login_as("analyst")
    response = client.post(
        "/benchmark/editions",
        data={
            "code": "2026",
            "title": "Baromètre 2026",
            "opens": "2026-01-05",
            "closes": "2026-03-31",
        },
    )
    assert response.status_code == 303
    edition = db.session.scalars(select(SurveyEdition)).one()
    assert (edition.code, edition.title, edition.status) == ("2026", "Baromètre 2026", "open")
    paris = ZoneInfo("Europe/Paris")
    assert edition.opens_at == dt.datetime(2026, 1, 5, tzinfo=paris)
    assert edition.closes_at == dt.datetime(2026, 3, 31, 23, 59, 59, tzinfo=paris)
    assert edition.questions["sections"], "the questions are frozen with the edition"
    page = _text(client.get("/benchmark/editions"))
    assert "2026" in page and "0 / 1" in page  # no answer yet from the one body


def test_an_edition_closing_before_it_opens_is_refused_in_french(client, login_as):
    login_as("analyst")
    response = client.post(
        "/benchmark/editions",
        data={"code": "2026", "title": "T", "opens": "2026-03-01", "closes": "2026-02-01"},
    )
    assert response.status_code == 400
    assert "La date de clôture doit suivre la date d'ouverture" in _text(response)
    assert db.session.scalar(select(func.count(SurveyEdition.id))) == 0


def test_a_body_answers_with_several_respondents_and_its_draft_is_kept(client, login_as, org):
    edition = make_edition()
    db.session.commit()
    login_as("officer")
    first = client.post("/benchmark/questionnaire/repondants", data={"role": "agent"})
    second = client.post("/benchmark/questionnaire/repondants", data={"role": "elected"})
    assert first.status_code == second.status_code == 303
    people = db.session.scalars(select(Respondent).order_by(Respondent.id)).all()
    assert [p.role for p in people] == ["agent", "elected"]

    partial = {"usages": ["lettres", "presse"], "efficacite": "4", "collecte_part_site": "37,5 %"}
    saved = client.post(f"/benchmark/questionnaire/repondants/{people[0].id}", data=partial)
    assert saved.status_code == 303
    page = _text(client.get(f"/benchmark/questionnaire/repondants/{people[0].id}"))
    assert 'value="lettres" checked' in page and 'value="presse" checked' in page
    assert 'value="evenements" checked' not in page
    assert 'value="37.5"' in page
    assert "Avancement : 3 question(s) sur" in page
    db.session.expire_all()
    assert db.session.get(Respondent, people[0].id).answers["usages"] == ["lettres", "presse"]
    assert service.get_response(org.id, edition.id).status == "draft"
    overview = _text(client.get("/benchmark/questionnaire"))
    assert "Répondant n° 1" in overview and "Répondant n° 2" in overview


def test_an_invalid_answer_is_shown_beside_its_question_and_nothing_is_saved(client, login_as):
    make_edition()
    db.session.commit()
    login_as("officer")
    client.post("/benchmark/questionnaire/repondants", data={"role": "agent"})
    person = db.session.scalars(select(Respondent)).one()
    response = client.post(
        f"/benchmark/questionnaire/repondants/{person.id}",
        data={"usages": ["lettres"], "collecte_part_site": "140"},
    )
    assert response.status_code == 400
    assert "un pourcentage entre 0 et 100" in _text(response).lower()
    db.session.expire_all()
    assert db.session.get(Respondent, person.id).answers == {}


def test_a_body_submits_once_and_a_second_submission_is_refused(client, login_as, org):
    edition = make_edition()
    db.session.commit()
    login_as("director")
    client.post("/benchmark/questionnaire/repondants", data={"role": "agent"})
    client.post("/benchmark/questionnaire/repondants", data={"role": "elected"})
    for i, person in enumerate(db.session.scalars(select(Respondent).order_by(Respondent.id))):
        answers = _form(complete_answers(edition.questions, i, "Un commentaire libre"))
        assert (
            client.post(
                f"/benchmark/questionnaire/repondants/{person.id}", data=answers
            ).status_code
            == 303
        )

    first = client.post("/benchmark/questionnaire/envoyer")
    assert first.status_code == 303
    response = service.get_response(org.id, edition.id)
    assert response.status == "submitted" and response.submitted_at is not None
    submitted_at = response.submitted_at

    second = client.post("/benchmark/questionnaire/envoyer", follow_redirects=True)
    assert "déjà été validée" in _text(second)
    db.session.expire_all()
    assert service.get_response(org.id, edition.id).submitted_at == submitted_at
    # and the answers are locked
    person = db.session.scalars(select(Respondent)).first()
    again = client.post(
        f"/benchmark/questionnaire/repondants/{person.id}", data={"usages": ["autre"]}
    )
    assert again.status_code == 303
    db.session.expire_all()
    assert db.session.get(Respondent, person.id).answers["usages"] != ["autre"]


def test_an_incomplete_response_cannot_be_submitted(client, login_as, org):
    edition = make_edition()
    db.session.commit()
    login_as("officer")
    client.post("/benchmark/questionnaire/repondants", data={"role": "agent"})
    person = db.session.scalars(select(Respondent)).one()
    client.post(f"/benchmark/questionnaire/repondants/{person.id}", data={"usages": ["lettres"]})
    page = client.post("/benchmark/questionnaire/envoyer", follow_redirects=True).get_data(
        as_text=True
    )
    assert "Réponse obligatoire" in page
    assert service.get_response(org.id, edition.id).status == "draft"


def test_the_analyst_sees_response_rates_and_aggregates_without_any_body_name(client, login_as):
    edition = make_edition("2026")
    bodies = sector(edition, 12)
    make_org("Organisme-Silencieux")  # invited, did not answer
    drafting = make_org("Organisme-En-Cours")
    service.add_respondent(drafting.id, edition.id, "agent")
    db.session.commit()
    login_as("analyst")
    page = _text(client.get(f"/benchmark/editions/{edition.id}"))
    assert "Taux de réponse" in page
    # 15 bodies invited: the 12 that answered, the two above and the analyst test's ``org``
    assert '<span class="big">15</span>' in page
    assert '<span class="big">12</span>' in page
    assert '<span class="big">1</span>' in page  # one response in progress
    assert "80 %" in page.replace("\xa0", " ")  # 12 / 15
    assert "Communes" in page and "Agents" in page
    assert 'data-chart="rates"' in page and 'id="table-rates-kind"' in page
    for view in ("region", "band", "role"):
        other = client.get(f"/benchmark/editions/{edition.id}?vue={view}&theme=measurement")
        assert other.status_code == 200
    trend = _text(client.get(f"/benchmark/editions/{edition.id}?theme=usage"))
    assert "2010" in trend and 'id="table-trend"' in trend
    for body in bodies:
        assert body.name not in page
        for email in body.emails:
            assert email not in page
    assert "Organisme-En-Cours" not in page and "Organisme-Silencieux" not in page


def test_the_analyst_closes_an_edition_and_bodies_can_no_longer_answer(client, login_as, org):
    edition = make_edition()
    db.session.commit()
    login_as("analyst")
    assert client.post(f"/benchmark/editions/{edition.id}/cloturer").status_code == 303
    db.session.expire_all()
    assert db.session.get(SurveyEdition, edition.id).status == "closed"
    officer = client.application.test_client()
    login_as("officer", test_client=officer)
    response = officer.post("/benchmark/questionnaire/repondants", data={"role": "agent"})
    assert response.status_code == 302
    assert db.session.scalar(select(func.count(SurveyResponse.id))) == 0


def test_a_body_cannot_open_another_bodys_respondent(client, login_as):
    edition = make_edition()
    other = make_org("Autre")
    person = service.add_respondent(other.id, edition.id, "agent")
    db.session.commit()
    login_as("admin")
    assert client.get(f"/benchmark/questionnaire/repondants/{person.id}").status_code == 404
    assert (
        client.post(
            f"/benchmark/questionnaire/repondants/{person.id}", data={"usages": ["lettres"]}
        ).status_code
        == 404
    )
    assert (
        client.post(f"/benchmark/questionnaire/repondants/{person.id}/supprimer").status_code == 404
    )


def test_body_users_cannot_reach_the_analyst_pages(client, login_as):
    edition = make_edition()
    db.session.commit()
    login_as("director")
    for url in (
        "/benchmark/editions",
        f"/benchmark/editions/{edition.id}",
        "/benchmark/references",
    ):
        assert client.get(url).status_code == 403, url
    assert (
        client.post(f"/benchmark/editions/{edition.id}/export", data={"format": "csv"}).status_code
        == 403
    )
    assert client.post(f"/benchmark/editions/{edition.id}/cloturer").status_code == 403


def test_the_benchmark_index_routes_each_role_to_its_page(client, login_as):
    make_edition()
    db.session.commit()
    login_as("analyst")
    assert client.get("/benchmark/").headers["Location"].endswith("/benchmark/editions")
    body_client = client.application.test_client()
    login_as("officer", test_client=body_client)
    page = body_client.get("/benchmark/")
    assert page.status_code == 200
    assert "Répondre au questionnaire" in _text(page)


def test_the_analyst_sees_a_new_edition_before_any_answer_arrives(client, login_as, org):
    edition = make_edition("2027")
    service.add_respondent(org.id, edition.id, "agent")  # one body has started, none sent
    db.session.commit()
    login_as("analyst")
    response = client.get(f"/benchmark/editions/{edition.id}")
    assert response.status_code == 200
    page = _text(response)
    assert '<span class="big">0</span>' in page  # no response sent yet
    assert '<span class="big">1</span>' in page  # one in progress
    assert "Pas encore de réponse envoyée pour ce thème." in page
