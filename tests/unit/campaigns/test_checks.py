"""Pre-review checks: each finding has a code, a level and a French message."""

from __future__ import annotations

from campaigns.checks import has_errors, run_checks

GOOD = [
    {"type": "heading", "text": "Titre"},
    {"type": "image", "src": "https://a.fr/i.png", "alt": "Le parc"},
    {"type": "text", "markdown": "Le [programme complet](https://a.fr/p)."},
    {"type": "button", "label": "Consulter l'agenda", "url": "https://a.fr/agenda"},
]


def codes(blocks=GOOD, **kw) -> list[str]:
    kw.setdefault("subject", "Les nouvelles du mois")
    kw.setdefault("preheader", "L'essentiel")
    return [f["code"] for f in run_checks(blocks, **kw)]


def test_a_careful_message_has_no_findings():
    assert codes() == []


def test_missing_alt_is_an_error_pointing_at_the_block():
    findings = run_checks(
        [GOOD[0], {"type": "image", "src": "https://a.fr/i.png", "alt": " "}],
        subject="s",
        preheader="p",
    )
    alt = [f for f in findings if f["code"] == "missing_alt"]
    assert alt and alt[0]["level"] == "error" and alt[0]["block"] == 1
    assert has_errors(findings)


def test_vague_link_texts_are_flagged_in_buttons_and_markdown():
    blocks = [
        {"type": "button", "label": "Cliquez ici", "url": "https://a.fr"},
        {"type": "text", "markdown": "Voir [ici](https://a.fr) ou [click here](https://b.fr)"},
    ]
    assert codes(blocks).count("vague_link_text") == 3


def test_empty_link_text_is_an_error():
    assert "empty_link_text" in codes([{"type": "text", "markdown": "[](https://a.fr)"}])


def test_image_between_non_text_blocks_is_flagged():
    blocks = [
        {"type": "divider"},
        {"type": "image", "src": "https://a.fr/i.png", "alt": "x"},
        {"type": "divider"},
    ]
    found = codes(blocks)
    assert "image_without_text" in found and "images_only" in found


def test_long_subject_and_missing_preheader_are_warnings():
    found = run_checks(GOOD, subject="x" * 79, preheader="")
    assert {f["code"]: f["level"] for f in found} == {
        "subject_too_long": "warning",
        "missing_preheader": "warning",
    }


def test_missing_subject_is_an_error():
    assert "missing_subject" in codes(subject="")


def test_html_over_gmail_clipping_size_is_flagged():
    assert "html_too_heavy" in codes(html="x" * (102 * 1024 + 1))
    assert "html_too_heavy" not in codes(html="x" * 1000)


def test_unknown_placeholders_are_flagged_but_allowed_ones_are_not():
    blocks = [{"type": "text", "markdown": "{{ first_name }} {{ quartier }} {{ config }}"}]
    found = [
        f
        for f in run_checks(
            blocks, subject="s {{ prenom }}", preheader="p", custom_fields=["quartier"]
        )
        if f["code"] == "unresolved_placeholder"
    ]
    assert len(found) == 2
    assert "{{ prenom }}" in found[0]["message"] and "{{ config }}" in found[1]["message"]


def test_pale_brand_colour_is_a_contrast_warning():
    assert "low_contrast" in codes(branding={"brand_color": "#ffcc00"})
    assert "low_contrast" not in codes(branding={"brand_color": "#000091"})
