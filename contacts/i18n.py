"""Marking interface text in the domain packages for translation, without translating it.

The domain packages (contacts, campaigns, analytics) never import Flask-Babel: they keep
French text, and the web edge translates it for the reader. ``N_`` marks a literal so that
``make translations`` extracts it into the catalogue; the value stays the French message
id, which the edge passes to ``gettext`` (``webapp.i18n.translate``, the ``|tr`` filter).
A ``DomainError`` message needs no marker: the extraction keywords include ``DomainError:2``.

Text with variable parts is a :class:`Message`: the French text filled in (so logs, the CLI
and French pages just use it as a string) that also keeps its message id and parameters,
so the edge can translate the id first and fill it in afterwards. A parameter that is a
``Message`` itself (a label, a reason) is translated too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class Message(str):
    """A French message id with its ``%(name)s`` parameters; as a ``str``, the French text."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, params: Mapping[str, Any] | None = None) -> Message:
        params = dict(params or {})
        self = super().__new__(cls, str(msgid) % params if params else str(msgid))
        self.msgid = str(msgid)
        self.params = params
        return self


def N_(text: str, /, **params: Any) -> str:
    """Mark ``text`` as a French message id, returned as it is or, given ``params``, as a
    :class:`Message` (``N_("%(n)s règles au plus.", n=20)``); the edge translates it."""
    return Message(text, params) if params else text


def join_messages(parts: Iterable[str], sep: str = " ") -> Message:
    """Several messages as one parameter (``"%(problems)s"``), each translated at the edge.

    The joined id is made of placeholders only, so it is not in the catalogue and comes back
    unchanged; the parts are what gets translated.
    """
    params = {f"p{i}": p if isinstance(p, Message) else Message(p) for i, p in enumerate(parts)}
    return Message(sep.join(f"%({key})s" for key in params), params)
