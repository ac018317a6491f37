"""The safe Markdown subset: markup from officers is text, links only http(s)/mailto."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.markdown import (
    ALLOWED_TAGS,
    markdown_links,
    markdown_to_text,
    render_markdown,
    rewrite_links,
)


def test_basic_formatting_is_kept():
    html = render_markdown("**gras** *italique*\n\n- un\n- deux\n\n> cité")
    assert "<strong>gras</strong>" in html and "<em>italique</em>" in html
    assert "<ul>" in html and "<li>un</li>" in html and "<blockquote>" in html


def test_headings_are_folded_to_h2_and_h3():
    html = render_markdown("# Un\n\n## Deux\n\n#### Quatre")
    assert "<h1>" not in html and "<h4>" not in html
    assert "<h2>Un</h2>" in html and "<h2>Deux</h2>" in html and "<h3>Quatre</h3>" in html


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)>",
        "<style>body{display:none}</style>",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=https://evil.fr></iframe>",
    ],
)
def test_raw_html_is_shown_as_text_never_as_markup(source):
    html = render_markdown(source)
    assert "<script" not in html and "<img" not in html and "<svg" not in html
    assert "<style" not in html and "<iframe" not in html and "<a " not in html


@pytest.mark.parametrize(
    "link",
    [
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](data:text/html,hi)",
        "[x](vbscript:x)",
        "[x](/relative)",
        "[x](file:///etc/passwd)",
    ],
)
def test_dangerous_or_relative_links_lose_their_href(link):
    html = render_markdown(link)
    assert "href" not in html


def test_http_and_mailto_links_are_kept_without_extra_attributes():
    html = render_markdown("[site](https://ville.fr/?a=1&b=2) [écrire](mailto:a@ville.fr)")
    assert '<a href="https://ville.fr/?a=1&amp;b=2">site</a>' in html
    assert '<a href="mailto:a@ville.fr">écrire</a>' in html


def test_markdown_images_are_not_rendered_as_images():
    assert "<img" not in render_markdown("![alt](https://a.fr/i.png)")


def test_placeholders_pass_through_untouched():
    assert "Bonjour {{ first_name }}" in render_markdown("Bonjour {{ first_name }}")


def test_rewrite_links_replaces_http_hrefs_only():
    html = render_markdown("[a](https://a.fr) [m](mailto:x@y.fr)")
    out = rewrite_links(html, lambda url, label: f"{{{{ link_{label} }}}}")
    assert 'href="{{ link_a }}"' in out and 'href="mailto:x@y.fr"' in out


def test_markdown_links_report_their_text():
    links = markdown_links("Voir [le programme](https://a.fr/p) et [](https://b.fr)")
    assert [(lk.text, lk.url) for lk in links] == [
        ("le programme", "https://a.fr/p"),
        ("", "https://b.fr"),
    ]


def test_text_rendering_writes_links_as_label_colon_url():
    paras = markdown_to_text("Lire [le compte rendu](https://a.fr/cr).\n\n1. un\n2. deux")
    assert paras == ["Lire le compte rendu : https://a.fr/cr.", "1. un", "2. deux"]


_TAG_RE = re.compile(r"</?([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="<>\"'=:/ ()[]!*#-\nascriptjvonerhfmld&;", max_size=80))
def test_any_input_yields_only_allowlisted_tags_and_safe_hrefs(source):
    for tag, attrs in _TAG_RE.findall(render_markdown(source)):
        assert tag in ALLOWED_TAGS
        if attrs.strip():
            assert tag == "a" and re.fullmatch(r' href="(https?://|mailto:)[^"]*"', attrs)
