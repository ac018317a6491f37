"""E-mail addresses: cleaning, validation with plain-French reasons, and suppression hashes.

Everything that decides whether two addresses are "the same person" lives here, so that
the import, the suppression list, the API lookup and the unsubscribe page agree.

Decisions:
- An address is stored **entirely lowercased** (domain and local part), as listmonk does.
  RFC 5321 lets a server treat the local part as case-sensitive, but no mailbox provider
  a public body writes to does, and bodies expect ``Jean@Mairie.fr`` and
  ``jean@mairie.fr`` to be one contact.
- Internationalised domains are accepted and kept in their Unicode form, as
  ``email-validator`` normalises them (``jean@xn--exmple-cua.fr`` becomes
  ``jean@exämple.fr``); :func:`to_ascii_email` gives the IDNA form SMTP needs.
- Syntax only by default: deliverability checks (DNS) are optional, off unless asked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

import email_validator
from email_validator import EmailNotValidError

from contacts.i18n import N_, Message

MAX_EMAIL_LENGTH = 254
"""RFC 5321 path limit (256) minus the angle brackets; email-validator enforces the same."""

# Characters that are invisible but break an address copied from a web page or Word.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e"),
    None,
)
_MAILTO = re.compile(r"^mailto:", re.IGNORECASE)
# "Jean Dupont <jean@mairie.fr>" as Outlook copies it.
_DISPLAY_FORM = re.compile(r"^[^<>@]*<([^<>]*)>$")


class InvalidEmail(ValueError):
    """An address that cannot be used, with a reason a person can act on (in French).

    ``reason`` is a French msgid or a ``contacts.i18n.Message``: pass it on as a parameter
    wrapped in ``Message(exc.reason)`` so that the web edge can translate it.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail  # email-validator's English message, for logs


def clean_email_text(value: str) -> str:
    """The address as typed, without the noise spreadsheets and copy-paste add.

    Strips surrounding whitespace (including non-breaking spaces), invisible characters,
    a ``mailto:`` prefix and a ``Name <address>`` wrapper. Does not validate.
    """
    if not value.isascii():
        value = value.translate(_INVISIBLE)
    value = value.strip()
    if value[:7].lower() == "mailto:":
        value = _MAILTO.sub("", value).strip()
    if value.endswith(">"):
        m = _DISPLAY_FORM.match(value)
        if m:
            value = m.group(1).strip()
    return value


