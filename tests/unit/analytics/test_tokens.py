"""Signed tokens: round trip, tampering, purpose swap, foreign secret, expiry, size, speed."""

from __future__ import annotations

import time

import pytest

from analytics import tokens
from analytics.tokens import BadToken, Signer, TokenPurpose, sign, verify, verify_full

SECRET = b"s" * 32


def test_round_trip_returns_ints_and_strings_in_order():
    token = sign(SECRET, "click", 12, 345678, "abc_DEF-9", 0, -5)
    assert verify(SECRET, "click", token) == (12, 345678, "abc_DEF-9", 0, -5)


def test_strings_outside_the_url_safe_alphabet_survive():
    value = "Été <script>&.~ 🙂"
    token = sign(SECRET, "rsvp", 3, value, "")
    assert verify(SECRET, "rsvp", token) == (3, value, "")


def test_token_has_only_url_safe_characters():
    token = sign(SECRET, "click", 99, "Été à Paris", issued_at=1_700_000_000)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def test_click_token_stays_short():
    token = sign(SECRET, "click", 123_456, 98_765_432, 1_234)
    assert len(token) <= 40


def test_str_and_bytes_secrets_are_the_same_key():
    assert verify("s" * 32, "open", sign(SECRET, "open", 1)) == (1,)


def test_every_changed_character_is_refused():
    token = sign(SECRET, "unsub", 42, 7)
    for i, ch in enumerate(token):
        other = "A" if ch != "A" else "B"
        forged = token[:i] + other + token[i + 1 :]
        with pytest.raises(BadToken):
            verify(SECRET, "unsub", forged)


def test_changed_payload_with_original_mac_is_refused():
    token = sign(SECRET, "click", 1, 2, 3)
    payload, mac = token.rsplit(".", 1)
    with pytest.raises(BadToken) as err:
        verify(SECRET, "click", payload.replace("3", "4") + "." + mac)
    assert err.value.reason == "signature"


def test_token_for_one_purpose_is_refused_for_every_other():
    for purpose in TokenPurpose:
        token = sign(SECRET, purpose, 5, 6)
        for other in TokenPurpose:
            if other is not purpose:
                with pytest.raises(BadToken):
                    verify(SECRET, other, token)


def test_token_signed_with_another_secret_is_refused():
    with pytest.raises(BadToken):
        verify(SECRET, "click", sign(b"another secret", "click", 1))


@pytest.mark.parametrize(
    "junk",
    ["", ".", "abc", "a" * 5000, None, 12, b"bytes", "x.y.z", "é." + "A" * 22, "~~%%." + "A" * 22],
)
def test_junk_is_refused_as_bad_token_not_another_error(junk):
    with pytest.raises(BadToken):
        verify(SECRET, "click", junk)


def test_bad_token_is_a_value_error():
    assert issubclass(BadToken, ValueError)


def test_fresh_token_passes_max_age():
    now = 1_700_000_000
    token = sign(SECRET, "signin", 9, issued_at=now)
    assert verify(SECRET, "signin", token, max_age=900, now=now + 899) == (9,)


def test_expired_token_is_refused():
    now = 1_700_000_000
    token = sign(SECRET, "signin", 9, issued_at=now)
    with pytest.raises(BadToken) as err:
        verify(SECRET, "signin", token, max_age=900, now=now + 901)
    assert err.value.reason == "expired"


def test_token_from_the_far_future_is_refused():
    now = 1_700_000_000
    token = sign(SECRET, "confirm", 9, issued_at=now + 3600)
    with pytest.raises(BadToken):
        verify(SECRET, "confirm", token, max_age=900, now=now)


def test_token_without_issue_time_fails_a_max_age_check():
    with pytest.raises(BadToken):
        verify(SECRET, "confirm", sign(SECRET, "confirm", 9), max_age=900)


def test_issue_time_is_returned_and_signed():
    token = sign(SECRET, "signin", 4, issued_at=1_700_000_000)
    assert verify_full(SECRET, "signin", token) == (((4,), 1_700_000_000))
    forged = token.replace("T", "Tz", 1)
    with pytest.raises(BadToken):
        verify(SECRET, "signin", forged)


def test_max_age_uses_the_clock_by_default():
    token = sign(SECRET, "signin", 1, issued_at=int(time.time()) - 10)
    assert verify(SECRET, "signin", token, max_age=60) == (1,)


@pytest.mark.parametrize("value", [True, 1.5, None, b"x", 2**64])
def test_unsupported_values_cannot_be_signed(value):
    with pytest.raises((TypeError, ValueError)):
        sign(SECRET, "click", value)


@pytest.mark.parametrize("purpose", ["", "Click", "click!", "a" * 40])
def test_invalid_purpose_is_a_programming_error(purpose):
    with pytest.raises(ValueError):
        sign(SECRET, purpose, 1)


def test_empty_secret_is_refused():
    with pytest.raises(ValueError):
        sign(b"", "click", 1)


def test_purpose_keys_differ_and_hide_the_secret():
    keys = {tokens.derive_key(SECRET, p) for p in TokenPurpose}
    assert len(keys) == len(TokenPurpose)
    assert SECRET not in keys


def test_signer_binds_the_secret():
    signer = Signer("app secret")
    assert signer.verify("poll", signer.sign("poll", 1, "b")) == (1, "b")
    assert verify("app secret", "poll", signer.sign("poll", 1, "b")) == (1, "b")


def test_signing_and_verifying_cost_microseconds():
    # A sanity bound, not a benchmark: 100k messages x 20 links must stay cheap.
    start = time.perf_counter()
    for i in range(2000):
        verify(SECRET, "click", sign(SECRET, "click", i, 1000 + i, 7))
    per_pair = (time.perf_counter() - start) / 2000
    assert per_pair < 200e-6
