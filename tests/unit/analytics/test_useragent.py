"""User-Agent reduction to (device class, client family)."""

from __future__ import annotations

import pytest

from analytics.useragent import parse_user_agent

UAS = [
    # (UA, device, family)
    (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        "unknown",
        "GoogleImageProxy",
    ),
    (
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
        "unknown",
        "Yahoo",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148",
        "phone",
        "Apple Mail",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        "desktop",
        "Apple Mail",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148",
        "tablet",
        "Apple Mail",
    ),
    (
        "Mozilla/4.0 (compatible; ms-office; MSOffice 16) Microsoft Outlook 16.0.17029; Pro)",
        "desktop",
        "Outlook",
    ),
    ("Outlook-iOS/723.4027091.prod.iphone (4.2317.0)", "phone", "Outlook"),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.4.1",
        "desktop",
        "Thunderbird",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "desktop",
        "Chrome",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61",
        "desktop",
        "Edge",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        "phone",
        "Samsung",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "tablet",
        "Chrome",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "phone",
        "Safari",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1 Safari/605.1.15",
        "desktop",
        "Safari",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "desktop",
        "Firefox",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
        "phone",
        "Chrome",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36 GmailApp",
        "phone",
        "Gmail",
    ),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "unknown", "Bot"),
    ("curl/8.4.0", "unknown", "Bot"),
    ("python-requests/2.31.0", "unknown", "Bot"),
    (
        "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/96.0.4664.45 Mobile Safari/537.36",
        "phone",
        "Chrome",
    ),
    ("Mozilla/5.0", "unknown", "Other"),
]


@pytest.mark.parametrize(("ua", "device", "family"), UAS)
def test_known_user_agents_reduce_to_device_and_family(ua, device, family):
    assert parse_user_agent(ua) == (device, family)


@pytest.mark.parametrize("junk", [None, "", "   ", 42, "\x00\x01", "<script>alert(1)</script>"])
def test_junk_user_agents_are_unknown_other(junk):
    assert parse_user_agent(junk) == ("unknown", "Other")


def test_huge_user_agent_is_classified_on_its_start():
    assert parse_user_agent("Mozilla/5.0 (iPhone; " + "x" * 100_000).device_class == "phone"


def test_bytes_user_agent_is_accepted():
    assert parse_user_agent(b"Thunderbird/115.0 (X11; Linux)").client_family == "Thunderbird"


def test_result_names_fields():
    info = parse_user_agent("Mozilla/5.0 (Windows NT 10.0) Firefox/121.0")
    assert (info.device_class, info.client_family) == ("desktop", "Firefox")
