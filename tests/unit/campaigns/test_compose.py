"""compile_campaign without node (a fake compiler) and the starter templates."""

from __future__ import annotations

import pytest

from campaigns.blocks import validate_blocks
from campaigns.compose import compile_campaign, preview, starter_templates
from campaigns.mjml import MjmlResult
from contacts.db import DomainError


def fake_compiler(mjml: str) -> MjmlResult:
    return MjmlResult(html=f"<html>{mjml}</html>")


EVENT = {
    "title": "Réunion",
    "starts_at": "2025-06-12T18:30",
    "ends_at": "2025-06-12T20:00",
    "location": "Mairie",
}


def test_compile_returns_html_text_mjml_and_links():
    out = compile_campaign(
        [{"type": "button", "label": "Voir", "url": "https://a.fr"}],
        subject="Objet",
        preheader="Aperçu",
        compiler=fake_compiler,
    )
    assert out.html.startswith("<html><mjml")
    assert "Voir : {{ link_1 }}" in out.text
    assert [link.url for link in out.links] == ["https://a.fr"]
    assert out.ics is None


def test_invitation_without_event_is_refused():
    with pytest.raises(DomainError) as exc:
        compile_campaign([{"type": "heading", "text": "x"}], "invitation", compiler=fake_compiler)
    assert exc.value.code == "event_required"


def test_invitation_with_campaign_uid_gets_its_ics():
    out = compile_campaign(
        [{"type": "heading", "text": "x"}],
        "invitation",
        EVENT,
        {"from_address": "com@ville.fr"},
        campaign_uid="abc",
        compiler=fake_compiler,
    )
    assert out.ics is not None and b"UID:crieur-abc@ville.fr" in out.ics


def test_subject_line_breaks_cannot_inject_headers():
    out = compile_campaign(
        [{"type": "divider"}], subject="Bonjour\r\nBcc: x@evil.fr", compiler=fake_compiler
    )
    assert out.subject == "Bonjour Bcc: x@evil.fr"


def test_unknown_kind_is_refused():
    with pytest.raises(DomainError):
        compile_campaign([{"type": "divider"}], "flyer", compiler=fake_compiler)


def test_preview_fills_links_with_their_urls_and_a_sample_recipient():
    out = compile_campaign(
        [{"type": "text", "markdown": "Bonjour {{ first_name }} [a](https://a.fr)"}],
        compiler=fake_compiler,
    )
    shown = preview(out)
    assert "Bonjour Camille" in shown["html"] and 'href="https://a.fr"' in shown["html"]
    assert "{{" not in shown["text"]


def test_five_french_starters_are_offered():
    starters = starter_templates()
    assert [s["key"] for s in starters] == [
        "lettre-mensuelle",
        "reunion-publique",
        "inauguration",
        "consultation",
        "demande-reconsentement",
    ]
    for s in starters:
        validate_blocks(s["blocks"], kind=s["kind"], has_event=s["kind"] == "invitation")


def test_only_the_repermission_starter_is_a_repermission_campaign():
    flagged = [s["key"] for s in starter_templates() if s.get("repermission")]
    assert flagged == ["demande-reconsentement"]


def test_repermission_starter_has_a_confirm_button_to_the_confirm_link():
    starter = next(s for s in starter_templates() if s["key"] == "demande-reconsentement")
    out = compile_campaign(
        starter["blocks"],
        subject=starter["subject"],
        preheader=starter["preheader"],
        compiler=fake_compiler,
    )
    assert "{{ confirm_url }}" in out.mjml and "Je confirme mon inscription" in out.mjml
    assert "Je confirme mon inscription : {{ confirm_url }}" in out.text
    assert all("confirm" not in link.url for link in out.links)  # not a tracked redirect


def test_starters_are_copies():
    starter_templates()[0]["blocks"].clear()
    assert starter_templates()[0]["blocks"]
