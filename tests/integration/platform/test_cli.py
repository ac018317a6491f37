"""The crieur command line of CONTRACT.md."""

from __future__ import annotations

import subprocess
import sys

import pytest

from contacts.db import db


def test_org_create_prints_the_slug(runner):
    result = runner.invoke(
        args=[
            "org",
            "create",
            "Communauté de communes du Val",
            "--kind",
            "intercommunalite",
            "--region",
            "Normandie",
            "--population",
            "42000",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "communaute-de-communes-du-val"


def test_user_create_reads_the_password_from_stdin(runner, org):
    from webapp.auth import authenticate

    result = runner.invoke(
        args=["user", "create", "Agent@Example.org", "--org", org.slug, "--role", "officer"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert authenticate("agent@example.org", "a long enough password") is not None


def test_an_analyst_takes_no_org(runner, org):
    result = runner.invoke(
        args=["user", "create", "a@example.org", "--org", org.slug, "--role", "analyst"],
        input="a long enough password\n",
    )
    assert result.exit_code != 0


def test_token_create_prints_a_working_token(runner, client, org):
    from tests.factories import make_user

    user = make_user(org)
    db.session.commit()
    result = runner.invoke(args=["token", "create", user.email])
    assert result.exit_code == 0
    token = result.output.strip()
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.get_json()["user"]["email"] == user.email


def test_demo_seeds_users_once_and_reminds_the_sign_ins_later(runner):
    from webapp.models import User

    first = runner.invoke(args=["demo", "--if-empty"])
    assert first.exit_code == 0
    assert "agent@demo.crieur.fr" in first.output
    users = db.session.scalar(db.select(db.func.count(User.id)))
    second = runner.invoke(args=["demo", "--if-empty"])
    assert "Démo déjà en place" in second.output
    assert first.output.split(":", 1)[1].strip() in second.output  # same passwords
    assert db.session.scalar(db.select(db.func.count(User.id))) == users


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    "args",
    [
        ["org", "create", "X", "--kind", "castle", "--region", "Y"],
        ["org", "create", "X", "--region", "Y"],
        ["user", "create", "not-an-email", "--org", "nowhere", "--role", "officer"],
        ["user", "create", "a@b.fr", "--role", "emperor"],
        ["token", "create", "nobody@example.org"],
        ["no-such-command"],
    ],
)
def test_bad_input_gives_one_line_on_stderr_and_a_non_zero_status(app, args, tmp_path):
    env = {
        "CRIEUR_DATABASE_URL": app.config["CRIEUR_DATABASE_URL"],
        "CRIEUR_INSTANCE_PATH": str(tmp_path / "cli-instance"),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "webapp.cli", *args],
        input="short\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "INFO" not in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("crieur: erreur")
