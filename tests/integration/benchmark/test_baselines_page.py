"""The analyst loads a later reference study beside 2010 from a CSV file."""

from __future__ import annotations

import html
import io

from sqlalchemy import func, select

from analytics.benchmark.models import BaselineEdition, BaselineValue
from contacts.db import db
from tests.factories_benchmark import make_edition, sector

GOOD = (
    "indicator;theme;label_fr;value_pct;qualifier\n"
    "use_newsletters;usage;Lettres d'information;81,5;exact\n"
    "measure_click_rate;measurement;Suivent le taux de clics;47;approx\n"
).encode("cp1252")
BAD = (
    b"indicator,theme,label_fr,value_pct\n"
    b"use_newsletters,usage,Lettres,abc\n"
    b"measure_click_rate,measurement,,40\n"
    b"use_newsletters,usage,Encore,120\n"
)


def _upload(client, data: bytes, **fields):
    form = {"code": "2030", "title": "Étude 2030", "year": "2030", "source": "Association, 2030"}
    form.update(fields)
    form["file"] = (io.BytesIO(data), "reference.csv")
    return client.post("/benchmark/references", data=form, content_type="multipart/form-data")


def test_the_analyst_loads_a_later_baseline_beside_2010(client, login_as):
    edition = make_edition("2031")
    sector(edition, 6)
    login_as("analyst")
    response = _upload(client, GOOD)
    assert response.status_code == 303
    stored = db.session.scalars(select(BaselineEdition).where(BaselineEdition.code == "2030")).one()
    values = {v.indicator: v.value_pct for v in db.session.scalars(
        select(BaselineValue).where(BaselineValue.baseline_edition_id == stored.id))}  # fmt: skip
    assert values == {"use_newsletters": 81.5, "measure_click_rate": 47.0}
    listing = html.unescape(client.get("/benchmark/references").get_data(as_text=True))
    assert "Étude 2030" in listing and "2010" in listing
    trend = html.unescape(
        client.get(f"/benchmark/editions/{edition.id}?theme=usage").get_data(as_text=True)
    )
    assert "2030 (référence)" in trend
    assert '<td class="num">82 %</td>' in trend.replace("\xa0", " ")  # 81.5, rounded


def test_a_malformed_baseline_is_refused_line_by_line_and_nothing_is_stored(client, login_as):
    login_as("analyst")
    response = _upload(client, BAD)
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert "Rien n'a été enregistré" in page
    assert "Ligne 2 : « abc » n'est pas un pourcentage entre 0 et 100." in page
    assert "Ligne 3 : le libellé français est vide." in page
    assert "Ligne 4 : « 120 » n'est pas un pourcentage entre 0 et 100." in page
    assert db.session.scalar(select(func.count(BaselineValue.id))) == 0
    assert (
        db.session.scalars(select(BaselineEdition).where(BaselineEdition.code == "2030")).first()
        is None
    )


def test_a_baseline_without_its_columns_or_source_is_refused(client, login_as):
    login_as("analyst")
    response = _upload(client, b"name;value\nx;1\n", source="")
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert "Colonnes manquantes : indicator, theme, label_fr, value_pct." in page
    assert "La source est obligatoire" in page
    assert db.session.scalar(select(func.count(BaselineEdition.id))) == 0


def test_the_same_baseline_code_cannot_be_loaded_twice(client, login_as):
    login_as("analyst")
    assert _upload(client, GOOD).status_code == 303
    again = _upload(client, GOOD)
    assert again.status_code == 409
    assert "existe déjà" in html.unescape(again.get_data(as_text=True))
