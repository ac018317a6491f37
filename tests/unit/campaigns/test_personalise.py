"""Per-recipient substitution: only allowlisted names, values escaped, nothing evaluated."""

from __future__ import annotations

import pytest

from campaigns.personalise import (
    compile_html,
    compile_text,
    subscription_reason,
    unresolved_placeholders,
)


def test_allowlisted_placeholders_are_substituted():
    tpl = compile_html("<p>Bonjour {{ first_name }} {{last_name}}</p>")
    assert tpl.render({"first_name": "Léa", "last_name": "Roux"}) == "<p>Bonjour Léa Roux</p>"


@pytest.mark.parametrize(
    "literal",
    [
        "{{ config }}",
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% include 'x' %}",
        "${7*7}",
        "{{ 7*7 }}",
        "{{ first_name|upper }}",
        "{{ self }}",
    ],
)
def test_anything_else_stays_literal(literal):
    source = f"<p>{literal}</p>"
    assert compile_html(source).render({"config": "SECRET", "self": "x"}) == source


def test_values_are_html_escaped_in_html_parts():
    out = compile_html('<a title="{{ first_name }}">{{ first_name }}</a>').render(
        {"first_name": '"><script>alert(1)</script>'}
    )
    assert "<script>" not in out and "&quot;&gt;&lt;script&gt;" in out


def test_values_are_inserted_as_they_are_in_text_parts():
    assert (
        compile_text("Bonjour {{ first_name }}").render({"first_name": "A & B"}) == "Bonjour A & B"
    )


def test_values_are_never_rescanned_for_placeholders():
    out = compile_html("{{ first_name }}").render(
        {"first_name": "{{ unsubscribe_url }}", "unsubscribe_url": "https://x"}
    )
    assert out == "{{ unsubscribe_url }}"


def test_custom_fields_are_substituted_only_when_declared():
    source = "{{ quartier }}"
    assert compile_html(source, ["quartier"]).render({"quartier": "Nord"}) == "Nord"
    assert compile_html(source).render({"quartier": "Nord"}) == source


def test_link_and_poll_variables_are_recognised():
    tpl = compile_html('<a href="{{ link_12 }}">x</a><a href="{{ poll_url_2 }}">y</a>')
    assert tpl.names == {"link_12", "poll_url_2"}
    assert tpl.render({"link_12": "https://t/1?a=1&b=2", "poll_url_2": "https://p"}) == (
        '<a href="https://t/1?a=1&amp;b=2">x</a><a href="https://p">y</a>'
    )


def test_missing_values_become_empty_strings():
    assert compile_text("[{{ first_name }}]").render({}) == "[]"


def test_unresolved_placeholders_lists_what_will_show_literally():
    text = "{{ first_name }} {{ prenom }} {% if x %} ${7*7} {{ quartier }} {{ prenom }}"
    assert unresolved_placeholders(text, ["quartier"]) == ["{{ prenom }}", "{% if x %}", "${7*7}"]


def test_public_task_reason_mentions_the_right_to_object():
    assert "opposer" in subscription_reason("internal_file", "public_task")
    assert "site" in subscription_reason("web_form")
