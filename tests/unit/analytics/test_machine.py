"""Machine opens and clicks told apart from people's."""

from __future__ import annotations

import threading

import pytest

from analytics.machine import (
    ClickMemory,
    classify_click,
    classify_open,
    is_click_burst,
    is_machine_user_agent,
)

IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
OUTLOOK = "Mozilla/4.0 (compatible; ms-office; MSOffice 16) Microsoft Outlook 16.0.17029"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)


@pytest.mark.parametrize(
    "ua",
    [
        None,
        "",
        "Mozilla/5.0",  # Apple Mail Privacy Protection
        "Barracuda Sentinel (EE)",
        "Mimecast Security Scanner",
        "Proofpoint URL Defense",
        "Symantec MessageLabs Link Scanner",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.4.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1",
    ],
)
def test_scanner_and_bot_user_agents_are_machines(ua):
    assert is_machine_user_agent(ua)
    assert classify_open(ua, "GET", 3600)
    assert classify_click(ua, "GET", 3600)


@pytest.mark.parametrize("ua", [IPHONE_MAIL, CHROME, OUTLOOK, GMAIL_PROXY])
def test_mail_clients_and_browsers_opening_later_are_people(ua):
    assert not classify_open(ua, "GET", 3600)


def test_gmail_proxy_counts_as_machine_when_the_body_asks_for_it():
    assert classify_open(GMAIL_PROXY, "GET", 3600, proxies_are_machines=True)


def test_head_requests_are_machines():
    assert classify_open(CHROME, "HEAD", 3600)
    assert classify_click(CHROME, "head", 3600)


def test_open_seconds_after_sending_is_a_prefetch():
    assert classify_open(CHROME, "GET", 2)
    assert classify_open(GMAIL_PROXY, "GET", 1)


def test_apple_mail_open_within_a_minute_is_privacy_protection():
    assert classify_open(IPHONE_MAIL, "GET", 30)
    assert not classify_open(IPHONE_MAIL, "GET", 120)


def test_unknown_send_time_does_not_make_an_open_a_machine():
    assert not classify_open(IPHONE_MAIL, "GET", None)


def test_click_within_seconds_of_sending_is_a_scanner():
    assert classify_click(CHROME, "GET", 4)
    assert not classify_click(CHROME, "GET", 600)


def test_clicks_on_every_link_within_two_seconds_are_a_machine():
    assert classify_click(CHROME, "GET", 600, recent_click_times=[0.4, 0.9], link_count=3)


def test_two_quick_clicks_on_a_two_link_message_are_a_machine():
    assert classify_click(CHROME, "GET", 600, recent_click_times=[0.5], link_count=2)


def test_a_double_click_on_one_link_is_a_person():
    assert not classify_click(
        CHROME,
        "GET",
        600,
        recent_click_times=[0.3],
        link_count=2,
        link_id=7,
        recent_link_ids=[7],
    )


def test_clicks_spread_over_minutes_are_a_person():
    assert not classify_click(CHROME, "GET", 900, recent_click_times=[30, 95], link_count=3)


def test_three_distinct_links_in_the_window_are_a_burst_whatever_the_link_count():
    assert is_click_burst([0.2, 1.0], link_count=20, link_id=3, recent_link_ids=[1, 2])
    assert not is_click_burst([0.2, 1.0], link_count=20, link_id=1, recent_link_ids=[1, 1])


def test_click_without_open_from_a_non_browser_is_a_machine():
    assert classify_click("SomeFetcher/1.0", "GET", 600, had_open=False)


def test_click_without_open_from_a_browser_is_a_person():
    assert not classify_click(CHROME, "GET", 600, had_open=False)


def test_click_memory_returns_earlier_clicks_with_their_ages():
    memory = ClickMemory()
    assert memory.record("k", 1, at=100.0) == ((), ())
    earlier = memory.record("k", 2, at=101.5)
    assert earlier.ages == (1.5,)
    assert earlier.link_ids == (1,)
    assert memory.record("other", 1, at=101.6) == ((), ())


def test_click_memory_forgets_clicks_past_the_horizon():
    memory = ClickMemory(horizon=10)
    memory.record("k", 1, at=0.0)
    memory.record("k", 2, at=5.0)
    assert memory.record("k", 3, at=12.0).link_ids == (2,)


def test_click_memory_keeps_at_most_max_keys_dropping_the_oldest():
    memory = ClickMemory(max_keys=3)
    for i, key in enumerate("abcd"):
        memory.record(key, at=float(i))
    assert len(memory) == 3
    assert memory.record("a", at=10.0) == ((), ())  # "a" was dropped
    assert memory.record("d", at=10.0).ages == (7.0,)


def test_click_memory_bounds_clicks_per_key():
    memory = ClickMemory(max_per_key=5)
    for i in range(50):
        memory.record("k", i, at=float(i) / 100)
    assert len(memory.record("k", at=1.0).ages) == 5


def test_click_memory_is_safe_under_threads():
    memory = ClickMemory(max_keys=100)

    def hammer(n: int) -> None:
        for i in range(500):
            memory.record(f"k{(n * 7 + i) % 150}", i)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(memory) == 100


def test_memory_feeds_the_click_classifier():
    memory = ClickMemory()
    verdicts = []
    for link, at in ((1, 50.0), (2, 50.3), (3, 50.6)):
        earlier = memory.record("key", link, at=at)
        verdicts.append(
            classify_click(
                CHROME, "GET", 600, earlier.ages, 3, link_id=link, recent_link_ids=earlier.link_ids
            )
        )
    assert verdicts == [False, False, True]
