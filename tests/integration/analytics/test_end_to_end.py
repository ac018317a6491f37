"""From a real e-mail to the director's page: an invitation compiled by mjml, sent by the
sending engine through a real SMTP server, then read, clicked and answered as mail
clients and people would, and the figures checked on the page and in the API."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from analytics.models import TrackingEvent
from campaigns import sending
from campaigns.models import Campaign, Delivery
from contacts.db import db
from tests.factories import make_list
from tests.factories_analytics import (
    BROWSER_UA,
    CLIENT_IP,
    GOOGLE_PROXY_UA,
    PHONE_UA,
    flush_tracking,
    path_of,
    quiet_tracking_buffer,  # noqa: F401 - autouse fixture
    tables_containing,
)
from tests.factories_campaigns import make_campaign, make_event
from tests.factories_contacts import make_contact
from tests.integration.sending.support import FAST_CONFIG, drive, parse
from tests.services import mjml_available, need

pytestmark = [pytest.mark.smtp, pytest.mark.mjml]

ENV = {"REMOTE_ADDR": CLIENT_IP}
THUNDERBIRD_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"
)
BLOCKS = [
    {"type": "heading", "text": "Inauguration de la médiathèque"},
    {
        "type": "text",
        "markdown": "Bonjour {{ first_name }}, [le programme](https://www.ville.example.fr/programme).",
    },
    {"type": "button", "label": "Plan d'accès", "url": "https://cartes.example.org/plan"},
    {"type": "event"},
    {"type": "rsvp"},
    {"type": "poll", "question": "Quel horaire préférez-vous ?", "options": ["Matin", "Soir"]},
]


@pytest.fixture
def app_config() -> dict:
    return dict(FAST_CONFIG)


@pytest.fixture
def relay():
    try:
        from tests.smtp_servers import RecordingSMTPServer
    except ImportError:  # aiosmtpd missing
        need("aiosmtpd", False, "pip install aiosmtpd")
    server = RecordingSMTPServer(pipelining=True).start()
    yield server
    server.stop()
    from campaigns import mailer

    mailer.close_all()


@pytest.fixture
def body(org, relay):
    need("mjml", mjml_available(), "node or node_modules/mjml missing")
    org.smtp_url = f"smtp://{relay.url_hostport}"
    org.website_url = "https://www.ville.example.fr"
    db.session.flush()
    return org


def _send(app, body, relay, n: int = 3, *, consent: bool = False):
    """Send the invitation to ``n`` people; returns (campaign, [(contact, html, text)])."""
    lst = make_list(body, purpose="invitations")
    contacts = [make_contact(body, lst, tracking_consent=consent) for _ in range(n)]
    campaign = make_campaign(
        body,
        kind="invitation",
        blocks=BLOCKS,
        event=make_event(capacity=100),
        list_ids=[lst.id],
        status="approved",
        compile=True,
    )
    db.session.commit()
    sending.start_sending(body.id, campaign, None, "officer")
    db.session.commit()
    drive(app, campaign.id)
    by_address = {}
    for received in relay.messages:
        msg = parse(received.content)
        by_address[received.rcpt_tos[0]] = (
            unescape(msg.get_body(("html",)).get_content()),
            msg.get_body(("plain",)).get_content(),
        )
    return campaign, [(c, *by_address[c.email]) for c in contacts]


def _urls(html: str, kind: str) -> list[str]:
    return re.findall(rf'https://crieur\.test/t/{kind}/[^"\s<>]+', html)


def _pixel(html: str) -> str:
    [url] = set(_urls(html, "o"))
    return path_of(url)


def _link_to(html: str, target: str) -> str:
    """The tracked link of ``html`` whose stored URL is ``target`` (read from its token)."""
    from analytics.tokens import verify
    from campaigns.models import CampaignLink

    for url in dict.fromkeys(_urls(html, "c")):
        link_id = verify(app_secret(), "click", url.rsplit("/", 1)[1])[3]
        if db.session.get(CampaignLink, link_id).url == target:
            return url
    raise AssertionError(f"no tracked link to {target}")


def app_secret() -> str:
    from flask import current_app

    return current_app.config["CRIEUR_SECRET_KEY"]


def _an_hour_passes(campaign: Campaign) -> None:
    """Move the send an hour back, so what follows is a person reading later."""
    hour = dt.timedelta(hours=1)
    db.session.refresh(campaign)
    campaign.started_at = campaign.started_at - hour
    for row in db.session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)):
        row.sent_at = row.sent_at - hour
    db.session.commit()


def test_a_real_invitation_read_clicked_and_answered_gives_the_right_figures(
    app, client, body, relay, api, login_as
):
    campaign, mails = _send(app, body, relay, 3)
    (alice, a_html, a_text), (bruno, b_html, _), (chloe, c_html, _) = mails
    assert f"Bonjour {alice.first_name}" in a_html

    # Seconds after delivery, Gmail's proxy and a security gateway prefetch Chloé's copy.
    client.get(_pixel(c_html), headers={"User-Agent": GOOGLE_PROXY_UA}, environ_base=ENV)
    client.head(_pixel(c_html), environ_base=ENV)
    # A link scanner opens every link of Chloé's message within a second.
    for url in dict.fromkeys(_urls(c_html, "c")):
        client.get(
            path_of(url),
            headers={"User-Agent": "Mozilla/5.0 (compatible; SafeLinks)"},
            environ_base=ENV,
        )
    flush_tracking()
    _an_hour_passes(campaign)

    # Alice reads on her phone, clicks the programme, answers yes and "Soir", visits the site.
    client.get(_pixel(a_html), headers={"User-Agent": PHONE_UA}, environ_base=ENV)
    programme = _link_to(a_html, "https://www.ville.example.fr/programme")
    landing = client.get(path_of(programme), headers={"User-Agent": PHONE_UA}, environ_base=ENV)
    assert landing.status_code == 302
    location = landing.headers["Location"]
    assert location.startswith("https://www.ville.example.fr/programme?utm_source=crieur")
    [rsvp_yes] = [u for u in _urls(a_html, "r")][:1]
    page = client.get(path_of(rsvp_yes), environ_base=ENV)
    assert page.status_code == 200 and "Confirmer ma réponse" in page.get_data(as_text=True)
    client.post(path_of(rsvp_yes), data={"answer": "yes"}, environ_base=ENV)
    poll_urls = list(dict.fromkeys(_urls(a_html, "p")))
    client.post(path_of(poll_urls[1]), environ_base=ENV)
    site = client.post(
        f"/s/{body.site_key}/hit",
        data=f"p={urlsplit(location).path}&e=1&{urlsplit(location).query}",
        content_type="text/plain",
        headers={"User-Agent": PHONE_UA},
        environ_base=ENV,
    )
    assert site.status_code == 204
    # Bruno reads in Thunderbird, twice, and says no.
    client.get(_pixel(b_html), headers={"User-Agent": THUNDERBIRD_UA}, environ_base=ENV)
    client.get(_pixel(b_html), headers={"User-Agent": THUNDERBIRD_UA}, environ_base=ENV)
    [_, rsvp_no, _] = list(dict.fromkeys(_urls(b_html, "r")))
    client.post(path_of(rsvp_no), environ_base=ENV)
    flush_tracking()

    stats = api("director").get(f"/campaigns/{campaign.id}/stats").get_json()
    assert (stats["recipients"], stats["sent"], stats["failed"]) == (3, 3, 0)
    assert (stats["opens_unique"], stats["opens_machine"]) == (2, 1)
    assert stats["clicks_unique"] == 1
    assert stats["rsvp"] == {"yes": 1, "no": 1, "maybe": 0}
    assert stats["poll"] == {"Matin": 0, "Soir": 1}
    assert stats["site_visits"] == 1
    clicks = {link["url"]: link["clicks_unique"] for link in stats["links"]}
    assert clicks["https://www.ville.example.fr/programme"] == 1
    assert sum(clicks.values()) == 1

    login_as("director")
    html = client.get(f"/analytics/campaigns/{campaign.id}").get_data(as_text=True)
    figures = dict(re.findall(r'data-figure="([a-z_]+)">([^<]*)<', html))
    assert (figures["opens_unique"], figures["opens_machine"], figures["clicks_unique"]) == (
        "2",
        "1",
        "1",
    )
    assert figures["site_visits"] == "1" and figures["rsvp_yes"].startswith("1 / 100")

    # Aggregate policy (the default): no event names anyone.
    events = db.session.scalars(select(TrackingEvent)).all()
    assert events and all(e.contact_id is None and e.delivery_id is None for e in events)
    # And the client address is nowhere in the database.
    assert tables_containing(CLIENT_IP) == []


def test_a_tampered_link_from_a_real_mail_is_a_404_never_a_redirect(app, client, body, relay):
    _, [(_, html, _)] = _send(app, body, relay, 1)
    url = _urls(html, "c")[0]
    for bad in (url[:-1] + ("A" if url[-1] != "A" else "B"), url + "?url=https://evil.example"):
        response = client.get(path_of(bad))
        if "?url=" in bad:
            assert response.status_code == 302
            assert "evil" not in response.headers["Location"]
        else:
            assert response.status_code == 404 and "Location" not in response.headers


def test_policy_off_sends_no_pixel_and_no_redirect_and_stores_nothing(app, client, body, relay):
    body.tracking_policy = "off"
    db.session.commit()
    _, [(_, html, text)] = _send(app, body, relay, 1)
    assert "/t/o/" not in html and "/t/c/" not in html and "/t/c/" not in text
    assert "https://www.ville.example.fr/programme?utm_source=crieur" in html
    # Answers still work: a person chose to answer.
    rsvp = _urls(html, "r")[0]
    assert client.post(path_of(rsvp)).status_code == 200
    flush_tracking()
    assert db.session.scalars(select(TrackingEvent)).all() == []


def test_per_contact_policy_names_only_consenting_readers(app, client, body, relay):
    body.tracking_policy = "per_contact"
    db.session.commit()
    campaign, [(contact, html, _)] = _send(app, body, relay, 1, consent=True)
    _an_hour_passes(campaign)
    client.get(_pixel(html), headers={"User-Agent": BROWSER_UA})
    flush_tracking()
    [event] = db.session.scalars(select(TrackingEvent)).all()
    assert event.contact_id == contact.id and event.delivery_id is not None
