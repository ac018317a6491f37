"""French first, English available: locale choice and the message catalogues.

Message ids are the French text, so the default interface never depends on a compiled
catalogue; English comes from ``webapp/translations/en``. Catalogues are compiled from
the ``.po`` sources into the instance folder at start-up, so there is no build step to
forget and no compiled file in git.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, session
from flask_login import current_user

from webapp.extensions import babel

LOCALES = ("fr", "en")
SOURCE_DIR = Path(__file__).resolve().parent / "translations"


def select_locale() -> str:
    lang = session.get("lang")
    if lang in LOCALES:
        return lang
    if getattr(current_user, "is_authenticated", False) and current_user.locale in LOCALES:
        return current_user.locale
    # French unless someone chose otherwise: the bodies, their staff and the people they
    # write to work in French, whatever language a shared workstation's browser is set to.
    return "fr"


def compile_catalogues(target: Path) -> Path:
    """Compile every ``.po`` under ``webapp/translations`` into ``target`` when out of date."""
    for po_path in SOURCE_DIR.glob("*/LC_MESSAGES/*.po"):
        mo_path = target / po_path.relative_to(SOURCE_DIR).with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as fh:
            catalogue = read_po(fh, locale=po_path.parts[-3])
        tmp = mo_path.with_suffix(".mo.tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalogue)
        tmp.replace(mo_path)
    return target


def init_app(app: Flask) -> None:
    target = compile_catalogues(Path(app.instance_path) / "translations")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    babel.init_app(app, locale_selector=select_locale)