def validate_email(value: str, *, check_deliverability: bool = False) -> str:
    """Return the normalised (lowercased) address, or raise :class:`InvalidEmail`.

    ``value`` should already have gone through :func:`clean_email_text`. Deliverability
    (DNS) is checked only when asked, since it needs the network and takes seconds.
    """
    if not value:
        raise InvalidEmail(N_("Adresse e-mail manquante"))
    if len(value) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(
            N_(
                "Adresse trop longue (%(n)s caractères, %(max)s au maximum)",
                n=len(value),
                max=MAX_EMAIL_LENGTH,
            )
        )
    if value.count("@") > 1 and any(sep in value for sep in ";, "):
        raise InvalidEmail(N_("Plusieurs adresses dans la même cellule : une seule par ligne"))
    if " " in value or not value.isprintable():
        if any(ch.isspace() for ch in value):
            raise InvalidEmail(N_("Adresse invalide : elle contient une espace"))
        raise InvalidEmail(N_("Adresse invalide : caractères non autorisés"))
    try:
        checked = email_validator.validate_email(value, check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise InvalidEmail(translate_reason(str(exc)), str(exc)) from None
    return checked.normalized.lower()


def normalise_email(value: str) -> str:
    """The canonical form used to compare and hash addresses, valid or not.

    For a valid address this is exactly what :func:`validate_email` returns; for an invalid
    one it is the cleaned, NFC-normalised, lowercased text, so a lookup still behaves.
    """
    value = clean_email_text(value)
    try:
        return validate_email(value)
    except InvalidEmail:
        return unicodedata.normalize("NFC", value).lower()


def hash_email(email: str, salt: bytes | str) -> str:
    """Salted hash of an address, for the suppression list (64 hex characters).

    HMAC-SHA256 keyed by ``salt`` over :func:`normalise_email`: the same mailbox written
    in another case, with spaces or as punycode gives the same hash, and the hash cannot
    be reversed by hashing a dictionary of addresses without the salt.
    """
    key = salt.encode() if isinstance(salt, str) else salt
    if not key:
        raise ValueError("a suppression hash needs a non-empty salt")
    return hmac.new(key, normalise_email(email).encode(), hashlib.sha256).hexdigest()


def to_ascii_email(email: str) -> str:
    """The address with its domain in IDNA (punycode) form, for SMTP envelopes and headers."""
    try:
        checked = email_validator.validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(translate_reason(str(exc)), str(exc)) from None
    if checked.ascii_email:
        return checked.ascii_email
    # A non-ASCII local part needs SMTPUTF8; only the domain can be converted.
    return f"{checked.local_part}@{checked.ascii_domain}"


# email-validator's messages (v2) → plain French, most specific first.
_REASONS: tuple[tuple[str, str], ...] = (
    ("must have an @-sign", N_("il manque le signe @")),
    ("full-width", N_("le signe @ utilisé n'est pas le bon caractère")),
    ("small commercial at", N_("le signe @ utilisé n'est pas le bon caractère")),
    ("something before the @-sign", N_("rien avant le signe @")),
    ("something after the @-sign", N_("rien après le signe @")),
    ("too long", N_("adresse trop longue")),
    ("should have a period", N_("le nom de domaine après le @ est incomplet (ex. : mairie.fr)")),
    ("not within a valid top-level domain", N_("le nom de domaine après le @ est incomplet")),
    ("special-use or reserved", N_("ce nom de domaine est réservé et ne reçoit pas de courriel")),
    ("two periods in a row", N_("deux points se suivent")),
    ("cannot start with a period", N_("l'adresse commence par un point")),
    ("period immediately before the @-sign", N_("un point juste avant le @")),
    ("period immediately after the @-sign", N_("un point juste après le @")),
    ("cannot end with a period", N_("l'adresse finit par un point")),
    ("period and a hyphen", N_("un point et un tiret se suivent")),
    ("hyphen", N_("un tiret mal placé dans le nom de domaine")),
    ("two dashes", N_("deux tirets mal placés dans le nom de domaine")),
    ("quot", N_("les guillemets ne sont pas acceptés")),
    ("display name", N_("indiquez seulement l'adresse, sans nom ni chevrons < >")),
    ("angle bracket", N_("indiquez seulement l'adresse, sans nom ni chevrons < >")),
    ("bracket", N_("une adresse IP à la place du nom de domaine n'est pas acceptée")),
    ("IDNA", N_("nom de domaine international invalide")),
    ("does not exist", N_("ce nom de domaine n'existe pas")),
    ("does not accept email", N_("ce nom de domaine ne reçoit pas de courriel")),
    ("does not send email", N_("ce nom de domaine ne reçoit pas de courriel")),
    ("error while checking", N_("le nom de domaine n'a pas pu être vérifié")),
    ("characters before the @-sign", N_("caractères non autorisés avant le @")),
    ("characters after the @-sign", N_("caractères non autorisés après le @")),
    (
        "part after the @-sign contains invalid characters",
        N_("caractères non autorisés après le @"),
    ),
    ("unsafe characters", N_("caractères non autorisés")),
    ("invalid character", N_("caractères non autorisés")),
)


def translate_reason(message: str) -> str:
    """email-validator's English message as a short French reason a person can act on."""
    for needle, french in _REASONS:
        if needle in message:
            return N_("Adresse invalide : %(reason)s", reason=Message(french))
    return N_("Adresse invalide")
