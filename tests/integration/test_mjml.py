"""The real mjml compiler: every block type, the long-lived process's restart and timeout,
and the one-process-per-call fallback."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from campaigns import mjml as mjml_mod
from campaigns.compose import compile_campaign, preview, starter_templates
from campaigns.mjml import MjmlError, MjmlServer, compile_with_cli
from campaigns.personalise import placeholder
from tests.services import need

pytestmark = pytest.mark.mjml

EVENT = {
    "title": "Réunion publique",
    "starts_at": "2025-06-12T18:30",
    "ends_at": "2025-06-12T20:00",
    "location": "Salle des fêtes",
    "map_url": "https://www.openstreetmap.org/x",
    "rsvp_deadline": "2025-06-10T12:00",
    "capacity": 80,
}
BRANDING = {
    "from_name": "Ville de Test",
    "from_address": "com@test.fr",
    "logo_url": "https://test.fr/logo.png",
    "brand_color": "#000091",
    "postal_address": "1 place X\n00000 Test",
    "dpo_contact": "dpo@test.fr",
    "website_url": "https://test.fr",
}
EVIL = (
    '<mj-include path="../../../../etc/passwd" type="html"/>'
    "<mj-raw><script>alert(1)</script></mj-raw>"
)
BAD_ATTRIBUTE = (
    '<mjml><mj-body><mj-section><mj-column><mj-text foo="1">x</mj-text>'
    "</mj-column></mj-section></mj-body></mjml>"
)
ALL_BLOCKS = [
    {"type": "heading", "text": "Bonjour {{ first_name }} " + EVIL},
    {"type": "text", "markdown": "Texte **gras** [agenda](https://test.fr/agenda) " + EVIL},
    {
        "type": "image",
        "src": "https://test.fr/a.png",
        "alt": "Le parc " + EVIL,
        "href": "https://test.fr/p",
    },
    {"type": "button", "label": "Consulter l'agenda", "url": "https://test.fr/agenda"},
    {
        "type": "video",
        "url": "https://v.fr/1",
        "thumbnail": "https://v.fr/1.png",
        "caption": "Film",
    },
    {"type": "event"},
    {"type": "rsvp"},
    {"type": "poll", "question": "Votre choix ?", "options": ["Jardin", "Marché", EVIL]},
    {
        "type": "social",
        "links": [
            {"network": "facebook", "url": "https://facebook.com/t"},
            {"network": "mastodon", "url": "https://mastodon.fr/@t"},
        ],
    },
    {"type": "divider"},
]


@pytest.fixture(scope="module")
def server():
    need("mjml", mjml_mod.is_available(), "node or node_modules/mjml missing")
    srv = MjmlServer(timeout=20)
    yield srv
    srv.close()


@pytest.fixture
def hooked_server():
    need("mjml", mjml_mod.is_available(), "node or node_modules/mjml missing")
    srv = MjmlServer(timeout=20, env={"CRIEUR_MJML_TEST_HOOKS": "1"})
    yield srv
    srv.close()


def assert_reaped(pid: int) -> None:
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():  # only a zombie (state Z) would still be listed after kill + wait
        assert stat.read_text().split(")")[-1].split()[0] != "Z"
        pytest.fail(f"process {pid} still exists")


def compiled_all(server: MjmlServer):
    return compile_campaign(
        ALL_BLOCKS,
        "invitation",
        EVENT,
        BRANDING,
        "Objet {{ first_name }}",
        "Aperçu",
        campaign_uid="c-1",
        compiler=server.compile,
    )


def test_every_block_type_compiles_without_layout_warnings(server):
    out = compiled_all(server)
    assert out.warnings == []
    assert "<!doctype html>" in out.html.lower() and 'lang="fr"' in out.html
    for text in ("Consulter l&#39;agenda", "Jardin", "Salle des fêtes", "Peut-être", "Mastodon"):
        assert text in out.html


def test_officer_markup_is_inert_in_the_html(server):
    html = compiled_all(server).html
    assert "root:" not in html  # /etc/passwd was not included
    assert "<mj-include" not in html and "<mj-raw" not in html and "<script" not in html
    assert "&lt;mj-include" in html


def test_every_image_has_an_alt_attribute(server):
    html = compiled_all(server).html
    images = re.findall(r"<img\b[^>]*>", html, flags=re.S)
    assert len(images) >= 4  # logo, image, video thumbnail, pixel
    assert all(re.search(r'\balt="', img) for img in images)


def test_placeholders_survive_compilation_for_the_per_recipient_step(server):
    html = compiled_all(server).html
    for name in (
        "first_name",
        "link_1",
        "rsvp_yes_url",
        "poll_url_3",
        "unsubscribe_url",
        "preferences_url",
        "web_version_url",
        "open_pixel_url",
        "list_name",
    ):
        assert placeholder(name) in html


def test_preview_of_compiled_html_has_no_placeholder_left(server):
    shown = preview(compiled_all(server))
    assert "Bonjour Camille" in shown["html"]
    assert "{{ first_name }}" not in shown["html"] and "{{ link_" not in shown["html"]


def test_the_server_never_reads_included_files(server):
    doc = (
        '<mjml><mj-body><mj-include path="/etc/passwd" type="html" />'
        "<mj-section><mj-column><mj-text>x</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    assert "root:" not in server.compile(doc).html


def test_validation_errors_are_reported_in_french(server):
    doc = BAD_ATTRIBUTE
    result = server.compile(doc)
    assert result.errors and "l'attribut « foo » n'est pas permis" in result.errors[0]


def test_starter_templates_compile(server):
    for starter in starter_templates():
        event = (
            {**(starter.get("event") or {}), **EVENT} if starter["kind"] == "invitation" else None
        )
        out = compile_campaign(
            starter["blocks"],
            starter["kind"],
            event,
            BRANDING,
            starter["subject"],
            starter["preheader"],
            compiler=server.compile,
        )
        assert out.warnings == [] and out.html_size < 102 * 1024


def test_a_killed_process_is_replaced_on_the_next_call(hooked_server):
    hooked_server.compile("<mjml><mj-body></mj-body></mjml>")
    first = hooked_server.pid
    os.kill(first, signal.SIGKILL)
    time.sleep(0.1)
    result = hooked_server.compile("<mjml><mj-body></mj-body></mjml>")
    assert "<html" in result.html
    assert hooked_server.pid not in (None, first)
    assert_reaped(first)


def test_a_process_dying_mid_call_is_an_error_then_recovers(hooked_server):
    hooked_server.compile("<mjml><mj-body></mj-body></mjml>")
    first = hooked_server.pid
    with pytest.raises(MjmlError) as exc:
        hooked_server.request({"op": "exit"}, timeout=5)
    assert exc.value.code == "mjml_crashed"
    assert_reaped(first)
    assert "<html" in hooked_server.compile("<mjml><mj-body></mj-body></mjml>").html


def test_a_hung_compile_times_out_kills_the_process_and_leaves_no_zombie(hooked_server):
    hooked_server.compile("<mjml><mj-body></mj-body></mjml>")
    first = hooked_server.pid
    started = time.monotonic()
    with pytest.raises(MjmlError) as exc:
        hooked_server.request({"op": "sleep", "ms": 30_000}, timeout=0.5)
    assert exc.value.code == "mjml_timeout" and "dépassé" in exc.value.message
    assert time.monotonic() - started < 5
    assert hooked_server.pid is None
    assert_reaped(first)
    assert "<html" in hooked_server.compile("<mjml><mj-body></mj-body></mjml>").html


def test_test_hooks_are_off_unless_asked_for(server):
    pid = server.pid or server.compile("<mjml><mj-body></mj-body></mjml>") and server.pid
    answer = server.request({"op": "exit"}, timeout=10)  # an ordinary (empty) request
    assert answer["id"] and server.pid == pid


def test_cli_fallback_compiles_and_ignores_includes():
    need("mjml", mjml_mod.is_available(), "node or node_modules/mjml missing")
    doc = (
        '<mjml><mj-body><mj-include path="/etc/passwd" type="html" />'
        "<mj-section><mj-column><mj-text>Bonjour {{ first_name }}</mj-text></mj-column>"
        "</mj-section></mj-body></mjml>"
    )
    result = compile_with_cli(doc, timeout=30)
    assert "Bonjour {{ first_name }}" in result.html and "root:" not in result.html


def test_cli_fallback_reports_errors_in_french():
    need("mjml", mjml_mod.is_available(), "node or node_modules/mjml missing")
    doc = BAD_ATTRIBUTE
    result = compile_with_cli(doc, timeout=30)
    assert any("« foo »" in e for e in result.errors)


def test_missing_node_modules_is_a_clear_error(tmp_path):
    need("mjml", mjml_mod.is_available(), "node missing")
    with pytest.raises(MjmlError) as exc:
        MjmlServer(modules_dir=tmp_path).compile("<mjml></mjml>")
    assert exc.value.code == "mjml_unavailable"


def test_compile_mjml_falls_back_to_the_cli_when_the_server_dies(monkeypatch, tmp_path):
    need("mjml", mjml_mod.is_available(), "node or node_modules/mjml missing")
    monkeypatch.setattr(mjml_mod, "SERVER_SCRIPT", tmp_path / "missing.js")
    broken = MjmlServer(timeout=10)
    monkeypatch.setattr(mjml_mod, "_default", broken)
    try:
        result = mjml_mod.compile_mjml("<mjml><mj-body><mj-text>x</mj-text></mj-body></mjml>")
    finally:
        broken.close()
    assert "<html" in result.html
