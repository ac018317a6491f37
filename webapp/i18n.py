"""French first, English available: locale choice and the message catalogues.

Message ids are the French text, so the default interface never depends on a compiled
catalogue; English comes from ``webapp/translations/en``. Catalogues are compiled from
the ``.po`` sources into the instance folder at start-up, so there is no build step to
forget and no compiled file in git.

How to get French from the domain packages translated (they never import Flask-Babel):

- Label tables and other literals: mark them with ``contacts.i18n.N_`` (a no-op that only
  lets ``make translations`` extract them): ``SOURCE_LABELS = {Source.FORM: N_("formulaire")}``.
  Translate where they are shown: ``{{ label|tr }}`` in a template (plain str, still
  autoescaped), ``translate(label)`` in a view or an API handler, or a whole table with
  ``translate_labels(SOURCE_LABELS)`` before passing it to a template.
- Text with variable parts built in the domain (a reason stored on a row, a sub-message):
  ``N_("Adresse trop longue (%(n)s caractères)", n=n)`` returns a ``contacts.i18n.Message``,
  a str holding the French text plus its msgid and params; ``translate``/``|tr`` translate
  it, and a ``Message`` used as a parameter of another message is translated too
  (``Message(TYPE_LABELS[kind])`` for a label from a table).
- Refusals: ``raise DomainError("list_not_found", "Liste %(name)s introuvable.",
  404, params={"name": name})``: a literal French message (extracted through the
  ``DomainError:2`` keyword; likewise ``ApiError:2``, ``MjmlError:2``, ``ImportFileError:2``),
  its variable parts as ``%(name)s`` placeholders in ``params``, never an f-string (it could
  not be extracted nor translated). A message built elsewhere is marked with ``N_`` and
  passed as a variable (or as a ``Message``). ``webapp.errors`` shows pages and JSON
  errors in the reader's language; a view that flashes or renders a refusal itself uses
  ``error_text(exc)``, not ``exc.message`` (the French text, kept for logs and the CLI).
- JSON: ``translate_all(value)`` translates every ``Message`` inside lists and dicts
  (``webapp.errors`` does it for a refusal's details).
- Then ``make translations`` and translate the new entries of
  ``webapp/translations/en/LC_MESSAGES/messages.po`` (tests/unit/test_translations.py lists
  the missing ones, checks the placeholders survive, and refuses a message built with an
  f-string, ``+`` or ``.format``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, session
from flask_babel import gettext
from flask_login import current_user

from contacts.db import DomainError
from contacts.i18n import Message
from webapp.extensions import babel

LOCALES = ("fr", "en")
SOURCE_DIR = Path(__file__).resolve().parent / "translations"


def select_locale() -> str:
    lang = session.get("lang")
    if lang in LOCALES:
        return lang
    api_user = g.get("api_user")  # /api/v1: the token's owner, whose choice is on their account
    if api_user is not None and getattr(api_user, "locale", None) in LOCALES:
        return api_user.locale
    if getattr(current_user, "is_authenticated", False) and current_user.locale in LOCALES:
        return current_user.locale
    # French unless someone chose otherwise: the bodies, their staff and the people they
    # write to work in French, whatever language a shared workstation's browser is set to.
    return "fr"


def translate(message: Any, params: Mapping[str, Any] | None = None) -> str:
    """A French message id (a label, a refusal) in the reader's language, then filled in.

    ``message`` may be a ``contacts.i18n.Message`` (its own parameters are used); parameters
    that are ``Message`` objects are translated too. Unknown ids come back as they are, so
    text that is not in the catalogue (a name, a value, a message from a tool) is untouched.
    """
    if isinstance(message, Message) and params is None:
        message, params = message.msgid, message.params
    if not message:
        return message or ""  # gettext("") would return the catalogue's header
    if not isinstance(message, str):
        return str(message)
    text = gettext(message)
    if not params:
        return text
    values = {k: translate(v) if isinstance(v, Message) else v for k, v in params.items()}
    try:
        return text % values
    except (KeyError, ValueError, TypeError):
        # A broken translation must not hide the refusal: fall back to the French text.
        return message % values


def translate_labels(labels: Mapping[Any, Any]) -> dict[Any, str]:
    """A label table from the domain (values marked with ``N_``) in the reader's language."""
    return {key: translate(value) for key, value in labels.items()}


def translate_all(value: Any) -> Any:
    """``value`` with every ``Message`` inside (lists, dicts) translated: for JSON details."""
    if isinstance(value, Message):
        return translate(value)
    if isinstance(value, dict):
        return {k: translate_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [translate_all(v) for v in value]
    return value


def error_text(exc: DomainError) -> str:
    """A refusal's message for the reader: translated first, then its ``params`` filled in."""
    msgid = getattr(exc, "msgid", None) or exc.message
    try:
        return translate(msgid, getattr(exc, "params", None) or {})
    except (KeyError, ValueError, TypeError):
        return exc.message


def compile_catalogues(target: Path) -> Path:
    """Compile every ``.po`` under ``webapp/translations`` into ``target`` when out of date."""
    # messages.po only: `make translations` writes a temporary .po beside it for a moment.
    for po_path in SOURCE_DIR.glob("*/LC_MESSAGES/messages.po"):
        mo_path = target / po_path.relative_to(SOURCE_DIR).with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as fh:
            catalogue = read_po(fh, locale=po_path.parts[-3])
        # One temporary name per process: gunicorn's or dramatiq's processes booting
        # together on a fresh instance folder all compile, and must not rename each
        # other's file away (bench/reports/load.md). The last rename wins, whole.
        tmp = mo_path.with_suffix(f".mo.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalogue)
        tmp.replace(mo_path)
    return target


def init_app(app: Flask) -> None:
    target = compile_catalogues(Path(app.instance_path) / "translations")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    babel.init_app(app, locale_selector=select_locale)
