"""Per-recipient substitution of allowlisted placeholders into a campaign's compiled parts.

MJML is compiled once per campaign; each recipient's message is the compiled HTML and text
with a few ``{{ name }}`` placeholders replaced. This is deliberately *not* a template
engine: only names on the allowlist are replaced, by plain string substitution, so
``{{ config }}``, ``{{ ''.__class__ }}``, ``{% include %}`` or ``${7*7}`` typed by an officer
stay literal text. Values are HTML-escaped in HTML parts and never re-scanned, so a contact
called ``{{ unsubscribe_url }}`` is just a strange name.

Per-recipient variables (the renderer supplies them; missing ones become empty):

==================== ============================================================
``first_name``       contact's first name (officer text may use it)
``last_name``        contact's last name (officer text may use it)
custom fields        the list's ``custom_fields`` (``[A-Za-z_][A-Za-z0-9_]*``)
``email``            the recipient address (footer: "envoyé à …")
``list_name``        name of the list this delivery comes from (footer)
``subscription_reason`` why this person is on the list, see :func:`subscription_reason`
``unsubscribe_url``  one-click unsubscribe page (signed token)
``preferences_url``  preference centre (signed token)
``web_version_url``  "voir dans le navigateur" (signed token)
``open_pixel_url``   open pixel; present only when the tracking policy is not ``off``;
                     must be a URL (the anonymous one when the contact did not consent)
``confirm_url``       the re-permission link for this contact and the delivery's list
                     (``/confirm/<token>``, 30 days: :func:`analytics.links.repermission_url`)
``rsvp_yes_url``, ``rsvp_no_url``, ``rsvp_maybe_url``  RSVP answers (invitations)
``poll_url_1`` … ``poll_url_5``  one per poll option, in order
``link_1`` … ``link_N``  the campaign's links, in ``Compiled.links`` order: the signed
                     click redirect, or the URL itself when tracking is off
==================== ============================================================
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence

USER_FIELDS = ("first_name", "last_name")
RECIPIENT_FIELDS = ("email", "list_name", "subscription_reason")
LINK_VARIABLES = (
    "unsubscribe_url",
    "preferences_url",
    "web_version_url",
    "open_pixel_url",
    "confirm_url",
    "rsvp_yes_url",
    "rsvp_no_url",
    "rsvp_maybe_url",
)
MAX_POLL_OPTIONS = 5
POLL_VARIABLES = tuple(f"poll_url_{i}" for i in range(1, MAX_POLL_OPTIONS + 1))
SYSTEM_VARIABLES = frozenset(RECIPIENT_FIELDS + LINK_VARIABLES + POLL_VARIABLES)
# Placeholders an officer is told about (the others are produced by the layouts).
OFFICER_VARIABLES = frozenset(USER_FIELDS)

FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_LINK_RE = re.compile(r"^link_[1-9][0-9]{0,3}$")
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Anything that looks like template syntax, for the "unresolved placeholder" check.
_TEMPLATE_LIKE_RE = re.compile(r"\{\{.{0,200}?\}\}|\{%.{0,200}?%\}|\$\{.{0,200}?\}", re.S)


def placeholder(name: str) -> str:
    """The placeholder text for a variable: ``{{ name }}``."""
    return "{{ " + name + " }}"


def allowed_names(custom_fields: Iterable[str] = ()) -> frozenset[str]:
    """Every placeholder name substituted for a campaign whose lists have these fields."""
    fields = {f for f in custom_fields if FIELD_NAME_RE.match(f)}
    return frozenset(USER_FIELDS) | SYSTEM_VARIABLES | fields


def is_allowed(name: str, allowed: frozenset[str]) -> bool:
    """Whether ``name`` is substituted: in ``allowed`` or one of the ``link_N`` links."""
    return name in allowed or bool(_LINK_RE.match(name))


class Template:
    """Compiled HTML or text cut once into literal parts and placeholder names.

    ``render`` only joins strings, which keeps personalisation at tens of microseconds per
    message however long the HTML is.
    """

    __slots__ = ("_chunks", "_slots", "_escape", "names")

    def __init__(self, source: str, allowed: frozenset[str], *, escape_html: bool) -> None:
        chunks: list[str] = []
        slots: list[int] = []
        pos = 0
        for m in PLACEHOLDER_RE.finditer(source):
            name = m.group(1)
            if not is_allowed(name, allowed):
                continue
            chunks.append(source[pos : m.start()])
            slots.append(len(chunks))
            chunks.append(name)
            pos = m.end()
        chunks.append(source[pos:])
        # Merge neighbouring literals is unnecessary: slots sit between literals already.
        self._chunks = chunks
        self._slots = slots
        self._escape = escape_html
        self.names = frozenset(chunks[i] for i in slots)

    def render(self, values: Mapping[str, object]) -> str:
        """The part for one recipient; missing values are empty strings."""
        buf = self._chunks.copy()
        get = values.get
        if self._escape:
            esc = html.escape
            for i in self._slots:
                v = get(buf[i])
                buf[i] = esc(str(v), quote=True) if v is not None else ""
        else:
            for i in self._slots:
                v = get(buf[i])
                buf[i] = str(v) if v is not None else ""
        return "".join(buf)


def compile_html(source: str, custom_fields: Iterable[str] = ()) -> Template:
    """An HTML template: values are HTML-escaped (they may land in attributes)."""
    return Template(source, allowed_names(custom_fields), escape_html=True)


def compile_text(source: str, custom_fields: Iterable[str] = ()) -> Template:
    """A plain-text template (text part, subject): values are inserted as they are."""
    return Template(source, allowed_names(custom_fields), escape_html=False)


def personalise(
    source: str, values: Mapping[str, object], custom_fields: Iterable[str] = (), *, html_: bool
) -> str:
    """One-off substitution; senders should keep the :class:`Template` instead."""
    return Template(source, allowed_names(custom_fields), escape_html=html_).render(values)


def unresolved_placeholders(text: str, custom_fields: Iterable[str] = ()) -> list[str]:
    """Template-looking fragments that will be shown literally (deduplicated, in order)."""
    allowed = allowed_names(custom_fields)
    seen: dict[str, None] = {}
    for m in _TEMPLATE_LIKE_RE.finditer(text or ""):
        frag = m.group(0)
        pm = PLACEHOLDER_RE.fullmatch(frag)
        if pm and is_allowed(pm.group(1), allowed):
            continue
        seen.setdefault(frag, None)
    return list(seen)


def link_values(links: Sequence[object]) -> dict[str, str]:
    """``link_N`` → the raw URL: what to substitute when clicks are not tracked."""
    return {f"link_{i}": getattr(link, "url", link) for i, link in enumerate(links, 1)}  # type: ignore[misc]


_REASONS = {
    "web_form": "vous vous êtes inscrit·e sur notre site internet",
    "event_signup": "vous vous êtes inscrit·e lors de l'un de nos événements",
    "internal_file": "vos coordonnées figurent dans notre fichier de contacts",
    "directory": "vos coordonnées figurent dans un annuaire public",
    "api": "vous vous êtes inscrit·e auprès de l'un de nos services",
}


def subscription_reason(source: str, legal_basis: str = "consent") -> str:
    """The footer's "why you receive this" sentence for a subscription's source and basis."""
    if legal_basis == "public_task":
        return (
            "ce message relève de notre mission de service public ; "
            "vous pouvez vous y opposer à tout moment"
        )
    return _REASONS.get(source, "vous avez accepté de recevoir nos messages")


def sample_values(links: Sequence[object] = (), **overrides: str) -> dict[str, str]:
    """Values for previews and test sends: a fictional recipient, inert system links."""
    values = {
        "first_name": "Camille",
        "last_name": "Martin",
        "email": "camille.martin@example.org",
        "list_name": "Lettre d'information",
        "subscription_reason": "vous vous êtes inscrit·e sur notre site internet",
        "unsubscribe_url": "#",
        "preferences_url": "#",
        "web_version_url": "#",
        "open_pixel_url": "",
        "confirm_url": "#",
        "rsvp_yes_url": "#",
        "rsvp_no_url": "#",
        "rsvp_maybe_url": "#",
        **{name: "#" for name in POLL_VARIABLES},
        **link_values(links),
    }
    values.update(overrides)
    return values
