"""Compact signed tokens for every public link Crieur puts in an e-mail or a page.

A token is ``<payload>.<mac>``: the payload lists small ints and strings, the MAC is
HMAC-SHA256 truncated to 128 bits, keyed by a per-purpose key derived from the app
secret. Because the purpose selects the key, a click token can never be replayed as an
unsubscribe token, and so on. The payload is readable by anyone (it is not encrypted):
put ids in it, never an e-mail address.

This module is a leaf: it imports nothing from ``campaigns``, ``contacts`` or ``webapp``,
so that ``campaigns`` can sign links while rendering (100,000 messages × 20 links: a
token must cost a few microseconds and a few dozen characters).

Encoding of one value (all characters are URL-safe, ``.`` separates values):

- an int: base 36, lowercase, ``-`` in front when negative (``12345`` → ``9ix``);
- a string made only of ``[A-Za-z0-9_-]``: ``~`` then the string itself;
- any other string: ``~~`` then its UTF-8 bytes in unpadded base64url;
- an issue time (seconds since the epoch), when given: a first field ``T`` + base 36.

Refusals (bad format, bad MAC, other purpose, other secret, expired) raise
:class:`BadToken`, a :class:`ValueError`: callers answer 4xx, never redirect.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import time
from functools import lru_cache
from typing import NamedTuple

__all__ = [
    "BadToken",
    "Signer",
    "TokenPurpose",
    "Verified",
    "derive_key",
    "sign",
    "verify",
    "verify_full",
]

MAC_BYTES = 16  # 128 bits
MAC_CHARS = 22  # len(urlsafe_b64encode(16 bytes)) without padding
MAX_TOKEN_CHARS = 1024  # anything longer is refused before any work
MAX_INT = 2**63 - 1
MAX_STRING_CHARS = 200
CLOCK_SKEW_SECONDS = 300  # an issue time this far in the future is still accepted

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_SAFE_STRING = re.compile(r"[A-Za-z0-9_-]*\Z")
_BASE36 = re.compile(r"-?[0-9a-z]+\Z")
_PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")


class TokenPurpose(enum.StrEnum):
    """The purposes Crieur signs for; any lowercase identifier is accepted too."""

    OPEN = "open"
    CLICK = "click"
    UNSUB = "unsub"
    PREFS = "prefs"
    RSVP = "rsvp"
    POLL = "poll"
    CONFIRM = "confirm"
    WEB = "web"
    SIGNIN = "signin"
    ARCHIVE = "archive"


class BadToken(ValueError):
    """A token that is malformed, forged, meant for another purpose or expired.

    ``reason`` is one of ``malformed``, ``signature``, ``expired``; show none of it to the
    visitor (a plain 4xx is enough), log it if useful.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"bad token: {reason}")
        self.reason = reason


class Verified(NamedTuple):
    values: tuple[int | str, ...]
    issued_at: int | None


def _secret_bytes(secret: bytes | str) -> bytes:
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("the token secret must be a non-empty str or bytes")
    return secret


def _check_purpose(purpose: str) -> str:
    if not isinstance(purpose, str) or not _PURPOSE.match(purpose):
        raise ValueError(f"invalid token purpose: {purpose!r}")
    return purpose


def derive_key(secret: bytes | str, purpose: str) -> bytes:
    """The 32-byte key for one purpose: HKDF-SHA256 (RFC 5869) with one output block.

    Extract with a fixed salt, expand with the purpose as ``info``: knowing one purpose's
    key tells nothing about another's, nor about the app secret.
    """
    prk = hmac.new(b"crieur-tokens-v1", _secret_bytes(secret), hashlib.sha256).digest()
    info = b"purpose:" + _check_purpose(purpose).encode("ascii")
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


@lru_cache(maxsize=256)
def _mac_prototype(secret: bytes, purpose: str) -> hmac.HMAC:
    # An HMAC object with the key already absorbed: .copy() is much cheaper than hmac.new.
    return hmac.new(derive_key(secret, purpose), digestmod=hashlib.sha256)


def _mac(secret: bytes, purpose: str, payload: bytes) -> str:
    h = _mac_prototype(secret, purpose).copy()
    h.update(payload)
    return base64.urlsafe_b64encode(h.digest()[:MAC_BYTES]).rstrip(b"=").decode("ascii")


