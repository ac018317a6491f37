"""The cookieless website counter, visitor hashes and UTM links."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from analytics.snippet import (
    add_utm,
    campaign_from_utm,
    hit_from_beacon,
    hit_from_pixel,
    network_prefix,
    new_daily_salt,
    site_script,
    snippet_html,
    utm_campaign_value,
    visitor_hash,
)
from tests.services import need

PUBLIC = "https://crieur.example.fr/"
KEY = "Ab3_x-9"
UUID = "0b8f7a8e-1111-2222-3333-444455556666"


def test_snippet_loads_the_script_async_with_a_noscript_pixel():
    html = snippet_html(PUBLIC, KEY)
    assert '<script async src="https://crieur.example.fr/s/Ab3_x-9.js"></script>' in html
    assert '<noscript><img src="https://crieur.example.fr/s/Ab3_x-9/p.gif" alt=""' in html


@pytest.mark.parametrize("key", ['x"><script>', "../k", "", "a b"])
def test_snippet_refuses_a_key_that_could_break_out(key):
    with pytest.raises(ValueError):
        snippet_html(PUBLIC, key)


def test_snippet_refuses_a_non_http_public_url():
    with pytest.raises(ValueError):
        snippet_html("javascript:alert(1)//", KEY)


def test_script_uses_no_cookie_and_no_storage():
    js = site_script(PUBLIC, KEY).lower()
    for word in ("cookie", "localstorage", "sessionstorage", "indexeddb", "caches"):
        assert word not in js


def test_script_honours_do_not_track_and_global_privacy_control():
    js = site_script(PUBLIC, KEY)
    assert "doNotTrack" in js and "globalPrivacyControl" in js


def test_script_posts_to_the_hit_endpoint_of_its_site():
    js = site_script(PUBLIC, KEY)
    assert '"https://crieur.example.fr/s/Ab3_x-9/hit"' in js
    assert "sendBeacon" in js


def test_script_is_tiny():
    assert len(site_script(PUBLIC, KEY).encode()) < 1024


_HARNESS = """
const sent = [];
global.window = {location: {pathname: %(path)s, search: %(search)s, hostname: "ville.fr"},
                 doNotTrack: null};
global.document = {referrer: %(referrer)s};
global.navigator = {doNotTrack: %(dnt)s, globalPrivacyControl: %(gpc)s,
                    sendBeacon: (u, d) => { sent.push([u, String(d)]); return true; }};
