"""Block validation (French errors naming the block) and blocks → MJML text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns import ics
from campaigns.blocks import (
    LinkRegistry,
    contrast_ratio,
    normalise_branding,
    render_mjml,
    validate_blocks,
)
from campaigns.personalise import placeholder
from contacts.db import DomainError

EVENT = ics.parse_event(
    {
        "title": "Réunion publique",
        "starts_at": "2025-06-12T18:30",
        "ends_at": "2025-06-12T20:00",
        "location": "Salle des fêtes",
        "rsvp_deadline": "2025-06-10T12:00",
        "capacity": 80,
    }
)
ALL_BLOCKS = [
    {"type": "heading", "text": "Titre"},
    {"type": "text", "markdown": "Bonjour {{ first_name }}, [agenda](https://ville.fr/agenda)"},
    {
        "type": "image",
        "src": "https://ville.fr/a.png",
        "alt": "Le parc",
        "href": "https://ville.fr/p",
    },
    {"type": "button", "label": "Consulter l'agenda", "url": "https://ville.fr/agenda"},
    {
        "type": "video",
        "url": "https://v.fr/1",
        "thumbnail": "https://v.fr/1.png",
        "caption": "Film",
    },
    {"type": "event"},
    {"type": "rsvp"},
    {"type": "poll", "question": "Votre choix ?", "options": ["Jardin", "Marché"]},
    {"type": "social", "links": [{"network": "facebook", "url": "https://facebook.com/ville"}]},
    {"type": "divider"},
]


def invalid(blocks, **kw) -> DomainError:
    with pytest.raises(DomainError) as exc:
        validate_blocks(blocks, **kw)
    return exc.value


def mjml_of(blocks, kind="newsletter", event=None, branding=None, **kw) -> str:
    clean = validate_blocks(blocks, kind=kind, has_event=event is not None)
    mjml, _ = render_mjml(
        clean,
        kind=kind,
        branding=normalise_branding(branding or {"from_name": "Mairie"}),
        subject=kw.pop("subject", "Objet"),
        preheader=kw.pop("preheader", "Aperçu"),
        event=event,
        **kw,
    )
    return mjml


def test_every_contract_block_type_validates_in_an_invitation():
    clean = validate_blocks(ALL_BLOCKS, kind="invitation", has_event=True)
    assert [b["type"] for b in clean] == [b["type"] for b in ALL_BLOCKS]


def test_image_without_alt_is_refused_naming_the_block():
    err = invalid(
        [{"type": "heading", "text": "x"}, {"type": "image", "src": "https://a.fr/i.png"}]
    )
    assert err.code == "invalid_block"
    assert err.message.startswith("Bloc 2 (image)")
    assert "texte alternatif" in err.message
    assert err.details["block"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<b>x</b>",
        "//evil.fr",
        "/relatif",
        "https://",
        "https://a.fr/{{ first_name }}",
        "https://a.fr/ x",
        "vbscript:x",
    ],
)
def test_button_urls_other_than_absolute_http_are_refused(url):
    err = invalid([{"type": "button", "label": "Voir", "url": url}])
    assert "Bloc 1 (bouton)" in err.message


def test_button_accepts_mailto():
    clean = validate_blocks([{"type": "button", "label": "Écrire", "url": "mailto:a@b.fr"}])
    assert clean[0]["url"] == "mailto:a@b.fr"


def test_image_src_refuses_data_uri():
    err = invalid([{"type": "image", "src": "data:image/png;base64,AAAA", "alt": "x"}])
    assert "http(s)" in err.message


def test_poll_needs_two_to_five_distinct_options():
    assert "de 2 à 5" in invalid([{"type": "poll", "question": "Q", "options": ["a"]}]).message
    six = [str(i) for i in range(6)]
    assert "de 2 à 5" in invalid([{"type": "poll", "question": "Q", "options": six}]).message
    assert (
        "identiques" in invalid([{"type": "poll", "question": "Q", "options": ["a", "A"]}]).message
    )


def test_event_block_is_refused_in_a_newsletter():
    err = invalid([{"type": "event"}], kind="newsletter")
    assert "invitation" in err.message


def test_only_one_poll_per_message():
    poll = {"type": "poll", "question": "Q", "options": ["a", "b"]}
    assert "un seul" in invalid([poll, poll]).message


def test_unknown_block_type_lists_the_possible_types():
    err = invalid([{"type": "iframe"}])
    assert "iframe" in err.message and "heading" in err.message


def test_unknown_social_network_is_refused():
    err = invalid([{"type": "social", "links": [{"network": "myspace", "url": "https://m.com"}]}])
    assert "myspace" in err.message


def test_empty_block_list_is_refused():
    assert invalid([]).code == "invalid_blocks"


def test_control_characters_are_removed_from_text():
    clean = validate_blocks([{"type": "heading", "text": "A\x00B\x1bC"}])
    assert clean[0]["text"] == "ABC"


INJECTIONS = [
    '<mj-include path="../../etc/passwd" type="css"/>',
    "<mj-raw><script>alert(1)</script></mj-raw>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "</mj-text></mj-column></mj-section><mj-raw>x</mj-raw>",
]


def _blocks_with(payload: str) -> list[dict]:
    return [
        {"type": "heading", "text": payload},
        {"type": "text", "markdown": payload},
        {"type": "image", "src": "https://a.fr/i.png", "alt": payload},
        {"type": "button", "label": payload, "url": "https://a.fr"},
        {
            "type": "video",
            "url": "https://v.fr",
            "thumbnail": "https://v.fr/t.png",
            "caption": payload,
        },
        {"type": "poll", "question": payload, "options": [payload, "autre"]},
    ]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_markup_typed_in_any_text_field_never_becomes_mjml(payload):
    mjml = mjml_of(_blocks_with(payload), subject=payload, preheader=payload)
    assert "<mj-include" not in mjml
    assert mjml.count("<mj-raw>") == 1  # the layout's own open pixel only
    assert "<script" not in mjml and "<svg" not in mjml and "<img" in mjml  # pixel only
    assert mjml.count("<img") == 1


def test_event_fields_are_escaped_too():
    event = ics.parse_event(
        {
            "title": "<mj-raw>t</mj-raw>",
            "starts_at": "2025-06-12T18:30",
            "ends_at": "2025-06-12T20:00",
            "location": '<mj-include path="/etc/passwd"/>',
        }
    )
    mjml = mjml_of([{"type": "event"}], kind="invitation", event=event)
    assert "<mj-include" not in mjml and mjml.count("<mj-raw>") == 1


def test_officer_placeholders_survive_rendering_literally():
    mjml = mjml_of([{"type": "heading", "text": "Bonjour {{ first_name }} {% include 'x' %}"}])
    assert "Bonjour {{ first_name }} {% include &#39;x&#39; %}" in mjml


def test_tracked_links_become_numbered_placeholders_once_per_url():
    blocks = [
        {"type": "button", "label": "A", "url": "https://a.fr/x?y=1&z=2"},
        {"type": "text", "markdown": "[encore](https://a.fr/x?y=1&z=2) [b](https://b.fr)"},
    ]
    registry = LinkRegistry()
    clean = validate_blocks(blocks)
    mjml, links = render_mjml(
        clean,
        kind="newsletter",
        branding=normalise_branding({}),
        subject="s",
        preheader="p",
        registry=registry,
    )
    assert [(link.index, link.url) for link in links] == [
        (1, "https://a.fr/x?y=1&z=2"),
        (2, "https://b.fr"),
    ]
    assert mjml.count('href="{{ link_1 }}"') == 2 and 'href="{{ link_2 }}"' in mjml
    assert "https://a.fr" not in mjml


def test_untracked_links_keep_their_url():
    mjml = mjml_of(
        [{"type": "button", "label": "A", "url": "https://a.fr/?q=1&r=2"}], track_links=False
    )
    assert 'href="https://a.fr/?q=1&amp;r=2"' in mjml


def test_invitation_layout_adds_event_and_rsvp_when_not_placed():
    mjml = mjml_of([{"type": "heading", "text": "Invitation"}], kind="invitation", event=EVENT)
    assert "jeudi 12 juin 2025, de 18 h 30 à 20 h 00" in mjml
    for var in ("rsvp_yes_url", "rsvp_no_url", "rsvp_maybe_url"):
        assert placeholder(var) in mjml
    assert "Peut-être" in mjml


def test_poll_options_link_to_their_own_placeholder():
    mjml = mjml_of([{"type": "poll", "question": "Q", "options": ["a", "b", "c"]}])
    assert all(placeholder(f"poll_url_{n}") in mjml for n in (1, 2, 3))
    assert "{{ poll_url_4 }}" not in mjml


def test_footer_has_unsubscribe_preferences_web_version_and_reason():
    mjml = mjml_of(
        [{"type": "divider"}],
        branding={
            "from_name": "Ville",
            "postal_address": "1 rue X\n75001 Paris",
            "dpo_contact": "dpo@ville.fr",
            "tracking_policy": "off",
        },
    )
    for text in (
        "{{ unsubscribe_url }}",
        "{{ preferences_url }}",
        "{{ web_version_url }}",
        "{{ list_name }}",
        "{{ subscription_reason }}",
        "1 rue X<br />75001 Paris",
        "mailto:dpo@ville.fr",
        "aucun dispositif de mesure",
    ):
        assert text in mjml
    assert "{{ open_pixel_url }}" not in mjml  # tracking off: no pixel at all


def test_pixel_is_present_when_tracking_is_on():
    assert "{{ open_pixel_url }}" in mjml_of([{"type": "divider"}])


def test_branding_refuses_a_non_hex_colour():
    with pytest.raises(DomainError):
        normalise_branding({"brand_color": "red;}</mj-style><mj-raw>"})


def test_branding_refuses_a_javascript_logo():
    with pytest.raises(DomainError):
        normalise_branding({"logo_url": "javascript:alert(1)"})


def test_contrast_ratio_matches_wcag_reference_values():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["type", "text", "url", "src", "alt", "options",
                                       "links", "label", "markdown", "network"]), children,
                      max_size=5),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(json_values, max_size=4))
def test_any_json_gives_blocks_or_a_domain_error_never_a_crash(blocks):
    try:
        validate_blocks(blocks, kind="invitation", has_event=True)
    except DomainError as exc:
        assert exc.message
