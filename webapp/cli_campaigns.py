"""``crieur bounces import FILE``: late bounces (RFC 3464) and mailed unsubscribe requests.

Loaded by ``webapp.cli`` (``COMMANDS``). Reads an mbox file, a Maildir directory or one
``.eml`` file, the body's return mailbox exported by its mail server.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext


@click.group("bounces")
def bounces_group() -> None:
    """Avis de non-remise reçus après l'envoi."""


@bounces_group.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--org",
    "org_slug",
    default=None,
    help="Organisme des avis sans Message-ID reconnaissable (rapprochés par adresse).",
)
@with_appcontext
def bounces_import(path: Path, org_slug: str | None) -> None:
    """Mark the deliveries named by the DSNs in PATH failed; suppress bad mailboxes."""
    from campaigns.bounces import import_bounces, read_messages
    from contacts.organisations import get_by_slug

    org_id = None
    if org_slug:
        org = get_by_slug(org_slug)
        if org is None:
            raise click.UsageError(f"organisme inconnu : {org_slug}")
        org_id = org.id
    try:
        messages = read_messages(path)
        report = import_bounces(messages, current_app.config["CRIEUR_SECRET_KEY"], org_id)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"lecture impossible de {path} : {exc}") from exc
    for line in report.lines():
        click.echo(line)


COMMANDS = [bounces_group]