global.Image = function () {};
eval(%(script)s);
process.stdout.write(JSON.stringify(sent));
"""


def _run(path="/agenda", search="", referrer="", dnt="null", gpc="false"):
    node = shutil.which("node")
    need("node", node is not None, "node is not installed")
    code = _HARNESS % {
        "path": json.dumps(path),
        "search": json.dumps(search),
        "referrer": json.dumps(referrer),
        "dnt": dnt,
        "gpc": gpc,
        "script": json.dumps(site_script(PUBLIC, KEY)),
    }
    out = subprocess.run([node, "-e", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_script_sends_path_referrer_host_entry_and_utm_only():
    sent = _run(
        search="?utm_source=crieur&utm_campaign=c1&email=a@b.fr",
        referrer="https://www.google.com/search?q=secret",
    )
    assert len(sent) == 1
    url, body = sent[0]
    assert url == "https://crieur.example.fr/s/Ab3_x-9/hit"
    assert body == "p=%2Fagenda&r=www.google.com&e=1&utm_source=crieur&utm_campaign=c1"


def test_script_marks_internal_navigation_as_no_entry():
    [(_, body)] = _run(referrer="https://ville.fr/accueil")
    assert body == "p=%2Fagenda"


@pytest.mark.parametrize(("dnt", "gpc"), [('"1"', "false"), ("null", "true")])
def test_script_sends_nothing_under_dnt_or_gpc(dnt, gpc):
    assert _run(dnt=dnt, gpc=gpc) == []


def test_beacon_fields_are_bounded_and_cleaned():
    hit = hit_from_beacon(
        {
            "p": "/a?email=x@y.fr",
            "r": "WWW.Google.com/x",
            "e": "1",
            "utm_campaign": "<script>" + "x" * 10_000,
            "utm_source": "\x00crieur",
        }
    )
    assert hit.path == "/a"
    assert hit.referrer_host == "www.google.com"
    assert hit.is_entry is True
    assert hit.utm_campaign.startswith("<script>") and len(hit.utm_campaign) == 100
    assert hit.utm_source == "crieur"


@pytest.mark.parametrize("path", ["javascript:alert(1)", None, "", "//evil"])
def test_beacon_without_a_usable_path_is_refused(path):
    assert hit_from_beacon({"p": path}) is None


def test_pixel_hit_comes_from_the_referer_page():
    hit = hit_from_pixel("https://ville.fr/agenda?utm_source=crieur&email=a@b.fr")
    assert (hit.path, hit.utm_source, hit.referrer_host) == ("/agenda", "crieur", "")
    assert hit_from_pixel("javascript:alert(1)") is None
    assert hit_from_pixel(None) is None


def test_network_prefix_truncates_ipv4_to_24_and_ipv6_to_48():
    assert network_prefix("203.0.113.77") == "203.0.113.0/24"
    assert network_prefix("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::/48"
    assert network_prefix("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert network_prefix("not an ip") == ""


def test_visitor_hash_is_hex_sha256_without_the_ip():
    h = visitor_hash("salt", KEY, "UA", "203.0.113.77")
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert "203.0.113" not in h


def test_visitor_hash_is_the_same_within_a_network_and_day():
    assert visitor_hash("s", KEY, "UA", "203.0.113.7") == visitor_hash(
        "s", KEY, "UA", "203.0.113.250"
    )
    assert visitor_hash("s", KEY, "UA", "203.0.113.7") == visitor_hash(
        "s", KEY, "UA", "203.0.113.0/24"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"daily_salt": "other day"},
        {"site_key": "other-site"},
        {"user_agent": "other UA"},
        {"network": "203.0.114.7"},
    ],
)
def test_visitor_hash_changes_with_salt_site_ua_or_network(change):
    base = {"daily_salt": "s", "site_key": KEY, "user_agent": "UA", "network": "203.0.113.7"}
    assert visitor_hash(**base) != visitor_hash(**{**base, **change})


def test_visitor_hash_needs_a_salt():
    with pytest.raises(ValueError):
        visitor_hash("", KEY, "UA", "203.0.113.7")


def test_daily_salts_are_random_and_fit_the_column():
    a, b = new_daily_salt(), new_daily_salt()
    assert a != b and len(a) == 64


def test_utm_is_added_to_links_to_the_body_site_keeping_query_and_fragment():
    url = add_utm("https://www.ville.fr/agenda?x=1&y=%C3%A9#top", "c1", body_domains=["ville.fr"])
    assert url == (
        "https://www.ville.fr/agenda?x=1&y=%C3%A9&utm_source=crieur&utm_medium=email"
        "&utm_campaign=c1#top"
    )


def test_utm_is_added_to_subdomains_and_when_the_body_gives_a_url():
    url = add_utm("http://agenda.ville.fr/", "c1", body_domains=["https://www.ville.fr/"])
    assert url == "http://agenda.ville.fr/?utm_source=crieur&utm_medium=email&utm_campaign=c1"


@pytest.mark.parametrize(
    "url",
    [
        "https://other.fr/page",
        "https://evil.fr/ville.fr",
        "https://ville.fr.evil.fr/",
        "https://notville.fr/",
        "mailto:mairie@ville.fr",
        "javascript:alert('ville.fr')",
    ],
)
def test_utm_is_not_added_to_other_sites(url):
    assert add_utm(url, "c1", body_domains=["ville.fr"]) == url


def test_utm_set_by_the_author_wins():
    url = add_utm("https://ville.fr/?utm_campaign=mine", "c1", body_domains=["ville.fr"])
    assert url == "https://ville.fr/?utm_campaign=mine&utm_source=crieur&utm_medium=email"


def test_utm_values_are_percent_encoded():
    url = add_utm("https://ville.fr/", "fête & co", body_domains=["ville.fr"])
    assert url.endswith("utm_campaign=f%C3%AAte%20%26%20co")


def test_utm_without_body_domains_changes_nothing():
    assert add_utm("https://ville.fr/", "c1") == "https://ville.fr/"


def test_utm_campaign_value_reads_back_to_the_uuid():
    value = utm_campaign_value(UUID, "Lettre de mars : l'été !")
    assert value == f"lettre-de-mars-l-ete-{UUID}"
    assert campaign_from_utm(value) == UUID
    assert campaign_from_utm(UUID.upper()) == UUID


@pytest.mark.parametrize("value", ["spring-sale", "", None, "x" + UUID, UUID + "-x", 12])
def test_utm_of_another_tool_names_no_campaign(value):
    assert campaign_from_utm(value) is None
