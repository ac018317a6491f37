"""The open pixel and the click redirect, with the links ``campaigns.links`` builds."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from analytics.models import TrackingEvent
from analytics.tokens import sign
from contacts.db import db
from tests.factories import make_list, make_org
from tests.factories_analytics import (
    BROWSER_UA,
    CLIENT_IP,
    GOOGLE_PROXY_UA,
    PHONE_UA,
    flush_tracking,
    path_of,
    quiet_tracking_buffer,  # noqa: F401 - autouse fixture
    recipient_links,
    sent_campaign,
    tables_containing,
)
from tests.factories_contacts import make_contact

SECRET = "test-secret-key-not-for-production"
ENV = {"REMOTE_ADDR": CLIENT_IP}


@pytest.fixture
def sent(app, org):
    """A campaign sent two hours ago to two contacts: (campaign, links, deliveries, urls)."""
    lst = make_list(org)
    contacts = [make_contact(org, lst), make_contact(org, lst)]
    campaign, links, deliveries = sent_campaign(org, lst, contacts)
    db.session.commit()
    builder = recipient_links(org, campaign, links)
    urls = [builder.values(d.id, c.id, lst.id) for d, c in zip(deliveries, contacts, strict=True)]
    return campaign, links, deliveries, urls


def _events(**filters) -> list[TrackingEvent]:
    flush_tracking()
    db.session.expire_all()
    query = select(TrackingEvent).order_by(TrackingEvent.id)
    for name, value in filters.items():
        query = query.where(getattr(TrackingEvent, name) == value)
    return list(db.session.scalars(query))


def _get(client, url, ua=BROWSER_UA, **kw):
    return client.get(path_of(url), headers={"User-Agent": ua}, environ_base=ENV, **kw)


# ---------------------------------------------------------------------------- pixel


def test_pixel_answers_a_43_byte_gif_that_is_never_cached(client, sent):
    response = _get(client, sent[3][0]["open_pixel_url"])
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    assert len(response.data) == 43 and response.data.startswith(b"GIF89a")
    assert "no-store" in response.headers["Cache-Control"]


def test_pixel_records_one_human_open_with_device_and_client_only(client, sent):
    _get(client, sent[3][0]["open_pixel_url"], ua=PHONE_UA)
    [event] = _events()
    assert (event.kind, event.is_machine) == ("open", False)
    assert (event.device_class, event.client_family) == ("phone", "Apple Mail")
    assert event.campaign_id == sent[0].id
    assert len(event.recipient_key) == 10


def test_pixel_under_the_aggregate_policy_stores_no_contact_and_no_delivery(client, sent):
    _get(client, sent[3][0]["open_pixel_url"])
    [event] = _events()
    assert event.contact_id is None and event.delivery_id is None


def test_two_opens_of_one_message_share_a_recipient_key_and_two_messages_do_not(client, sent):
    urls = sent[3]
    _get(client, urls[0]["open_pixel_url"])
    _get(client, urls[0]["open_pixel_url"])
    _get(client, urls[1]["open_pixel_url"])
    keys = [e.recipient_key for e in _events()]
    assert keys[0] == keys[1] != keys[2]


def test_head_on_the_pixel_is_counted_as_a_machine(client, sent):
    response = client.head(
        path_of(sent[3][0]["open_pixel_url"]), headers={"User-Agent": BROWSER_UA}
    )
    assert response.status_code == 200
    [event] = _events()
    assert event.is_machine is True


def test_an_image_proxy_prefetch_seconds_after_delivery_is_a_machine(client, org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    just_now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    campaign, links, deliveries = sent_campaign(org, lst, [contact], started_at=just_now)
    db.session.commit()
    url = recipient_links(org, campaign, links).values(deliveries[0].id, contact.id, lst.id)
    _get(client, url["open_pixel_url"], ua=GOOGLE_PROXY_UA)
    [event] = _events()
    assert event.is_machine is True
    assert event.client_family == "GoogleImageProxy"


def test_an_image_proxy_fetch_an_hour_later_is_the_person_opening(client, sent):
    _get(client, sent[3][0]["open_pixel_url"], ua=GOOGLE_PROXY_UA)
    [event] = _events()
    assert event.is_machine is False


def test_machine_opens_are_counted_apart_in_the_stats(client, sent, api):
    urls = sent[3]
    client.head(path_of(urls[0]["open_pixel_url"]))
    _get(client, urls[1]["open_pixel_url"])
    flush_tracking()
    stats = api("director").get(f"/campaigns/{sent[0].id}/stats").get_json()
    assert (stats["opens_unique"], stats["opens_machine"]) == (1, 1)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # MAC changed
        lambda t: "1" + t,  # payload changed
        lambda t: t.split(".", 1)[1],  # a field removed
        lambda t: "x" * 2000,  # huge junk
        lambda t: "%00%3Cscript%3E",  # NUL and markup
        lambda t: "é" * 30,  # not ASCII
    ],
    ids=["mac", "payload", "field", "huge", "nul", "unicode"],
)
def test_a_changed_pixel_token_is_a_404_and_records_nothing(client, sent, mangle):
    token = sent[3][0]["open_pixel_url"].rsplit("/", 1)[1].removesuffix(".gif")
    response = client.get(f"/t/o/{mangle(token)}.gif")
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert _events() == []


def test_a_pixel_token_of_another_purpose_is_refused(client, sent):
    click_token = sent[3][0]["link_1"].rsplit("/", 1)[1]
    assert client.get(f"/t/o/{click_token}.gif").status_code == 404
    assert _events() == []


def test_a_pixel_for_a_campaign_that_no_longer_exists_is_dropped_quietly(client, app):
    token = sign(SECRET, "open", 999_999, 0, "abcdefghij")
    assert client.get(f"/t/o/{token}.gif").status_code == 200
    assert _events() == []


def test_hostile_user_agents_are_reduced_to_labels_and_never_break_the_pixel(client, sent):
    hostile = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>" * 400,  # ~11 kB
        "Mozilla/5.0\x00<svg onload=alert(1)>",
        "",
    ]
    for ua in hostile:
        response = client.get(path_of(sent[3][0]["open_pixel_url"]), headers={"User-Agent": ua})
        assert response.status_code == 200
    events = _events()
    assert len(events) == 4
    for event in events:
        assert "<" not in event.client_family and "\x00" not in event.client_family
        assert event.device_class in ("phone", "tablet", "desktop", "unknown")
        assert event.value == ""
    assert events[-1].is_machine  # no User-Agent at all


# ---------------------------------------------------------------------------- click


def test_click_redirects_to_the_stored_url_with_302(client, sent):
    response = _get(client, sent[3][0]["link_2"])
    assert response.status_code == 302
    assert response.headers["Location"] == "https://autre.example.org/doc"
    assert "no-store" in response.headers["Cache-Control"]


def test_click_records_a_human_click_on_that_link(client, sent):
    _get(client, sent[3][0]["link_2"])
    [event] = _events()
    assert (event.kind, event.link_id, event.is_machine) == ("click", sent[1][1].id, False)


def test_links_to_the_bodys_own_site_get_the_campaign_utm(client, org):
    org.website_url = "https://www.exemple.fr"
    lst = make_list(org)
    contact = make_contact(org, lst)
    campaign, links, deliveries = sent_campaign(org, lst, [contact])
    db.session.commit()
    url = recipient_links(org, campaign, links).values(deliveries[0].id, contact.id, lst.id)
    location = _get(client, url["link_1"]).headers["Location"]
    assert location.startswith("https://www.exemple.fr/agenda?utm_source=crieur")
    assert campaign.uuid in location
    other = _get(client, url["link_2"]).headers["Location"]
    assert other == "https://autre.example.org/doc"


@pytest.mark.parametrize(
    "suffix",
    ["?url=https://evil.example", "?url=//evil.example", "?url=/\\evil.example",
     "?next=https://evil.example&url=javascript:alert(1)"],
)  # fmt: skip
def test_url_parameters_on_a_click_are_ignored(client, sent, suffix):
    response = client.get(path_of(sent[3][0]["link_1"]) + suffix)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://www.exemple.fr/agenda"


@pytest.mark.parametrize("suffix", ["?url=https://evil.example", "//evil.example", "/\\evil"])
def test_a_tampered_click_token_with_an_url_parameter_is_a_404_without_location(
    client, sent, suffix
):
    token = sent[3][0]["link_1"].rsplit("/", 1)[1]
    response = client.get(f"/t/c/{token[:-2]}xx{suffix}")
    assert response.status_code == 404
    assert "Location" not in response.headers


def test_a_click_token_naming_a_link_of_another_campaign_is_a_404(client, sent, org):
    lst = make_list(org)
    other, other_links, _ = sent_campaign(org, lst, [], urls=("https://ailleurs.example/x",))
    db.session.commit()
    token = sign(SECRET, "click", sent[0].id, 0, "abcdefghij", other_links[0].id)
    response = client.get(f"/t/c/{token}")
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert _events() == []


def test_a_click_token_of_another_body_is_a_404(client, sent):
    other_org = make_org()
    lst = make_list(other_org)
    contact = make_contact(other_org, lst)
    campaign, links, deliveries = sent_campaign(other_org, lst, [contact])
    db.session.commit()
    token = sign(SECRET, "click", sent[0].id, 0, "abcdefghij", links[0].id)
    assert client.get(f"/t/c/{token}").status_code == 404


def test_a_click_token_for_an_unknown_link_is_a_404(client, sent):
    token = sign(SECRET, "click", sent[0].id, 0, "abcdefghij", 987_654)
    response = client.get(f"/t/c/{token}")
    assert response.status_code == 404 and "Location" not in response.headers


def test_a_click_token_signed_with_another_secret_is_a_404(client, sent):
    token = sign("another-secret", "click", sent[0].id, 0, "abcdefghij", sent[1][0].id)
    assert client.get(f"/t/c/{token}").status_code == 404


def test_an_open_token_is_not_accepted_as_a_click(client, sent):
    token = sign(SECRET, "open", sent[0].id, 0, "abcdefghij", sent[1][0].id)
    assert client.get(f"/t/c/{token}").status_code == 404


@pytest.mark.parametrize("junk", ["", "x", "a.b.c", "1.2.3.4.5", "%00", "..%2F..%2Fetc%2Fpasswd"])
def test_junk_click_tokens_are_404_never_500(client, app, junk):
    response = client.get(f"/t/c/{junk}")
    assert response.status_code == 404


def test_a_scanner_clicking_every_link_within_a_second_is_a_machine(client, sent):
    urls = sent[3][0]
    _get(client, urls["link_1"])
    _get(client, urls["link_2"])
    events = _events()
    assert [e.is_machine for e in events] == [False, True]


def test_a_head_on_a_click_link_is_a_machine_and_still_redirects(client, sent):
    response = client.head(path_of(sent[3][0]["link_1"]), headers={"User-Agent": BROWSER_UA})
    assert response.status_code == 302
    [event] = _events()
    assert event.is_machine is True


# ---------------------------------------------------------------------------- policies


def _per_contact_campaign(org, consent: bool):
    org.tracking_policy = "per_contact"
    lst = make_list(org)
    contact = make_contact(org, lst, tracking_consent=consent)
    campaign, links, deliveries = sent_campaign(org, lst, [contact])
    db.session.commit()
    values = recipient_links(org, campaign, links).values(
        deliveries[0].id, contact.id, lst.id, tracking_consent=consent
    )
    return contact, deliveries[0], values


def test_per_contact_policy_with_consent_names_the_contact(client, org):
    contact, delivery, values = _per_contact_campaign(org, consent=True)
    _get(client, values["open_pixel_url"])
    [event] = _events()
    assert (event.contact_id, event.delivery_id) == (contact.id, delivery.id)


def test_per_contact_policy_without_consent_names_nobody(client, org):
    _, _, values = _per_contact_campaign(org, consent=False)
    _get(client, values["open_pixel_url"])
    _get(client, values["link_1"])
    for event in _events():
        assert event.contact_id is None and event.delivery_id is None


def test_consent_withdrawn_after_sending_is_honoured_when_the_event_is_stored(client, org):
    from contacts.consent import record_tracking_consent

    contact, _, values = _per_contact_campaign(org, consent=True)
    record_tracking_consent(org.id, contact.id, False)
    db.session.commit()
    _get(client, values["open_pixel_url"])
    [event] = _events()
    assert event.contact_id is None and event.delivery_id is None


def test_a_body_that_moved_to_aggregates_stores_no_contact_from_older_links(client, org):
    _, _, values = _per_contact_campaign(org, consent=True)
    org.tracking_policy = "aggregate"
    db.session.commit()
    _get(client, values["link_1"])
    [event] = _events()
    assert event.contact_id is None and event.delivery_id is None


def test_policy_off_puts_no_pixel_and_no_redirect_in_the_links(app, org):
    org.tracking_policy = "off"
    lst = make_list(org)
    contact = make_contact(org, lst)
    campaign, links, deliveries = sent_campaign(org, lst, [contact])
    db.session.commit()
    values = recipient_links(org, campaign, links).values(deliveries[0].id, contact.id, lst.id)
    assert values["open_pixel_url"].startswith("data:image/gif")
    assert values["link_1"] == "https://www.exemple.fr/agenda"
    assert "/t/" not in " ".join(v for k, v in values.items() if k.startswith("link_"))


def test_policy_off_stores_nothing_even_for_links_sent_before(client, org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    campaign, links, deliveries = sent_campaign(org, lst, [contact])
    values = recipient_links(org, campaign, links, policy="aggregate").values(
        deliveries[0].id, contact.id, lst.id
    )
    org.tracking_policy = "off"
    db.session.commit()
    assert _get(client, values["open_pixel_url"]).status_code == 200
    assert _get(client, values["link_1"]).status_code == 302  # the link still works
    assert _events() == []


def test_no_client_address_is_stored_anywhere(client, sent):
    urls = sent[3][0]
    _get(client, urls["open_pixel_url"], ua=f"Mozilla/5.0 {CLIENT_IP}")
    client.get(
        path_of(urls["link_1"]),
        headers={"User-Agent": BROWSER_UA, "X-Forwarded-For": CLIENT_IP, "Referer": CLIENT_IP},
        environ_base=ENV,
    )
    flush_tracking()
    assert len(_events()) == 2
    assert tables_containing(CLIENT_IP) == []


@pytest.mark.parametrize("stored", ["javascript:alert(1)", "//evil.example/x", "/relative/path"])
def test_a_stored_link_that_is_not_an_http_url_is_never_redirected_to(client, org, stored):
    lst = make_list(org)
    contact = make_contact(org, lst)
    campaign, links, deliveries = sent_campaign(org, lst, [contact], urls=(stored,))
    db.session.commit()
    values = recipient_links(org, campaign, links).values(deliveries[0].id, contact.id, lst.id)
    response = _get(client, values["link_1"])
    assert response.status_code == 404 and "Location" not in response.headers
