"""The public links of consent: unsubscribe, preference centre, confirmation, subscription form.

Each link carries a signed token (``analytics.tokens``) whose purpose selects the key,
so one kind of token is never accepted as another. Payloads hold ids only, never an
address. The sending code builds links with the ``*_url`` functions (a few microseconds
each); the public pages read them back with ``read_*``, which raise
:class:`analytics.tokens.BadToken` for anything forged, foreign or expired (answer 4xx).

Token payloads:

=================== ========= ==============================================  ========
link                purpose   values                                          expires
=================== ========= ==============================================  ========
``/u/<token>``      unsub     org_id, contact_id, list_id, delivery_id (0)    never
``/p/<token>``      prefs     org_id, contact_id                              never
``/p/signin/<t>``   signin    org_id, contact_id (+ issue time)               1 day
``/confirm/<t>``    confirm   org_id, contact_id, list_id (+ issue time)      7 days
``/confirm/<t>``    reconfirm org_id, contact_id, list_id (+ issue time)      30 days
``/subscribe/<t>``  subscribe org_id, list_id                                 never
=================== ========= ==============================================  ========

The ``reconfirm`` purpose is the link of a re-permission campaign (``{{ confirm_url }}``):
the same page answers it, but a campaign is read over weeks, so it lives 30 days while the
double opt-in link sent right after a sign-up keeps its 7 days.

Unsubscribe and preference links never expire: a person must be able to leave from a
message received years ago (RFC 8058, CNIL: withdrawal as easy as consent).

This module imports only ``analytics.tokens``, so ``campaigns`` may use it too.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from analytics.tokens import BadToken, sign, verify, verify_full

UNSUBSCRIBE_PREFIX = "/u/"
PREFERENCES_PREFIX = "/p/"
SIGNIN_PREFIX = "/p/signin/"
CONFIRM_PREFIX = "/confirm/"
SUBSCRIBE_PREFIX = "/subscribe/"

CONFIRM_MAX_AGE = 7 * 24 * 3600
REPERMISSION_MAX_AGE = 30 * 24 * 3600
SIGNIN_MAX_AGE = 24 * 3600

SUBSCRIBE_PURPOSE = "subscribe"
CONFIRM_PURPOSE = "confirm"
REPERMISSION_PURPOSE = "reconfirm"


class UnsubscribeToken(NamedTuple):
    org_id: int
    contact_id: int
    list_id: int
    delivery_id: int  # 0 when the message was not a campaign delivery


class ConfirmToken(NamedTuple):
    org_id: int
    contact_id: int
    list_id: int
    issued_at: int
    purpose: str = CONFIRM_PURPOSE  # REPERMISSION_PURPOSE for a re-permission campaign's link


def _ids(values: tuple[int | str, ...], count: int, zero_ok: tuple[int, ...] = ()) -> list[int]:
    if len(values) != count:
        raise BadToken("malformed")
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, int) or v < 0 or (v == 0 and i not in zero_ok):
            raise BadToken("malformed")
        out.append(v)
    return out


def _base(public_url: str) -> str:
    return public_url.rstrip("/")


# ---------------------------------------------------------------------------- unsubscribe


def unsubscribe_token(
    secret: str | bytes, org_id: int, contact_id: int, list_id: int, delivery_id: int = 0
) -> str:
    return sign(secret, "unsub", org_id, contact_id, list_id, delivery_id)


def unsubscribe_url(
    public_url: str,
    secret: str | bytes,
    org_id: int,
    contact_id: int,
    list_id: int,
    delivery_id: int = 0,
) -> str:
    """The one-click unsubscribe link (``List-Unsubscribe`` and the footer's link)."""
    token = unsubscribe_token(secret, org_id, contact_id, list_id, delivery_id)
    return _base(public_url) + UNSUBSCRIBE_PREFIX + token


def read_unsubscribe_token(secret: str | bytes, token: str) -> UnsubscribeToken:
    return UnsubscribeToken(*_ids(verify(secret, "unsub", token), 4, zero_ok=(3,)))


# ---------------------------------------------------------------------------- preferences


def preferences_url(public_url: str, secret: str | bytes, org_id: int, contact_id: int) -> str:
    """The preference centre of one contact (footer of every e-mail)."""
    return _base(public_url) + PREFERENCES_PREFIX + sign(secret, "prefs", org_id, contact_id)


def read_preferences_token(secret: str | bytes, token: str) -> tuple[int, int]:
    org_id, contact_id = _ids(verify(secret, "prefs", token), 2)
    return org_id, contact_id


def signin_url(
    public_url: str,
    secret: str | bytes,
    org_id: int,
    contact_id: int,
    *,
    now: int | None = None,
) -> str:
    """A short-lived link to the preference centre, sent to whoever asks for their address."""
    issued = int(time.time() if now is None else now)
    token = sign(secret, "signin", org_id, contact_id, issued_at=issued)
    return _base(public_url) + SIGNIN_PREFIX + token


def read_signin_token(
    secret: str | bytes, token: str, *, now: float | None = None
) -> tuple[int, int]:
    org_id, contact_id = _ids(verify(secret, "signin", token, SIGNIN_MAX_AGE, now=now), 2)
    return org_id, contact_id


# ---------------------------------------------------------------------------- confirmation


def confirm_url(
    public_url: str,
    secret: str | bytes,
    org_id: int,
    contact_id: int,
    list_id: int,
    *,
    now: int | None = None,
) -> str:
    """The double opt-in (or re-permission) link; valid for 7 days."""
    issued = int(time.time() if now is None else now)
    token = sign(secret, "confirm", org_id, contact_id, list_id, issued_at=issued)
    return _base(public_url) + CONFIRM_PREFIX + token


def repermission_url(
    public_url: str,
    secret: str | bytes,
    org_id: int,
    contact_id: int,
    list_id: int,
    *,
    now: int | None = None,
) -> str:
    """The confirmation link of a re-permission campaign (``/confirm/``); valid for 30 days."""
    issued = int(time.time() if now is None else now)
    token = sign(secret, REPERMISSION_PURPOSE, org_id, contact_id, list_id, issued_at=issued)
    return _base(public_url) + CONFIRM_PREFIX + token


def read_confirm_token(
    secret: str | bytes, token: str, *, now: float | None = None
) -> ConfirmToken:
    """A double opt-in (7 days) or re-permission (30 days) confirmation token."""
    try:
        checked = verify_full(secret, CONFIRM_PURPOSE, token, CONFIRM_MAX_AGE, now=now)
        purpose = CONFIRM_PURPOSE
    except BadToken as first:
        try:
            checked = verify_full(
                secret, REPERMISSION_PURPOSE, token, REPERMISSION_MAX_AGE, now=now
            )
        except BadToken as second:
            # An expired link says so (410), whichever kind it was.
            raise (second if second.reason == "expired" else first) from None
        purpose = REPERMISSION_PURPOSE
    org_id, contact_id, list_id = _ids(checked.values, 3)
    return ConfirmToken(org_id, contact_id, list_id, int(checked.issued_at or 0), purpose)


# ---------------------------------------------------------------------------- subscription form


def subscribe_token(secret: str | bytes, org_id: int, list_id: int) -> str:
    return sign(secret, SUBSCRIBE_PURPOSE, org_id, list_id)


def subscribe_url(public_url: str, secret: str | bytes, org_id: int, list_id: int) -> str:
    """The public subscription form of one list (a link, or an iframe on the body's site)."""
    return _base(public_url) + SUBSCRIBE_PREFIX + subscribe_token(secret, org_id, list_id)


def read_subscribe_token(secret: str | bytes, token: str) -> tuple[int, int]:
    org_id, list_id = _ids(verify(secret, SUBSCRIBE_PURPOSE, token), 2)
    return org_id, list_id
