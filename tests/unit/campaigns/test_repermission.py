"""Re-permission pieces without a database: the confirm block, its link and its token."""

from __future__ import annotations

import pytest

from analytics import links
from analytics.tokens import BadToken
from campaigns.blocks import LinkRegistry, validate_blocks
from campaigns.links import RecipientLinks
from campaigns.plaintext import block_text
from contacts.db import DomainError

SECRET = "s" * 32
DAY = 24 * 3600
T0 = 1_700_000_000


def test_confirm_block_keeps_only_its_label():
    out = validate_blocks([{"type": "confirm", "label": "Je confirme", "url": "https://x.fr"}])
    assert out == [{"type": "confirm", "label": "Je confirme"}]


def test_confirm_block_needs_a_label():
    with pytest.raises(DomainError) as err:
        validate_blocks([{"type": "confirm", "label": " "}])
    assert "Bloc 1 (bouton de confirmation)" in err.value.message


def test_only_one_confirm_block_per_message():
    with pytest.raises(DomainError):
        validate_blocks([{"type": "confirm", "label": "A"}, {"type": "confirm", "label": "B"}])


def test_button_blocks_still_refuse_the_confirm_placeholder():
    with pytest.raises(DomainError):
        validate_blocks([{"type": "button", "label": "A", "url": "{{ confirm_url }}"}])


def test_confirm_block_in_text_links_to_the_placeholder_not_a_tracked_link():
    registry = LinkRegistry()
    lines = block_text({"type": "confirm", "label": "Je confirme"}, registry)
    assert lines == ["Je confirme : {{ confirm_url }}"] and registry.links == []


def test_repermission_link_reads_back_as_a_confirmation_of_that_contact_and_list():
    url = links.repermission_url("https://c.fr/", SECRET, 3, 40, 500, now=T0)
    assert url.startswith("https://c.fr/confirm/")
    token = links.read_confirm_token(SECRET, url.rsplit("/", 1)[-1], now=T0 + 20 * DAY)
    assert token == links.ConfirmToken(3, 40, 500, T0, links.REPERMISSION_PURPOSE)


def test_repermission_link_expires_after_thirty_days():
    token = links.repermission_url("https://c.fr", SECRET, 3, 40, 500, now=T0).rsplit("/", 1)[-1]
    with pytest.raises(BadToken) as err:
        links.read_confirm_token(SECRET, token, now=T0 + 31 * DAY)
    assert err.value.reason == "expired"


def test_double_opt_in_link_still_expires_after_seven_days():
    token = links.confirm_url("https://c.fr", SECRET, 3, 40, 500, now=T0).rsplit("/", 1)[-1]
    assert links.read_confirm_token(SECRET, token, now=T0 + 6 * DAY).purpose == "confirm"
    with pytest.raises(BadToken) as err:
        links.read_confirm_token(SECRET, token, now=T0 + 8 * DAY)
    assert err.value.reason == "expired"


def test_a_forged_confirmation_token_is_refused_as_a_bad_signature():
    token = links.repermission_url("https://c.fr", SECRET, 3, 40, 500, now=T0).rsplit("/", 1)[-1]
    with pytest.raises(BadToken) as err:
        links.read_confirm_token("o" * 32, token, now=T0)
    assert err.value.reason != "expired"


def _recipient_links(needed):
    return RecipientLinks(
        public_url="https://c.fr",
        secret=SECRET,
        policy="aggregate",
        org_id=3,
        campaign_id=9,
        campaign_uuid="u",
        needed=needed,
    )


def test_confirm_url_is_built_for_the_delivery_list_when_the_message_uses_it():
    values = _recipient_links({"confirm_url"}).values(1, 40, 500)
    token = links.read_confirm_token(SECRET, values["confirm_url"].rsplit("/", 1)[-1])
    assert (token.org_id, token.contact_id, token.list_id) == (3, 40, 500)


def test_confirm_url_is_not_built_when_the_message_does_not_use_it():
    assert "confirm_url" not in _recipient_links({"unsubscribe_url"}).values(1, 40, 500)
