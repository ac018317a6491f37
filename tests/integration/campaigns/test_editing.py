"""Creating, editing, duplicating campaigns; compiled once per version with its links."""

from __future__ import annotations

import re

import pytest

from campaigns import editing, workflow
from campaigns.models import Campaign, CampaignLink
from contacts.db import DomainError, db
from tests.factories import make_list, make_org, make_user
from tests.factories_campaigns import ALL_BLOCKS, NEWSLETTER_BLOCKS, make_campaign, make_event
from tests.services import mjml_available, need


@pytest.fixture
def mjml():
    need("mjml", mjml_available(), "node or node_modules/mjml missing")


def _create(org, **data):
    officer = make_user(org, role="officer")
    body = {"kind": "newsletter", "subject": "Nouvelles", "blocks": NEWSLETTER_BLOCKS, **data}
    return editing.create_campaign(org.id, body, user_id=officer.id)


@pytest.mark.mjml
def test_a_new_campaign_is_a_compiled_draft_with_its_creation_recorded(org, mjml):
    campaign = _create(org)
    db.session.commit()
    assert campaign.status == "draft"
    assert campaign.compiled_version == campaign.version == 1
    assert "<html" in campaign.compiled_html.lower()
    assert "Consulter l'agenda" in campaign.compiled_text
    trail = workflow.transitions_of(org.id, campaign.id)
    assert [(t.from_status, t.to_status) for t in trail] == [("", "draft")]


@pytest.mark.mjml
def test_links_are_placeholders_numbered_like_the_campaign_link_rows(org, mjml):
    campaign = _create(
        org,
        blocks=ALL_BLOCKS,
        kind="invitation",
        event=make_event(map_url="https://www.openstreetmap.org/x"),
    )
    db.session.commit()
    rows = editing.campaign_links(org.id, campaign.id)
    html_names = set(re.findall(r"\{\{ (link_\d+) \}\}", campaign.compiled_html))
    assert html_names == {f"link_{n}" for n in range(1, len(rows) + 1)}
    urls = [row.url for row in rows]
    assert urls[0] == "https://www.exemple.fr/programme"
    assert "https://www.exemple.fr/mediatheque" in urls
    assert len(urls) == len(set(urls))
    for url in urls:  # no stored URL appears raw: every link goes through its placeholder
        assert f'href="{url}"' not in campaign.compiled_html
    assert editing.link_map(org.id, campaign.id)["link_1"].url == urls[0]


@pytest.mark.mjml
def test_links_are_rewritten_in_order_when_they_change_and_kept_otherwise(org, mjml):
    campaign = _create(org)
    officer = make_user(org, role="officer")
    first_ids = [r.id for r in editing.campaign_links(org.id, campaign.id)]
    editing.update_campaign(
        org.id, campaign, {"subject": "Autre objet"}, user_id=officer.id, role="officer"
    )
    assert [r.id for r in editing.campaign_links(org.id, campaign.id)] == first_ids
    blocks = [
        {"type": "button", "label": "Nouveau lien", "url": "https://www.exemple.fr/nouveau"},
        *NEWSLETTER_BLOCKS,
    ]
    editing.update_campaign(
        org.id, campaign, {"blocks": blocks}, user_id=officer.id, role="officer"
    )
    db.session.commit()
    rows = editing.campaign_links(org.id, campaign.id)
    assert [r.url for r in rows][:2] == [
        "https://www.exemple.fr/nouveau",
        "https://www.exemple.fr/agenda",
    ]
    assert campaign.compiled_version == campaign.version == 3


@pytest.mark.mjml
def test_every_starting_point_gives_a_valid_compiled_draft(org, mjml):
    officer = make_user(org, role="officer")
    keys = [s["key"] for s in editing.starters()] + ["blank-newsletter", "blank-invitation"]
    assert len(keys) >= 6
    for key in keys:
        campaign = editing.create_from_starter(org.id, key, user_id=officer.id)
        assert campaign.compiled_version == campaign.version, key
        if campaign.kind == "invitation":
            assert campaign.event["starts_at"] and campaign.event["rsvp_deadline"]


@pytest.mark.mjml
def test_duplicating_a_sent_campaign_gives_a_new_draft_with_the_same_content(org, mjml):
    lst = make_list(org)
    sent = make_campaign(org, status="sent", list_ids=[lst.id], compile=True)
    copy = editing.duplicate_campaign(org.id, sent, user_id=None)
    db.session.commit()
    assert copy.id != sent.id
    assert copy.status == "draft"
    assert copy.parent_campaign_id == sent.id
    assert copy.blocks == sent.blocks and copy.list_ids == [lst.id]
    assert copy.name.startswith("Copie de")
    assert [r.url for r in editing.campaign_links(org.id, copy.id)] == [
        r.url for r in editing.campaign_links(org.id, sent.id)
    ]


def test_another_bodys_list_cannot_be_targeted(org):
    other_list = make_list(make_org())
    with pytest.raises(DomainError) as caught:
        editing.check_list_ids(org.id, [other_list.id])
    assert caught.value.status == 404


@pytest.mark.parametrize("bad", ["1", [None], [{"id": 1}], ["abc"], [True]])
def test_malformed_list_ids_are_refused(org, bad):
    with pytest.raises(DomainError) as caught:
        editing.check_list_ids(org.id, bad)
    assert caught.value.status == 400


def test_an_invitation_needs_its_event(org):
    with pytest.raises(DomainError) as caught:
        editing.clean_content({"kind": "invitation", "blocks": [{"type": "heading", "text": "x"}]})
    assert caught.value.code == "event_required"


def test_a_subject_with_line_breaks_is_kept_on_one_line(org):
    content = editing.clean_content(
        {"subject": "Bonjour\r\nBcc: x@evil.example", "blocks": NEWSLETTER_BLOCKS}
    )
    assert content["subject"] == "Bonjour Bcc: x@evil.example"


def test_content_is_stored_even_when_the_layout_engine_fails(org):
    from campaigns.mjml import MjmlError

    def broken(mjml):
        raise MjmlError("mjml_timeout", "trop long")

    officer = make_user(org, role="officer")
    campaign = editing.create_campaign(
        org.id, {"subject": "S", "blocks": NEWSLETTER_BLOCKS}, user_id=officer.id, compiler=broken
    )
    db.session.commit()
    assert db.session.get(Campaign, campaign.id).compiled_version == 0
    assert db.session.query(CampaignLink).count() == 0


def test_the_invitation_ics_has_a_stable_uid_and_a_growing_sequence(org):
    from icalendar import Calendar

    campaign = make_campaign(org, kind="invitation")
    first = Calendar.from_ical(editing.invitation_ics(org, campaign))
    campaign.version = 3
    second = Calendar.from_ical(editing.invitation_ics(org, campaign))
    ev1, ev2 = first.walk("VEVENT")[0], second.walk("VEVENT")[0]
    assert str(ev1["UID"]) == str(ev2["UID"])
    assert int(ev2["SEQUENCE"]) > int(ev1["SEQUENCE"])
