"""Pure parts of the contacts services: suppression hashes and public link tokens."""

from __future__ import annotations

import pytest

from analytics import links
from analytics.tokens import BadToken
from contacts import suppression
from contacts.emails import validate_email

SECRET = "unit-test-secret"


@pytest.mark.parametrize(
    "raw", ["Jean.Dupont@Mairie.fr", "zoe@xn--exmple-cua.fr", "ZOE@EXÄMPLE.FR", " a@b.fr "]
)
def test_the_fast_hash_of_a_normalised_address_equals_the_full_one(raw):
    key = suppression.suppression_key(SECRET, 7)
    normalised = validate_email(raw.strip())
    assert suppression.hash_normalised(key, normalised) == suppression.email_hash(7, raw, SECRET)


def test_a_suppression_hash_depends_on_the_body_and_the_secret():
    base = suppression.email_hash(1, "a@b.fr", SECRET)
    assert base != suppression.email_hash(2, "a@b.fr", SECRET)
    assert base != suppression.email_hash(1, "a@b.fr", "other-secret")
    assert len(base) == 64


def test_an_unsubscribe_link_carries_ids_only_and_reads_back():
    url = links.unsubscribe_url("https://crieur.test/", SECRET, 3, 41, 5, 900)
    assert url.startswith("https://crieur.test/u/") and "@" not in url
    token = url.rsplit("/", 1)[1]
    assert links.read_unsubscribe_token(SECRET, token) == (3, 41, 5, 900)


def test_a_token_of_one_kind_is_not_accepted_as_another():
    prefs = links.preferences_url("https://x", SECRET, 3, 41).rsplit("/", 1)[1]
    with pytest.raises(BadToken):
        links.read_unsubscribe_token(SECRET, prefs)
    subscribe = links.subscribe_url("https://x", SECRET, 3, 5).rsplit("/", 1)[1]
    with pytest.raises(BadToken):
        links.read_preferences_token(SECRET, subscribe)


def test_a_confirmation_link_expires_after_seven_days():
    url = links.confirm_url("https://x", SECRET, 1, 2, 3, now=1_000_000)
    token = url.rsplit("/", 1)[1]
    assert links.read_confirm_token(SECRET, token, now=1_000_000 + 6 * 86400)[:3] == (1, 2, 3)
    with pytest.raises(BadToken) as exc:
        links.read_confirm_token(SECRET, token, now=1_000_000 + 8 * 86400)
    assert exc.value.reason == "expired"


def test_a_sign_in_link_lasts_one_day():
    token = links.signin_url("https://x", SECRET, 1, 2, now=5_000_000).rsplit("/", 1)[1]
    assert links.read_signin_token(SECRET, token, now=5_000_000 + 3600) == (1, 2)
    with pytest.raises(BadToken):
        links.read_signin_token(SECRET, token, now=5_000_000 + 2 * 86400)


@pytest.mark.parametrize("values", [(0, 1, 1, 0), (1, -2, 1, 0), (1, 1, 1)])
def test_a_well_signed_token_with_impossible_ids_is_refused(values):
    from analytics.tokens import sign

    with pytest.raises(BadToken):
        links.read_unsubscribe_token(SECRET, sign(SECRET, "unsub", *values))
