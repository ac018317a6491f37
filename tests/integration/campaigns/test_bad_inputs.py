"""Hostile text in every field stays inert text: in previews, the editor page and archives.

RELIABILITY.md, "Bad inputs to try": script tags, event handlers, ``javascript:``, template
syntax and ``<mj-include>`` typed by an officer must come out as text.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from contacts.db import db
from tests.factories import make_list
from tests.factories_campaigns import make_event

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)><svg onload=alert(3)>"
TEMPLATE = "{{ ''.__class__ }} {{ config }} {% include 'x' %} ${7*7}"
MJ = '<mj-include path="../../etc/passwd" type="css"/><mj-raw><b>brut</b></mj-raw>'
PAYLOAD = f"{XSS} {TEMPLATE} {MJ}"

FORBIDDEN_TAGS = {"script", "svg", "mj-include", "mj-raw", "iframe", "object", "embed", "style"}


class _Elements(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, {k: v or "" for k, v in attrs}))


def elements(markup: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(markup)
    return parser.found


def hostile_invitation() -> dict:
    return {
        "kind": "invitation",
        "name": PAYLOAD[:200],
        "subject": PAYLOAD[:250],
        "preheader": PAYLOAD[:250],
        "event": make_event(title=PAYLOAD[:200], location=PAYLOAD[:300]),
        "blocks": [
            {"type": "heading", "text": PAYLOAD[:200]},
            {
                "type": "text",
                "markdown": f"{PAYLOAD}\n\n[lien](javascript:alert(4)) "
                "[donnée](data:text/html;base64,PHNjcmlwdD4=)\n\n<style>p{}</style>",
            },
            {"type": "image", "src": "https://x.example/a.png", "alt": PAYLOAD[:300]},
            {"type": "button", "label": PAYLOAD[:80], "url": "https://x.example/b"},
            {
                "type": "video",
                "url": "https://x.example/v",
                "thumbnail": "https://x.example/t.png",
                "caption": PAYLOAD[:300],
            },
            {"type": "event"},
            {"type": "rsvp"},
            {"type": "poll", "question": PAYLOAD[:300], "options": [XSS[:100], TEMPLATE[:100]]},
            {"type": "social", "links": [{"network": "website", "url": "https://x.example/"}]},
        ],
    }


def _ours(tag: str, attrs: dict[str, str]) -> bool:
    """The page's own script, data block and sandboxed preview frames."""
    if tag == "script":
        return attrs.get("src", "").startswith("/static/") or attrs.get("type") == (
            "application/json"
        )
    if tag == "iframe":
        return "sandbox" in attrs and attrs.get("src", "").startswith("/campaigns/")
    return False


def assert_inert(markup: str, *, allow_style: bool = False) -> None:
    """No element the officer's text could have created: tags, handlers, script URLs."""
    allowed_style = {"style"} if allow_style else set()
    for tag, attrs in elements(markup):
        assert tag not in FORBIDDEN_TAGS - allowed_style or _ours(tag, attrs), (tag, attrs)
        assert not (tag == "iframe" and attrs.get("sandbox")), attrs  # sandbox, with no grant
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src", "action", "formaction"):
                assert not value.strip().lower().startswith(("javascript:", "data:text")), value
    assert "<b>brut</b>" not in markup
    assert "<script>alert" not in markup and "</script><img" not in markup


@pytest.fixture
def hostile(api, org):
    lst = make_list(org, purpose="invitations", custom_fields=["quartier"])
    db.session.commit()
    officer = api("officer")
    body = {**hostile_invitation(), "list_ids": [lst.id]}
    response = officer.post("/campaigns", json=body)
    assert response.status_code == 201, response.get_json()
    return officer, response.get_json()["id"]


@pytest.mark.mjml
def test_hostile_text_is_inert_in_the_preview_html(hostile, mjml):
    officer, campaign_id = hostile
    data = officer.get(f"/campaigns/{campaign_id}/preview").get_json()
    assert_inert(data["html"], allow_style=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in data["html"]


@pytest.mark.mjml
def test_template_syntax_renders_literally_in_html_and_text(hostile, mjml):
    officer, campaign_id = hostile
    data = officer.get(f"/campaigns/{campaign_id}/preview").get_json()
    assert "{{ &#39;&#39;.__class__ }}" in data["html"] or "{{ ''.__class__ }}" in data["html"]
    assert "{{ ''.__class__ }}" in data["text"]
    assert "${7*7}" in data["text"]
    assert "<class 'str'>" not in data["text"] and "49" not in data["text"]
    assert "SECRET_KEY" not in data["html"] and "SECRET_KEY" not in data["text"]


@pytest.mark.mjml
def test_markdown_drops_javascript_and_data_links(hostile, mjml):
    officer, campaign_id = hostile
    data = officer.get(f"/campaigns/{campaign_id}/preview").get_json()
    hrefs = [a.get("href", "") for tag, a in elements(data["html"]) if tag == "a"]
    assert not [h for h in hrefs if h.startswith(("javascript:", "data:"))]
    assert "<style>p{}" not in data["html"]


@pytest.mark.mjml
def test_mj_include_typed_in_a_block_never_reaches_mjml_as_markup(hostile, mjml):
    officer, campaign_id = hostile
    data = officer.get(f"/campaigns/{campaign_id}/preview").get_json()
    assert "<mj-include" not in data["mjml"]
    assert "&lt;mj-include" in data["mjml"]
    assert "root:" not in data["html"]


def test_hostile_text_is_inert_in_the_editor_page(hostile, login_as, client):
    _, campaign_id = hostile
    login_as("officer")
    page = client.get(f"/campaigns/{campaign_id}/edit")
    assert page.status_code == 200
    assert_inert(page.get_data(as_text=True))


def test_hostile_text_is_inert_on_the_campaign_page(hostile, login_as, client):
    _, campaign_id = hostile
    login_as("director")
    page = client.get(f"/campaigns/{campaign_id}")
    assert page.status_code == 200
    assert_inert(page.get_data(as_text=True))


@pytest.mark.mjml
def test_hostile_text_is_inert_in_the_preview_page(hostile, login_as, client, mjml):
    _, campaign_id = hostile
    login_as("officer")
    page = client.get(f"/campaigns/{campaign_id}/preview.html")
    assert page.status_code == 200
    assert_inert(page.get_data(as_text=True), allow_style=True)
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
