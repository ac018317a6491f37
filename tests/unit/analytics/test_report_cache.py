"""The cache of campaign aggregates: versions, grace period, background refresh."""

from __future__ import annotations

import time

from analytics.dashboard import ReportCache


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, conn) -> int:
        self.calls += 1
        return self.calls


def test_the_same_version_is_computed_once():
    cache, compute = ReportCache(ttl=0), Counter()
    assert cache.get("k", 1, compute, None)[0] == 1
    assert cache.get("k", 1, compute, None)[0] == 1
    assert compute.calls == 1


def test_a_new_version_is_computed_again_without_a_grace_period():
    cache, compute = ReportCache(ttl=0), Counter()
    cache.get("k", 1, compute, None)
    assert cache.get("k", 2, compute, None)[0] == 2


def test_within_the_grace_period_a_new_version_gets_the_old_value():
    cache, compute = ReportCache(ttl=3600), Counter()
    cache.get("k", 1, compute, None)
    assert cache.get("k", 2, compute, None)[0] == 1
    assert compute.calls == 1


def test_after_the_grace_period_the_old_value_is_served_while_a_refresh_runs():
    jobs = []
    cache, compute = ReportCache(ttl=0, refresher=jobs.append), Counter()
    cache.get("k", 1, compute, None)
    value, _ = cache.get("k", 2, compute, None)
    assert value == 1 and len(jobs) == 1
    cache.get("k", 2, compute, None)
    assert len(jobs) == 1  # one refresh at a time per key
    jobs[0]("background-connection")
    assert cache.get("k", 2, compute, None)[0] == 2
    assert cache.refreshes == 1


def test_the_value_says_when_it_was_computed():
    cache = ReportCache(ttl=0)
    before = time.time()
    _, at = cache.get("k", 1, Counter(), None)
    assert before <= at <= time.time()


def test_peek_only_returns_a_value_of_that_exact_version():
    cache = ReportCache(ttl=3600)
    cache.get("k", 1, Counter(), None)
    assert cache.peek("k", 1) == 1
    assert cache.peek("k", 2) is None


def test_the_cache_is_bounded():
    cache = ReportCache(ttl=0, max_entries=3)
    for key in range(10):
        cache.get(key, 1, Counter(), None)
    assert len(cache._data) == 3
