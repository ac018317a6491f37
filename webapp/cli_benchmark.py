"""``crieur benchmark export``: the anonymised sector export as a file (CONTRACT.md).

The file is written to a temporary file beside the target and renamed over it at the
end: a killed export leaves either the previous file or none, never a partial file
under the expected name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from contacts.db import db


@click.group("benchmark")
def benchmark_group() -> None:
    """Practice benchmark (baromètre)."""


def _format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # A plain option checked here, so a bad value is one line ("crieur: erreur : …").
    if value not in ("csv", "json", "xlsx"):
        raise click.BadParameter(
            f"format inconnu « {value} » : choisissez csv, json ou xlsx", ctx, param
        )
    return value


@benchmark_group.command("export")
@click.option("--format", "fmt", required=True, callback=_format, help="csv, json ou xlsx")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--edition", "edition_code", default=None, help="code de l'édition (défaut : la dernière)"
)
@click.option(
    "--threshold", type=int, default=None, help="organismes par case (5 par défaut, 3 au moins)"
)
@with_appcontext
def export_command(fmt: str, out: Path, edition_code: str | None, threshold: int | None) -> None:
    """Write the anonymised export of an edition to FILE."""
    from analytics.benchmark import service, services
    from analytics.benchmark.anonymise import Policy

    k = (
        threshold
        if threshold is not None
        else current_app.config.get("CRIEUR_BENCHMARK_THRESHOLD", 5)
    )
    policy = Policy(k=int(k))  # DomainError below 3: one line, non-zero status
    directory = out.resolve().parent
    if not directory.is_dir():
        raise click.UsageError(f"dossier introuvable : {directory}")
    if edition_code:
        edition = services.get_edition_by_code(edition_code)
        if edition is None:
            raise click.UsageError(f"édition inconnue : {edition_code}")
    else:
        edition = service.latest_edition()
        if edition is None:
            raise click.UsageError("aucune édition du baromètre n'a été ouverte")
    result = service.export_edition(edition.id, fmt, policy=policy)
    db.session.commit()  # the release is recorded before the file is handed out
    write_atomically(out, result.data)
    click.echo(f"{out} ({len(result.data)} octets, édition {edition.code})")


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.resolve().parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


COMMANDS = [benchmark_group]
