"""The cookieless website counter: script, beacon, no-script pixel, visits and campaigns."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from sqlalchemy import select

from analytics.models import DailySalt, SiteHit
from analytics.site import forget_salt_cache
from contacts.db import db
from tests.factories import make_list, make_org
from tests.factories_analytics import (
    BROWSER_UA,
    CLIENT_IP,
    PHONE_UA,
    flush_tracking,
    path_of,
    quiet_tracking_buffer,  # noqa: F401 - autouse fixture
    recipient_links,
    sent_campaign,
    tables_containing,
)
from tests.factories_contacts import make_contact

ENV = {"REMOTE_ADDR": CLIENT_IP}


@pytest.fixture(autouse=True)
def committed(org):
    """The body exists for other connections too (the salt is written on its own one)."""
    db.session.commit()


def _beacon(client, org, fields: dict | str, *, ua=BROWSER_UA, ip=CLIENT_IP, **headers):
    body = fields if isinstance(fields, str) else urlencode(fields)
    db.session.commit()
    return client.post(
        f"/s/{org.site_key}/hit",
        data=body,
        content_type="text/plain;charset=UTF-8",  # what sendBeacon sends for URLSearchParams
        headers={"User-Agent": ua, "Origin": "https://www.ville.example", **headers},
        environ_base={"REMOTE_ADDR": ip},
    )


def _hits() -> list[SiteHit]:
    flush_tracking()
    db.session.expire_all()
    return list(db.session.scalars(select(SiteHit).order_by(SiteHit.id)))


def test_the_script_is_served_for_a_known_site_key(client, org):
    response = client.get(f"/s/{org.site_key}.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert f"https://crieur.test/s/{org.site_key}/hit" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("key", ["unknown_key_123", "a" * 41, "<script>", "%00"])
def test_an_unknown_site_key_is_a_404_without_a_cookie(client, app, key):
    for path in (f"/s/{key}.js", f"/s/{key}/p.gif"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Set-Cookie" not in response.headers
    assert client.post(f"/s/{key}/hit", data="p=/").status_code == 404


def test_the_snippet_of_the_api_points_at_routes_the_app_serves(client, org, api):
    snippet = api("admin").get("/site").get_json()["snippet_html"]
    script = snippet.split('src="', 1)[1].split('"', 1)[0]
    pixel = snippet.split('<img src="', 1)[1].split('"', 1)[0]
    assert client.get(path_of(script)).status_code == 200
    assert (
        client.get(path_of(pixel), headers={"Referer": "https://www.ville.example/"}).status_code
        == 200
    )


def test_a_beacon_counts_one_page_view_and_answers_204(client, org):
    response = _beacon(
        client, org, {"p": "/agenda", "r": "www.google.fr", "e": "1", "utm_source": "lettre"}
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Set-Cookie" not in response.headers
    [hit] = _hits()
    assert (hit.path, hit.referrer_host, hit.utm_source) == ("/agenda", "www.google.fr", "lettre")
    assert hit.is_new_visit is True
    assert hit.device_class == "desktop"
    assert len(hit.visitor_hash) == 64


def test_the_image_fallback_of_the_script_counts_too(client, org):
    response = client.get(f"/s/{org.site_key}/hit?p=/contact&e=1", headers={"User-Agent": PHONE_UA})
    assert response.status_code == 200 and response.mimetype == "image/gif"
    [hit] = _hits()
    assert (hit.path, hit.device_class) == ("/contact", "phone")


def test_the_noscript_pixel_counts_the_page_of_its_referer_without_its_query(client, org):
    response = client.get(
        f"/s/{org.site_key}/p.gif",
        headers={"Referer": "https://www.ville.example/actus?email=jean@example.org&utm_source=x"},
    )
    assert response.status_code == 200 and len(response.data) == 43
    [hit] = _hits()
    assert (hit.path, hit.utm_source) == ("/actus", "x")
    assert "jean" not in hit.path


@pytest.mark.parametrize("header", [{"DNT": "1"}, {"Sec-GPC": "1"}])
def test_do_not_track_and_global_privacy_control_are_not_counted(client, org, header):
    assert _beacon(client, org, {"p": "/", "e": "1"}, **header).status_code == 204
    client.get(f"/s/{org.site_key}/p.gif", headers={"Referer": "https://www.v.example/", **header})
    assert _hits() == []


def test_a_head_request_is_never_counted(client, org):
    client.head(f"/s/{org.site_key}/hit?p=/x")
    client.head(f"/s/{org.site_key}/p.gif", headers={"Referer": "https://www.v.example/"})
    assert _hits() == []


def test_a_preflight_is_answered_for_any_origin(client, org):
    response = client.options(f"/s/{org.site_key}/hit", headers={"Origin": "https://a.example"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_the_beacon_needs_no_csrf_token_and_accepts_other_origins(app, org):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        client = app.test_client()
        assert _beacon(client, org, {"p": "/", "e": "1"}).status_code == 204
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert len(_hits()) == 1


# ---------------------------------------------------------------------------- visits


def test_pages_of_one_visit_count_one_visit(client, org):
    _beacon(client, org, {"p": "/", "e": "1"})
    _beacon(client, org, {"p": "/agenda"})
    _beacon(client, org, {"p": "/contact"})
    assert [h.is_new_visit for h in _hits()] == [True, False, False]


def test_another_network_or_browser_is_another_visitor(client, org):
    _beacon(client, org, {"p": "/"})
    _beacon(client, org, {"p": "/"}, ip="198.51.100.9")
    _beacon(client, org, {"p": "/"}, ua=PHONE_UA)
    hits = _hits()
    assert len({h.visitor_hash for h in hits}) == 3
    assert all(h.is_new_visit for h in hits)


def test_a_page_view_after_thirty_minutes_starts_a_new_visit(client, org):
    _beacon(client, org, {"p": "/"})
    [first] = _hits()
    first.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31)
    db.session.commit()
    _beacon(client, org, {"p": "/agenda"})
    assert [h.is_new_visit for h in _hits()] == [True, True]


def test_the_same_visitor_on_two_bodies_sites_gets_two_unrelated_hashes(client, org):
    other = make_org()
    db.session.commit()
    _beacon(client, org, {"p": "/"})
    _beacon(client, other, {"p": "/"})
    a, b = _hits()
    assert a.visitor_hash != b.visitor_hash


# ---------------------------------------------------------------------------- campaigns


def _campaign_visit_fields(client, org):
    """Follow a campaign link to the body's site, as a reader would: the landing URL's utm_*."""
    org.website_url = "https://www.ville.example"
    lst = make_list(org)
    contact = make_contact(org, lst)
    campaign, links, deliveries = sent_campaign(
        org, lst, [contact], urls=("https://www.ville.example/agenda",)
    )
    db.session.commit()
    values = recipient_links(org, campaign, links).values(deliveries[0].id, contact.id, lst.id)
    landing = client.get(path_of(values["link_1"]), headers={"User-Agent": BROWSER_UA})
    query = dict(parse_qsl(urlsplit(landing.headers["Location"]).query))
    return campaign, {"p": "/agenda", "e": "1", **query}


def test_a_visit_from_a_campaign_link_is_attributed_to_that_campaign(client, org, api):
    campaign, fields = _campaign_visit_fields(client, org)
    _beacon(client, org, fields)
    _beacon(client, org, {"p": "/contact"})
    hits = _hits()
    assert [h.campaign_id for h in hits] == [campaign.id, campaign.id]
    assert [h.is_new_visit for h in hits] == [True, False]
    stats = api("director").get(f"/campaigns/{campaign.id}/stats").get_json()
    assert stats["site_visits"] == 1


def test_another_bodys_campaign_in_utm_is_not_attributed(client, org):
    campaign, fields = _campaign_visit_fields(client, org)
    other = make_org()
    db.session.commit()
    _beacon(client, other, fields)
    [hit] = _hits()
    assert hit.campaign_id is None
    assert hit.utm_campaign == fields["utm_campaign"]


def test_a_returning_visitor_from_a_campaign_starts_a_visit_for_it(client, org):
    _beacon(client, org, {"p": "/", "e": "1"})
    campaign, fields = _campaign_visit_fields(client, org)
    _beacon(client, org, fields)
    hits = _hits()
    assert [(h.is_new_visit, h.campaign_id) for h in hits] == [(True, None), (True, campaign.id)]


# ---------------------------------------------------------------------------- hostile input


HOSTILE = "<script>alert(1)</script>\x00<img src=x onerror=alert(2)>" + "A" * 10_000


def test_hostile_fields_are_stored_bounded_and_shown_escaped(client, org, login_as):
    fields = {
        "p": "/" + HOSTILE,
        "r": HOSTILE,
        "e": "1",
        "utm_source": HOSTILE,
        "utm_medium": HOSTILE,
        "utm_campaign": HOSTILE,
    }
    response = client.post(
        f"/s/{org.site_key}/hit",
        data=urlencode(fields)[:4000],
        content_type="text/plain",
        headers={"User-Agent": HOSTILE[:3000], "Referer": HOSTILE[:3000]},
    )
    assert response.status_code == 204
    [hit] = _hits()
    assert len(hit.path) <= 500 and len(hit.utm_campaign) <= 100
    for value in (hit.path, hit.referrer_host, hit.utm_source, hit.utm_campaign):
        assert "\x00" not in value
    assert hit.referrer_host == ""
    login_as("director")
    page = client.get("/analytics/").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)" in page


@pytest.mark.parametrize(
    "body",
    ["", "e=1", "p=javascript:alert(1)", "p=%00", "&".join(f"k{i}=v" for i in range(50))],
    ids=["empty", "no-path", "js-url", "nul", "many-fields"],
)
def test_junk_beacons_are_4xx_and_store_nothing(client, org, body):
    response = _beacon(client, org, body)
    assert 400 <= response.status_code < 500
    assert _hits() == []


def test_a_huge_beacon_body_is_refused_with_413(client, org):
    response = _beacon(client, org, "p=/&x=" + "A" * 1_000_000)
    assert response.status_code == 413
    assert _hits() == []


def test_no_address_is_stored_and_the_salt_is_the_only_key(client, org):
    _beacon(client, org, {"p": f"/{CLIENT_IP}", "r": CLIENT_IP, "e": "1"}, ua=f"UA {CLIENT_IP}")
    client.get(
        f"/s/{org.site_key}/p.gif",
        headers={"Referer": f"http://{CLIENT_IP}/page", "X-Forwarded-For": CLIENT_IP},
        environ_base=ENV,
    )
    hits = _hits()
    assert len(hits) == 2
    found = [t for t in tables_containing(CLIENT_IP) if t != "site_hits.path"]
    assert found == []  # the only copy is the page path the test itself chose


# ---------------------------------------------------------------------------- salt


def test_only_todays_salt_is_kept(client, org):
    forget_salt_cache()
    db.session.add(DailySalt(day=dt.date.today() - dt.timedelta(days=1), salt="old" * 10))
    db.session.commit()
    _beacon(client, org, {"p": "/"})
    _hits()
    days = db.session.scalars(select(DailySalt.day)).all()
    assert days == [dt.datetime.now(dt.UTC).date()]


def test_a_new_salt_makes_the_same_visitor_unrecognisable(client, org):
    forget_salt_cache()
    _beacon(client, org, {"p": "/"})
    db.session.execute(DailySalt.__table__.delete())
    db.session.commit()
    forget_salt_cache()
    _beacon(client, org, {"p": "/"})
    a, b = _hits()
    assert a.visitor_hash != b.visitor_hash
