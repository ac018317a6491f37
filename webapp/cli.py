"""The ``crieur`` command line (CONTRACT.md). ``flask --app webapp …`` offers the same commands.

Errors are one line on stderr and a non-zero status, so scripts can rely on them.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext
from werkzeug.serving import run_simple

from contacts.db import DomainError, db


def _create_app(*_args) -> Flask:
    from webapp import create_app

    return create_app()


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def run_command(host: str, port: int) -> None:
    """Serve the web app, with the in-process worker when no broker is configured."""
    from webapp.worker import start_embedded_worker, stop_embedded_worker

    app = current_app._get_current_object()
    start_embedded_worker()
    _start_background_jobs(app)
    # Werkzeug's access log prints client IPs; Crieur keeps none, not even in logs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    click.echo(f" * Crieur sur http://{host}:{port}/ (Ctrl-C pour arrêter)")
    try:
        # app.run() refuses to start under a CLI command; run_simple is what it would call.
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    finally:
        stop_embedded_worker()


def _start_background_jobs(app: Flask) -> None:
    """Hook for periodic jobs (reconciler, scheduler) of the in-process mode."""
    try:
        from campaigns.scheduler import start_in_process
    except ImportError:
        return
    start_in_process(app)


@click.command("worker", context_settings={"ignore_unknown_options": True})
@click.option("--processes", "-p", default=2, show_default=True, type=int)
@click.option("--threads", "-t", default=4, show_default=True, type=int)
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def worker_command(processes: int, threads: int, extra: tuple[str, ...]) -> None:
    """A Dramatiq worker for CRIEUR_BROKER_URL (replaces this process)."""
    if not os.environ.get("CRIEUR_BROKER_URL"):
        raise click.UsageError(
            "CRIEUR_BROKER_URL est vide : le worker intégré tourne dans « crieur run »."
        )
    args = [
        sys.executable,
        "-m",
        "dramatiq",
        "webapp.worker_entry",
        "-p",
        str(processes),
        "-t",
        str(threads),
        "-Q",
        "default",
        "send",
        "imports",
        *extra,
    ]
    # Dramatiq prefetches twice its threads per process by default: the first process to
    # fetch then takes every lane of a campaign and the others idle (bench/reports/
    # soak.md: two rate-limited processes sent at one's rate). One message per thread.
    os.environ.setdefault("dramatiq_queue_prefetch", str(threads))
    os.execv(sys.executable, args)


@click.command("demo")
@click.option("--if-empty", is_flag=True, help="Only when no body exists yet (first start).")
@with_appcontext
def demo_command(if_empty: bool) -> None:
    """Seed a demo body with users, lists, contacts and campaigns; print the sign-ins."""
    from webapp.demo import seed_demo

    accounts = Path(current_app.instance_path) / "demo-accounts.txt"
    credentials = seed_demo(only_if_empty=if_empty)
    db.session.commit()
    if not credentials:
        if accounts.exists():
            click.echo(f"Démo déjà en place. Comptes de démonstration ({accounts}) :")
            click.echo(accounts.read_text().rstrip())
        else:
            click.echo("Des organismes existent déjà : pas de démo ajoutée.")
        return
    lines = [f"  {role:<9} {email:<32} {password}" for role, email, password in credentials]
    fd = os.open(accounts, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    click.echo("Comptes de démonstration :")
    click.echo("\n".join(lines))


@click.group("org")
def org_group() -> None:
    """Bodies (organisations)."""


@org_group.command("create")
@click.argument("name")
@click.option("--kind", required=True)
@click.option("--region", required=True)
@click.option("--population", type=int, default=None)
@with_appcontext
def org_create(name: str, kind: str, region: str, population: int | None) -> None:
    """Create a body and print its slug."""
    from contacts.organisations import create_organisation

    org = create_organisation(name, kind, region, population)
    db.session.commit()
    click.echo(org.slug)


@click.group("user")
def user_group() -> None:
    """People who sign in."""


@user_group.command("create")
@click.argument("email")
@click.option("--org", "org_slug", default=None)
@click.option(
    "--role", required=True, type=click.Choice(["officer", "director", "admin", "analyst"])
)
@with_appcontext
def user_create(email: str, org_slug: str | None, role: str) -> None:
    """Create a user; the password is read from standard input."""
    from contacts.organisations import get_by_slug
    from webapp.accounts import create_user

    org_id = None
    if role == "analyst":
        if org_slug:
            raise click.UsageError("un analyste ne prend pas --org")
    else:
        if not org_slug:
            raise click.UsageError(f"le rôle {role} demande --org")
        org = get_by_slug(org_slug)
        if org is None:
            raise click.UsageError(f"organisme inconnu : {org_slug}")
        org_id = org.id
    password = sys.stdin.readline().rstrip("\r\n")
    user = create_user(email, role, org_id, password)
    db.session.commit()
    click.echo(user.email)


@click.group("token")
def token_group() -> None:
    """API tokens."""


@token_group.command("create")
@click.argument("email")
@click.option("--name", default="cli")
@with_appcontext
def token_create(email: str, name: str) -> None:
    """Print a new API token for that user."""
    from webapp.auth import create_token, select_user

    user = db.session.scalars(select_user(email)).first()
    if user is None:
        raise click.UsageError(f"utilisateur inconnu : {email}")
    raw = create_token(user, name)
    db.session.commit()
    click.echo(raw)


COMMANDS = [run_command, worker_command, demo_command, org_group, user_group, token_group]


def register(app: Flask) -> None:
    """Add the commands to ``flask --app webapp``; extra groups come from the areas."""
    for command in COMMANDS + extra_commands():
        app.cli.add_command(command)


def extra_commands() -> list[click.Command]:
    found: list[click.Command] = []
    for module_name in ("webapp.cli_benchmark", "webapp.cli_campaigns", "webapp.cli_contacts"):
        try:
            module = __import__(module_name, fromlist=["COMMANDS"])
        except ModuleNotFoundError:
            continue
        found.extend(module.COMMANDS)
    return found


def _group() -> click.Group:
    from flask_migrate.cli import db as db_group

    group = FlaskGroup(
        create_app=_create_app,
        add_default_commands=False,
        load_dotenv=False,
        set_debug_flag=False,
        help="Crieur",
    )
    for command in [*COMMANDS, *extra_commands(), db_group]:
        group.add_command(command)
    return group


def main(argv: list[str] | None = None) -> int:
    """Console script entry point: one-line errors, non-zero exit on bad input."""
    group = _group()
    try:
        group.main(
            args=argv,
            prog_name="crieur",
            standalone_mode=False,
            obj=ScriptInfo(create_app=_create_app, load_dotenv_defaults=False),
        )
    except click.exceptions.Abort:
        click.echo("crieur: interrompu", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"crieur: erreur : {exc.format_message()}", err=True)
        return exc.exit_code or 2
    except DomainError as exc:
        click.echo(f"crieur: erreur : {exc.message}", err=True)
        return 1
    except SystemExit as exc:  # click's --help and explicit exits
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
