"""The English catalogue covers every French message id of the interface.

Message ids are the French text, so a string wrapped in ``_()`` but missing from the ``.po``
silently shows French to English readers. These tests extract the messages from the source
tree with the same method map as ``babel.cfg`` (and the keywords of ``make translations``)
and compare them with ``webapp/translations/en/LC_MESSAGES/messages.po``. No app, no DB.
When they fail, run ``make translations`` and translate the entries listed.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO_PATH = ROOT / "webapp" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
# The same keywords as ``make translations``: N_ marks labels in the domain packages, and a
# refusal's message is the second argument of DomainError and its subclasses.
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "_l": None,
    "lazy_gettext": None,
    "N_": None,
    "DomainError": (2,),
    "ApiError": (2,),
    "MjmlError": (2,),
    "ImportFileError": (2,),
}

# %(name)s-style placeholders, a literal %% and Jinja-looking {{ variables }} shown to users
# (e.g. the personalisation variables in a hint) must survive translation unchanged.
PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|%%|\{\{.*?\}\}")

Key = tuple[str | tuple[str, ...], str | None]


def placeholders(text: str) -> Counter[str]:
    return Counter(PLACEHOLDER.findall(text))


def _method_map() -> tuple[list[tuple[str, str]], dict]:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        return parse_mapping_cfg(fh, filename=str(ROOT / "babel.cfg"))


def _directory_filter(method_map: list[tuple[str, str]]):
    """Only walk the top-level folders named in babel.cfg (not node_modules or .venv)."""
    tops = {pattern.split("/", 1)[0] for pattern, _method in method_map}

    def keep(path: str) -> bool:
        rel = Path(path).relative_to(ROOT)
        name = rel.parts[-1]
        if name.startswith((".", "_")):
            return False
        return "**" in tops or rel.parts[0] in tops

    return keep


@pytest.fixture(scope="module")
def extracted() -> dict[Key, list[str]]:
    """Message id (and context) → the places in the source that use it."""
    method_map, options_map = _method_map()
    found: dict[Key, list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        ROOT,
        method_map,
        options_map,
        keywords=KEYWORDS,
        directory_filter=_directory_filter(method_map),
    ):
        if isinstance(message, tuple):
            message = tuple(m for m in message if m is not None)
            if len(message) == 1:
                message = message[0]
        if not message:
            continue
        found.setdefault((message, context), []).append(f"{filename}:{lineno}")
    return found


@pytest.fixture(scope="module")
def catalogue() -> Catalog:
    with PO_PATH.open("rb") as fh:
        return read_po(fh, locale="en")


def _translation(catalogue: Catalog, key: Key):
    message_id, context = key
    msg = catalogue.get(message_id, context=context)
    if msg is None or "fuzzy" in msg.flags:
        return None
    return msg


def _is_translated(msg) -> bool:
    if msg is None:
        return False
    strings = msg.string if isinstance(msg.string, tuple) else (msg.string,)
    return bool(strings) and all(s and s.strip() for s in strings)


def _mismatches(message_id, string) -> list[str]:
    """Describe each form whose placeholders differ from the French one."""
    ids = message_id if isinstance(message_id, tuple) else (message_id,)
    strings = string if isinstance(string, tuple) else (string,)
    problems = []
    for index, text in enumerate(strings):
        source = ids[min(index, len(ids) - 1)]
        if placeholders(source) != placeholders(text or ""):
            problems.append(
                f"{source!r} {sorted(placeholders(source).elements())}"
                f" -> {text!r} {sorted(placeholders(text or '').elements())}"
            )
    return problems


def test_the_source_tree_yields_interface_messages(extracted):
    assert ("Campagnes", None) in extracted
    assert len(extracted) > 100


def test_every_extracted_message_has_an_english_translation(extracted, catalogue):
    missing = sorted(
        (
            f"{places[0]}: {key[0]!r}"
            for key, places in extracted.items()
            if not _is_translated(_translation(catalogue, key))
        ),
    )
    assert not missing, (
        f"{len(missing)} message(s) without English translation in {PO_PATH.relative_to(ROOT)} "
        "(run `make translations`, then translate):\n" + "\n".join(missing)
    )


def test_english_translations_keep_the_placeholders_of_the_french_message(catalogue):
    problems = [
        problem
        for msg in catalogue
        if msg.id and msg.string
        for problem in _mismatches(msg.id, msg.string)
    ]
    assert not problems, "placeholders differ between msgid and msgstr:\n" + "\n".join(problems)


def test_placeholder_check_notices_a_renamed_or_dropped_placeholder():
    assert _mismatches("Compte créé pour %(email)s.", "Account created for %(mail)s.")
    assert _mismatches("%(n)s %% de %(t)s", "%(n)s of %(t)s")
    assert not _mismatches("Du %(a)s au %(b)s", "From %(a)s to %(b)s")


def test_make_translations_extracts_with_the_same_keywords():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = makefile.split("\ntranslations:", 1)[1].split("\n\n", 1)[0]
    for keyword, spec in KEYWORDS.items():
        if keyword in DEFAULT_KEYWORDS:
            continue
        flag = f"-k {keyword}" + (f":{spec[0]}" if spec else "")
        assert flag in target, f"`make translations` lacks {flag}"


def test_domain_packages_are_extracted():
    patterns = {pattern for pattern, _method in _method_map()[0]}
    for package in ("contacts", "campaigns", "analytics"):
        assert f"{package}/**.py" in patterns


def test_domain_refusals_are_extracted_with_their_message(extracted):
    assert any(place.startswith("contacts/") for places in extracted.values() for place in places)
    assert not any(key[0] in {"not_found", "forbidden"} for key in extracted), (
        "a DomainError code was extracted instead of its message"
    )


def test_the_english_catalogue_compiles(catalogue):
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)
    assert buffer.getvalue()


def test_a_refusal_keeps_its_message_id_and_parameters_apart():
    from contacts.db import DomainError

    exc = DomainError("too_long", "Description : %(max)s caractères au plus.", params={"max": 20})
    assert exc.msgid == "Description : %(max)s caractères au plus."
    assert exc.params == {"max": 20}
    assert exc.message == str(exc) == "Description : 20 caractères au plus."


def test_a_domain_message_is_french_text_that_remembers_its_id():
    import json
    import pickle

    from contacts.i18n import N_, Message, join_messages

    assert N_("presse") == "presse" and not isinstance(N_("presse"), Message)
    message = N_("Bloc %(n)s (%(label)s)", n=2, label=Message("titre"))
    assert message == "Bloc 2 (titre)"
    assert (message.msgid, message.params["n"]) == ("Bloc %(n)s (%(label)s)", 2)
    assert json.dumps(message) == json.dumps("Bloc 2 (titre)")
    assert pickle.loads(pickle.dumps(message)).msgid == message.msgid
    joined = join_messages([message, "Règle incomplète."])
    assert joined == "Bloc 2 (titre) Règle incomplète."
    assert all(isinstance(p, Message) for p in joined.params.values())


REFUSALS = {"DomainError": 1, "ApiError": 1, "MjmlError": 1, "ImportFileError": 1}
MARKERS = {"N_": 0, "_": 0, "_l": 0, "gettext": 0, "lazy_gettext": 0}


def _built_messages() -> list[str]:
    """Message arguments built at run time (f-string, + or .format): they cannot be extracted."""
    import ast

    found = []
    for package in ("contacts", "campaigns", "analytics", "webapp"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = getattr(func, "id", None) or getattr(func, "attr", None)
                index = {**REFUSALS, **MARKERS}.get(name)
                if index is None or len(node.args) <= index:
                    continue
                arg = node.args[index]
                if isinstance(arg, ast.JoinedStr | ast.BinOp) or (
                    isinstance(arg, ast.Call) and getattr(arg.func, "attr", "") == "format"
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}(…)")
    return found


def test_refusals_and_marked_messages_are_literals_with_placeholders():
    assert _built_messages() == [], (
        "use a literal French message with %(name)s placeholders and params= (or N_(…, name=…))"
    )
