"""Composition in a real Chromium: every block fits a phone, and an officer composes an
invitation with an event, RSVP and a poll in the editor, previews it and submits it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from campaigns import compose, editing
from campaigns.models import Campaign
from contacts.db import db
from tests.browser.conftest import png
from tests.factories import PASSWORD, make_list, make_user
from tests.factories_campaigns import ALL_BLOCKS, make_campaign, make_event
from tests.services import mjml_available, need

pytestmark = [pytest.mark.browser, pytest.mark.mjml, pytest.mark.backends("sqlite")]

PHONE = {"width": 375, "height": 812}
LONG_WORD = "https://www.exemple.fr/" + "tres-long-chemin-" * 12

SCROLL_AND_ALT = """() => ({
  scrollWidth: document.documentElement.scrollWidth,
  bodyScrollWidth: document.body.scrollWidth,
  images: Array.from(document.images).map(img => ({
    src: img.getAttribute('src') || '', alt: img.getAttribute('alt'),
    width: img.getBoundingClientRect().width,
    pixel: img.getAttribute('width') === '1' && img.getAttribute('height') === '1',
  })),
})"""


@pytest.fixture
def mjml():
    need("mjml", mjml_available(), "node or node_modules/mjml missing")


def _phone_page(chromium, html: str):
    context = chromium.new_context(viewport=PHONE, locale="fr-FR", device_scale_factor=1)
    page = context.new_page()
    # Images of the message are served locally, wider than a phone (network is loopback).
    page.route(
        "https://**/*", lambda route: route.fulfill(body=png(1200, 600), content_type="image/png")
    )
    page.set_content(html, wait_until="load")
    return context, page


def _measure(chromium, html: str) -> dict:
    context, page = _phone_page(chromium, html)
    try:
        return page.evaluate(SCROLL_AND_ALT)
    finally:
        context.close()


def _rendered(org, blocks, kind="newsletter") -> str:
    org.logo_url = "https://www.exemple.fr/logo.png"
    campaign = make_campaign(
        org, kind=kind, blocks=blocks, event=make_event() if kind == "invitation" else None
    )
    editing.ensure_compiled(org.id, campaign)
    return compose.preview(editing.stored_compiled(org.id, campaign))["html"]


def _blocks_for(block_type: str) -> tuple[list[dict], str]:
    block = next(b for b in ALL_BLOCKS if b["type"] == block_type)
    kind = "invitation" if block_type in ("event", "rsvp") else "newsletter"
    return [{"type": "heading", "text": "Titre"}, block], kind


@pytest.mark.parametrize("block_type", [b["type"] for b in ALL_BLOCKS])
def test_each_block_type_fits_a_375px_phone_and_every_image_has_alt_text(
    app, org, chromium, mjml, block_type
):
    blocks, kind = _blocks_for(block_type)
    found = _measure(chromium, _rendered(org, blocks, kind))
    assert found["scrollWidth"] <= PHONE["width"], found
    assert found["bodyScrollWidth"] <= PHONE["width"], found
    content = [img for img in found["images"] if not img["pixel"]]
    assert content, "the logo at least is an image"
    for img in content:
        assert img["alt"] and img["alt"].strip(), img
        assert img["width"] <= PHONE["width"], img
    # The open pixel is the only image allowed an empty alt (it is decorative).
    assert all(img["alt"] == "" for img in found["images"] if img["pixel"])


def test_a_full_invitation_with_a_long_unbroken_link_fits_a_phone(app, org, chromium, mjml):
    blocks = [*ALL_BLOCKS, {"type": "text", "markdown": f"Adresse : {LONG_WORD}"}]
    found = _measure(chromium, _rendered(org, blocks, "invitation"))
    assert found["scrollWidth"] <= PHONE["width"], found


def db_version(campaign_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Campaign, campaign_id).version


def _sign_in(page, server, user) -> None:
    page.goto(server.url + "/auth/login")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(server.url + "/")


def test_an_officer_composes_previews_and_submits_an_invitation_with_a_poll(
    app, org, live_app, chromium, mjml
):
    officer = make_user(org, role="officer")
    lst = make_list(org, name="Invitations officielles", purpose="invitations")
    db.session.commit()
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))  # a script error
    page.on(  # a failed request of ours (the browser's own favicon probe aside)
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    try:
        _sign_in(page, live_app, officer)
        page.goto(live_app.url + "/campaigns/new")
        page.get_by_role("button", name="Invitation vierge").click()
        page.wait_for_url("**/edit")
        campaign_id = int(page.url.rstrip("/").split("/")[-2])

        page.get_by_label("Objet").fill("Inauguration de la médiathèque")
        page.get_by_label("Texte d'aperçu").fill("Samedi 14 juin, venez découvrir le lieu.")
        page.get_by_label("Invitations officielles").check()
        page.get_by_label("Titre", exact=True).fill("Inauguration de la médiathèque")
        page.get_by_label("Début").fill("2030-06-14T10:30")
        page.get_by_label("Fin", exact=True).fill("2030-06-14T12:00")
        page.get_by_label("Lieu (adresse)").fill("12 rue des Écoles, Ville")
        page.get_by_label("Date limite de réponse (facultatif)").fill("2030-06-10T12:00")

        # Add a poll with the keyboard only: choose the type, Tab to "Ajouter", Enter.
        page.get_by_label("Ajouter un bloc").select_option("poll")
        page.get_by_label("Ajouter un bloc").focus()
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        question = page.locator("#b4-question")
        assert page.evaluate("document.activeElement.id") == "b4-question"
        question.type("Quel horaire vous convient ?")
        page.locator("#b4-options").fill("Le matin\nLe soir")
        # Move it above the RSVP block with the keyboard, focus following the block.
        page.locator("#b4-up").focus()
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "b3-up"
        assert "déplacé en position 4" in page.locator("#save-status").inner_text()

        page.get_by_role("button", name="Enregistrer").click()
        expect(page.locator("#save-status")).to_have_text(re.compile(r"^Enregistré à"))
        # The two frames reload with the saved version; the phone one fits 375 px.
        version = db_version(campaign_id)
        for frame_id in ("#frame-phone", "#frame-desktop"):
            expect(page.locator(frame_id)).to_have_attribute("src", re.compile(f"v={version}$"))
        phone = page.frame_locator("#frame-phone")
        expect(phone.locator("body")).to_contain_text("Quel horaire vous convient ?")
        expect(page.frame_locator("#frame-desktop").locator("body")).to_contain_text(
            "12 rue des Écoles"
        )
        frame = page.locator("#frame-phone").element_handle().content_frame()
        assert frame.evaluate("document.documentElement.clientWidth") <= 375
        assert frame.evaluate("document.documentElement.scrollWidth") <= 375
        expect(page.locator("#preview-text")).to_contain_text("Quel horaire vous convient ?")
        assert "À corriger" not in page.locator("#checks").inner_text()

        page.get_by_role("button", name="Soumettre pour relecture").click()
        page.wait_for_url(f"**/campaigns/{campaign_id}")
        assert page.locator("#campaign-status").inner_text() == "en relecture"
        assert errors == []
    finally:
        context.close()

    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign_id)
    assert campaign.status == "in_review"
    assert [b["type"] for b in campaign.blocks] == ["heading", "text", "event", "poll", "rsvp"]
    assert campaign.blocks[3]["options"] == ["Le matin", "Le soir"]
    assert campaign.event["title"] == "Inauguration de la médiathèque"
    assert campaign.event["starts_at"].startswith("2030-06-14T10:30")
    assert campaign.list_ids == [lst.id]


def test_every_block_type_can_be_added_filled_reordered_and_deleted_in_the_editor(
    app, org, live_app, chromium, mjml
):
    officer = make_user(org, role="officer")
    campaign = make_campaign(org, blocks=[{"type": "heading", "text": "Titre"}])
    db.session.commit()
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, locale="fr-FR")
    page = context.new_page()
    try:
        _sign_in(page, live_app, officer)
        page.goto(f"{live_app.url}/campaigns/{campaign.id}/edit")
        fills = {
            "text": {"markdown": "Bonjour {{ first_name }}, **bienvenue**."},
            "image": {"src": "https://x.example/a.png", "alt": "Le marché couvert"},
            "button": {"label": "Voir le programme", "url": "https://x.example/p"},
            "video": {"url": "https://x.example/v", "thumbnail": "https://x.example/t.png",
                      "caption": "La visite en vidéo"},
            "poll": {"question": "Votre avis ?", "options": "Oui\nNon"},
        }  # fmt: skip
        for n, block_type in enumerate(["text", "image", "button", "video", "poll", "social",
                                        "divider"], start=1):  # fmt: skip
            page.get_by_label("Ajouter un bloc").select_option(block_type)
            page.get_by_role("button", name="Ajouter", exact=True).click()
            for key, value in fills.get(block_type, {}).items():
                page.locator(f"#b{n}-{key}").fill(value)
            if block_type == "social":
                page.locator(f"#b{n}-net0").select_option("mastodon")
                page.locator(f"#b{n}-url0").fill("https://mastodon.exemple.fr/@ville")
        assert page.locator("#new-block-type option[value=event]").count() == 0
        # Delete the divider with the keyboard: focus goes to the block now last.
        page.locator("#b7-delete").focus()
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "b6-legend"
        # Move the heading down once.
        page.locator("#b0-down").click()
        page.get_by_role("button", name="Enregistrer").click()
        expect(page.locator("#save-status")).to_have_text(re.compile(r"^Enregistré à"))
    finally:
        context.close()
    db.session.expire_all()
    saved = db.session.get(Campaign, campaign.id).blocks
    assert [b["type"] for b in saved] == [
        "text", "heading", "image", "button", "video", "poll", "social"
    ]  # fmt: skip
    assert saved[5]["options"] == ["Oui", "Non"]
    assert saved[6]["links"] == [
        {"network": "mastodon", "url": "https://mastodon.exemple.fr/@ville"}
    ]


def test_an_invalid_block_is_announced_and_not_saved(app, org, live_app, chromium, mjml):
    officer = make_user(org, role="officer")
    campaign = make_campaign(org, blocks=[{"type": "heading", "text": "Titre"}])
    db.session.commit()
    context = chromium.new_context(locale="fr-FR")
    page = context.new_page()
    try:
        _sign_in(page, live_app, officer)
        page.goto(f"{live_app.url}/campaigns/{campaign.id}/edit")
        page.get_by_label("Ajouter un bloc").select_option("image")
        page.get_by_role("button", name="Ajouter", exact=True).click()
        page.locator("#b1-src").fill("https://x.example/a.png")
        page.get_by_role("button", name="Enregistrer").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("Bloc 2 (image)")
        expect(page.locator("#b1-alt")).to_have_attribute("aria-invalid", "true")
    finally:
        context.close()
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).version == 1


def test_a_director_reads_the_campaign_on_phone_and_desktop_and_approves_it(
    app, org, live_app, chromium, mjml
):
    director = make_user(org, role="director")
    lst = make_list(org, purpose="invitations")
    campaign = make_campaign(org, kind="invitation", status="in_review", list_ids=[lst.id])
    db.session.commit()
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, locale="fr-FR")
    page = context.new_page()
    try:
        _sign_in(page, live_app, director)
        page.goto(f"{live_app.url}/campaigns/{campaign.id}")
        expect(page.frame_locator("#frame-phone").locator("body")).to_contain_text("Oui")
        expect(page.locator("#preview-text")).to_contain_text("Bonjour Camille")
        page.get_by_label("Commentaire (facultatif)").fill("Parfait, merci.")
        page.get_by_role("button", name="Approuver").click()
        expect(page.locator("#campaign-status")).to_have_text("approuvée")
        expect(page.get_by_role("table").last).to_contain_text("Parfait, merci.")
    finally:
        context.close()
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).approved_by_id == director.id