def _b36(n: int) -> str:
    if n < 0:
        return "-" + _b36(-n)
    if n < 36:
        return _DIGITS[n]
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
    return "".join(reversed(out))


def _encode_value(value: int | str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"token values are ints or strings, not {type(value).__name__}")
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ValueError("token int out of range")
        return _b36(value)
    if len(value) > MAX_STRING_CHARS:
        raise ValueError("token string too long")
    if _SAFE_STRING.match(value):
        return "~" + value
    raw = base64.urlsafe_b64encode(value.encode("utf-8")).rstrip(b"=").decode("ascii")
    return "~~" + raw


def _decode_value(field: str) -> int | str:
    if field.startswith("~~"):
        raw = field[2:]
        try:
            return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise BadToken("malformed") from exc
    if field.startswith("~"):
        return field[1:]
    if not _BASE36.match(field):
        raise BadToken("malformed")
    return int(field, 36)


def sign(
    secret: bytes | str, purpose: str, *values: int | str, issued_at: int | None = None
) -> str:
    """A URL-safe token binding ``values`` to ``purpose``.

    Give ``issued_at`` (seconds since the epoch, e.g. ``int(time.time())``) for tokens
    that must expire (sign-in, confirmation): :func:`verify` checks it against
    ``max_age``.
    """
    fields = [_encode_value(v) for v in values]
    if issued_at is not None:
        if isinstance(issued_at, bool) or not isinstance(issued_at, int) or issued_at < 0:
            raise ValueError("issued_at must be a non-negative int (epoch seconds)")
        fields.insert(0, "T" + _b36(issued_at))
    payload = ".".join(fields)
    return payload + "." + _mac(_secret_bytes(secret), _check_purpose(purpose), payload.encode())


def verify_full(
    secret: bytes | str,
    purpose: str,
    token: object,
    max_age: int | None = None,
    *,
    now: float | None = None,
) -> Verified:
    """Check ``token`` and return its values and issue time; raise :class:`BadToken`.

    With ``max_age`` (seconds), a token without an issue time, older than that, or issued
    more than a few minutes in the future is refused.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise BadToken("malformed")
    payload, sep, mac = token.rpartition(".")
    if not sep or len(mac) != MAC_CHARS or not token.isascii():
        raise BadToken("malformed")
    expected = _mac(_secret_bytes(secret), _check_purpose(purpose), payload.encode("ascii"))
    if not hmac.compare_digest(expected, mac):
        raise BadToken("signature")
    fields = payload.split(".") if payload else []
    issued_at: int | None = None
    if fields and fields[0].startswith("T"):
        stamp = fields.pop(0)[1:]
        if not _BASE36.match(stamp) or stamp.startswith("-"):
            raise BadToken("malformed")
        issued_at = int(stamp, 36)
    values = tuple(_decode_value(f) for f in fields)
    if max_age is not None:
        if issued_at is None:
            raise BadToken("expired")
        current = time.time() if now is None else now
        age = current - issued_at
        if age > max_age or age < -CLOCK_SKEW_SECONDS:
            raise BadToken("expired")
    return Verified(values, issued_at)


def verify(
    secret: bytes | str,
    purpose: str,
    token: object,
    max_age: int | None = None,
    *,
    now: float | None = None,
) -> tuple[int | str, ...]:
    """The values signed into ``token`` for ``purpose``; raise :class:`BadToken` otherwise."""
    return verify_full(secret, purpose, token, max_age, now=now).values


class Signer:
    """The same functions bound to one secret, for code that signs many links."""

    def __init__(self, secret: bytes | str) -> None:
        self._secret = _secret_bytes(secret)

    def sign(self, purpose: str, *values: int | str, issued_at: int | None = None) -> str:
        return sign(self._secret, purpose, *values, issued_at=issued_at)

    def verify(
        self, purpose: str, token: object, max_age: int | None = None, *, now: float | None = None
    ) -> tuple[int | str, ...]:
        return verify(self._secret, purpose, token, max_age, now=now)

    def verify_full(
        self, purpose: str, token: object, max_age: int | None = None, *, now: float | None = None
    ) -> Verified:
        return verify_full(self._secret, purpose, token, max_age, now=now)
