"""The text part: derived from blocks, links as « label : url », lines ≤ 78."""

from __future__ import annotations

from campaigns import ics
from campaigns.blocks import LinkRegistry, normalise_branding, validate_blocks
from campaigns.plaintext import render_text, wrap

BRANDING = normalise_branding(
    {
        "from_name": "Ville de Test",
        "postal_address": "1 place X\n00000 Test",
        "dpo_contact": "dpo@test.fr",
        "tracking_policy": "aggregate",
    }
)


def text_of(blocks, kind="newsletter", event=None, track=False) -> str:
    clean = validate_blocks(blocks, kind=kind, has_event=event is not None)
    return render_text(
        clean, kind=kind, branding=BRANDING, event=event, registry=LinkRegistry(track=track)
    )


def test_buttons_are_written_label_colon_url():
    text = text_of([{"type": "button", "label": "Consulter l'agenda", "url": "https://a.fr/ag"}])
    assert "Consulter l'agenda : https://a.fr/ag" in text


def test_tracked_links_use_the_same_placeholders_as_html():
    text = text_of([{"type": "button", "label": "Voir", "url": "https://a.fr"}], track=True)
    assert "Voir : {{ link_1 }}" in text


def test_lines_are_wrapped_at_78_except_unbreakable_urls():
    long_url = "https://a.fr/" + "x" * 100
    text = text_of([{"type": "text", "markdown": "mot " * 60 + f"[lien]({long_url})"}])
    for line in text.splitlines():
        assert len(line) <= 78 or long_url in line


def test_placeholders_are_never_split_across_lines():
    lines = wrap("x" * 70 + " {{ subscription_reason }} et la suite du texte")
    assert any("{{ subscription_reason }}" in line for line in lines)


def test_no_line_starts_with_a_colon():
    lines = wrap("a" * 74 + " : https://example.org/quelque-chose")
    assert not any(line.startswith(":") for line in lines)


def test_markup_from_officers_stays_as_typed_text():
    text = text_of([{"type": "heading", "text": "<b>Gras</b> {{ config }}"}])
    assert "<b>Gras</b> {{ config }}" in text


def test_footer_has_unsubscribe_preferences_reason_and_sender():
    text = text_of([{"type": "divider"}])
    for expected in (
        "Se désinscrire : {{ unsubscribe_url }}",
        "Gérer mes préférences : {{ preferences_url }}",
        "{{ list_name }}",
        "{{ subscription_reason }}",
        "1 place X",
        "dpo@test.fr",
        "Voir ce message dans le navigateur : {{ web_version_url }}",
        "anonyme",
    ):
        assert expected in text


def test_invitation_text_has_event_and_rsvp_links():
    event = ics.parse_event(
        {
            "title": "Fête",
            "starts_at": "2025-07-14T10:00",
            "ends_at": "2025-07-14T12:00",
            "location": "Parc",
        }
    )
    text = text_of([{"type": "heading", "text": "Invitation"}], kind="invitation", event=event)
    assert "lundi 14 juillet 2025, de 10 h 00 à 12 h 00" in text
    assert "Oui : {{ rsvp_yes_url }}" in text and "Peut-être : {{ rsvp_maybe_url }}" in text


def test_poll_options_are_listed_with_their_links():
    text = text_of([{"type": "poll", "question": "Q ?", "options": ["Jardin", "Marché"]}])
    assert "- Jardin : {{ poll_url_1 }}" in text and "- Marché : {{ poll_url_2 }}" in text


def test_image_is_described_by_its_alt_text():
    text = text_of([{"type": "image", "src": "https://a.fr/i.png", "alt": "Le parc en fleurs"}])
    assert "[Image : Le parc en fleurs]" in text
