"""Marking interface text in the domain packages for translation, without translating it.

The domain packages (contacts, campaigns, analytics) never import Flask-Babel: they keep
French text, and the web edge translates it for the reader. ``N_`` only marks a literal so
that ``make translations`` extracts it into the catalogue; the value stays the French
message id, which the edge passes to ``gettext`` (``webapp.i18n.translate``, the ``|tr``
filter, ``_(label)`` in a template). A ``DomainError`` message needs no marker: the
extraction keywords include ``DomainError:2``.
"""

from __future__ import annotations


def N_(text: str) -> str:
    """Return ``text`` unchanged: a French message id to translate later, at the edge."""
    return text
