"""Hostile tracking inputs are bounded and kept as inert data."""

from __future__ import annotations

import pytest

from analytics.sanitize import (
    HOST_MAX,
    PATH_MAX,
    UA_MAX,
    UTM_MAX,
    clean_host,
    clean_page_path,
    clean_site_key,
    clean_text,
    clean_user_agent,
    clean_utm,
    clean_value,
    is_http_url,
    referrer_host,
    utm_params,
)

HTML = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
TEN_KB = "A" * 10_240


def test_nul_and_control_characters_are_removed():
    assert clean_text("a\x00b\x07c\r\nd\x9fe", 50) == "a b c  d e"


def test_bidi_overrides_are_removed():
    assert "\u202e" not in clean_text("abc\u202etxt.exe", 50)


def test_html_stays_as_text_for_the_template_to_escape():
    assert clean_utm(HTML) == HTML[:UTM_MAX]


@pytest.mark.parametrize(
    ("cleaner", "limit"),
    [(clean_user_agent, UA_MAX), (clean_utm, UTM_MAX), (clean_value, 200)],
)
def test_ten_kilobytes_are_cut_to_the_column_length(cleaner, limit):
    assert len(cleaner(TEN_KB)) == limit


def test_none_and_non_strings_become_strings():
    assert clean_text(None, 10) == ""
    assert clean_text(12345, 3) == "123"
    assert clean_text(b"caf\xc3\xa9\x00", 10) == "café"


def test_referrer_keeps_only_the_host():
    assert referrer_host("https://user:pw@WWW.Example.FR:8443/a/b?q=secret#f") == "www.example.fr"


@pytest.mark.parametrize(
    "junk",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.org/",
        "//example.org/no-scheme",
        "https://",
        "https://exa mple.org/",
        "https://ex<ample>.org/",
        "https://example.org\x00.evil/",
        HTML,
        "https://" + "a" * 10_000 + ".fr/",
        None,
        42,
    ],
)
def test_referrer_that_is_not_an_http_url_with_a_valid_host_gives_nothing(junk):
    assert referrer_host(junk) == ""


def test_international_referrer_host_becomes_punycode():
    assert referrer_host("https://bücher.de/x") == "xn--bcher-kva.de"


def test_ipv6_referrer_keeps_brackets():
    assert referrer_host("http://[2001:db8::1]:8080/") == "[2001:db8::1]"


def test_host_longer_than_the_column_is_refused():
    labels = ".".join(["a" * 60] * 5)
    assert len(labels) > HOST_MAX
    assert clean_host(labels) == ""


def test_page_url_is_reduced_to_its_path():
    assert clean_page_path("https://ville.fr/agenda/fete?email=a@b.fr#x") == "/agenda/fete"
    assert clean_page_path("/agenda?x=1") == "/agenda"
    assert clean_page_path("https://ville.fr") == "/"


@pytest.mark.parametrize(
    "junk",
    [
        "javascript:alert(1)",
        "data:,x",
        "//evil.example/",
        "/\\evil.example",
        "mailto:a@b",
        "",
        None,
    ],
)
def test_page_url_that_is_not_http_or_a_path_is_refused(junk):
    assert clean_page_path(junk) is None


def test_page_path_is_capped_and_cleaned():
    path = clean_page_path("/" + "é" * 10_000 + "\x00")
    assert len(path) == PATH_MAX
    assert "\x00" not in path


def test_is_http_url_accepts_only_http_and_https():
    assert is_http_url("https://ville.fr/")
    assert is_http_url("HTTP://ville.fr")
    assert not is_http_url("javascript://ville.fr/%0aalert(1)")
    assert not is_http_url("https://ville.fr/\r\nSet-Cookie: x")


def test_utm_params_read_only_the_three_fields_cleaned():
    url = "https://v.fr/?utm_source=crieur&utm_campaign=%3Cb%3E%00x&utm_term=t&x=1#utm_medium=z"
    assert utm_params(url) == {"utm_source": "crieur", "utm_campaign": "<b> x"}


def test_utm_params_from_a_bare_query_string():
    assert utm_params("?utm_medium=email&utm_medium=sms") == {"utm_medium": "email"}


def test_utm_params_bound_a_query_with_thousands_of_fields():
    query = "&".join(f"a{i}=1" for i in range(10_000)) + "&utm_source=late"
    assert utm_params(query) == {}


def test_utm_value_of_ten_kilobytes_is_capped():
    assert len(utm_params("utm_campaign=" + TEN_KB)["utm_campaign"]) == UTM_MAX


@pytest.mark.parametrize("key", ["abc_DEF-123", "x"])
def test_plausible_site_keys_are_kept(key):
    assert clean_site_key(key) == key


@pytest.mark.parametrize("key", ["", "a" * 41, "../etc", "a b", "<script>", None, 5])
def test_junk_site_keys_are_refused(key):
    assert clean_site_key(key) is None
