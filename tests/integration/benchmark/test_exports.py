"""The anonymised export from the pages, the command line and the API: nothing that names
a body, and every published cell built from at least the threshold."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from analytics.benchmark import service
from analytics.benchmark.models import BenchmarkRelease
from contacts.db import db
from tests.factories_benchmark import make_edition, sector
from webapp.cli_benchmark import write_atomically

FORMATS = ("csv", "json", "xlsx")


@pytest.fixture
def bodies(app):
    edition = make_edition("2026")
    answered = sector(edition, 12)
    db.session.commit()
    return answered


def cells(data: bytes, fmt: str) -> list[dict]:
    """The export's cells as dictionaries, whatever the format."""
    if fmt == "json":
        return json.loads(data)["cells"]
    if fmt == "csv":
        text = data.decode("utf-8-sig")
        lines = [line for line in text.splitlines() if not line.startswith("#")]
        return list(csv.DictReader(io.StringIO("\n".join(lines))))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = archive.read("xl/worksheets/sheet2.xml")
    ns = {"s": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    rows = []
    for row in ElementTree.fromstring(sheet).iterfind(".//s:row", ns):
        values = {}
        for c in row.iterfind("s:c", ns):
            col = "".join(ch for ch in c.get("r") if ch.isalpha())
            text = c.findtext(".//s:t", namespaces=ns)
            values[col] = text if text is not None else c.findtext("s:v", namespaces=ns)
        rows.append(values)
    header = rows[0]
    return [{header[k]: v for k, v in r.items()} for r in rows[1:]]


def xlsx_text(data: bytes) -> bytes:
    """Every XML part of the workbook, uncompressed (names would hide in the zip otherwise)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return b"".join(archive.read(name) for name in archive.namelist())


def assert_safe(data: bytes, fmt: str, bodies, k: int = 5) -> None:
    searchable = xlsx_text(data) if fmt == "xlsx" else data
    for body in bodies:
        for secret in (body.name, *body.emails, *body.free_texts):
            assert secret.encode() not in searchable, secret
            assert json.dumps(secret).encode() not in searchable, secret
        assert f"r{body.org.id}".encode() + b'"' not in searchable
    assert b"TEXTE-LIBRE" not in searchable and b"@" not in searchable
    rows = cells(data, fmt)
    assert rows, "the export has cells"
    published = [r for r in rows if r["statut"] == "publié"]
    assert published, "some cells are published"
    for r in published:
        assert int(float(r["nb_organismes"])) >= k, r
    for r in rows:
        if r["statut"] != "publié":
            assert r.get("valeur_pct") in (None, ""), r


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_analyst_downloads_a_safe_export_from_the_page(client, login_as, bodies, fmt):
    login_as("analyst")
    assert db.session.scalars(db.select(BenchmarkRelease.id)).first() is None
    edition = service.latest_edition()
    response = client.post(f"/benchmark/editions/{edition.id}/export", data={"format": fmt})
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Content-Disposition"].endswith(f'.{fmt}"')
    assert_safe(response.data, fmt, bodies)
    assert db.session.scalars(db.select(BenchmarkRelease)).first() is not None


def test_an_unknown_export_format_from_the_page_is_refused(client, login_as, bodies):
    login_as("analyst")
    edition = service.latest_edition()
    response = client.post(f"/benchmark/editions/{edition.id}/export", data={"format": "pdf"})
    assert response.status_code == 400
    assert "csv, json ou xlsx" in response.get_data(as_text=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_cli_writes_a_safe_export(runner, bodies, tmp_path, fmt):
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / f"barometre.{fmt}"
    result = runner.invoke(args=["benchmark", "export", "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert_safe(out.read_bytes(), fmt, bodies)
    assert [p.name for p in folder.iterdir()] == [out.name]  # no temporary file left


def test_the_cli_exports_a_named_edition_with_a_higher_threshold(runner, bodies, tmp_path):
    out = tmp_path / "x.json"
    result = runner.invoke(
        args=["benchmark", "export", "--format", "json", "--out", str(out),
              "--edition", "2026", "--threshold", "8"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_safe(out.read_bytes(), "json", bodies, k=8)
    assert "8 organismes" in json.loads(out.read_bytes())["metadata"]["Seuil de diffusion"]


@pytest.mark.parametrize(
    "args",
    [
        ["--format", "pdf"],
        ["--format", "csv", "--threshold", "2"],
        ["--format", "csv", "--edition", "inconnue"],
    ],
)
def test_the_cli_refuses_bad_input_with_a_non_zero_status(runner, bodies, tmp_path, args):
    out = tmp_path / "x.out"
    result = runner.invoke(args=["benchmark", "export", *args, "--out", str(out)])
    assert result.exit_code != 0
    assert not out.exists()


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("fmt", ["pdf", ""])
def test_a_bad_format_gives_one_line_on_stderr_and_a_non_zero_status(app, tmp_path, fmt):
    env = {
        "CRIEUR_DATABASE_URL": app.config["CRIEUR_DATABASE_URL"],
        "CRIEUR_INSTANCE_PATH": str(tmp_path / "cli-instance"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "webapp.cli", "benchmark", "export", "--format", fmt,
         "--out", str(tmp_path / "x.csv")],
        capture_output=True, text=True, env=env, timeout=60, cwd=Path(__file__).parents[3],
    )  # fmt: skip
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "INFO" not in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("crieur: erreur") and "csv, json ou xlsx" in lines[0]
    assert not (tmp_path / "x.csv").exists()


def test_a_failed_write_leaves_neither_a_partial_file_nor_a_temporary_one(tmp_path, monkeypatch):
    target = tmp_path / "exports" / "export.csv"
    target.parent.mkdir()
    target.write_bytes(b"previous complete export")

    def crash(*_args):
        raise KeyboardInterrupt  # as if the process were interrupted before the rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, b"new export, half written")
    assert target.read_bytes() == b"previous complete export"
    assert [p.name for p in target.parent.iterdir()] == ["export.csv"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_api_gives_analysts_a_safe_export(api, bodies, fmt):
    response = api("analyst").get(f"/benchmark/export?format={fmt}&edition=2026")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_safe(response.data, fmt, bodies)


def test_the_api_export_defaults_to_json_of_the_latest_edition(api, bodies):
    response = api("analyst").get("/benchmark/export")
    assert response.status_code == 200
    document = response.get_json()
    assert "2026" in document["metadata"]["Édition"]
    assert set(document["metadata"]) >= {"Période de collecte", "Seuil de diffusion", "Arrondi"}


@pytest.mark.parametrize("role", ["officer", "director", "admin"])
def test_the_api_export_is_forbidden_to_body_users(api, bodies, role):
    response = api(role).get("/benchmark/export?format=json")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_the_api_export_refuses_an_unknown_format_or_edition(api, bodies):
    analyst = api("analyst")
    bad = analyst.get("/benchmark/export?format=pdf")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "export_format"
    missing = analyst.get("/benchmark/export?edition=1999")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_exports_of_unchanged_data_agree_across_the_page_the_cli_and_the_api(
    client, login_as, api, runner, bodies, tmp_path
):
    edition = service.latest_edition()
    via_api = api("analyst").get("/benchmark/export?format=json").get_json()
    runner.invoke(args=["benchmark", "export", "--format", "json", "--out", str(tmp_path / "a")])
    via_cli = json.loads((tmp_path / "a").read_bytes())
    login_as("analyst")
    via_page = client.post(
        f"/benchmark/editions/{edition.id}/export", data={"format": "json"}
    ).get_json()
    assert via_api["cells"] == via_cli["cells"] == via_page["cells"]
    assert db.session.scalar(db.select(db.func.count(BenchmarkRelease.id))) == 1


def test_the_openapi_document_describes_the_export(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    operation = document["paths"]["/benchmark/export"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["format"]["schema"]["enum"] == ["json", "csv", "xlsx"]
    assert "403" in {str(k) for k in operation["responses"]}
