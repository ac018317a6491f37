"""Benchmark integration fixtures: a clean per-process cache for every test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_benchmark_cache():
    from analytics.benchmark import services

    services.forget_cached()
    yield
    services.forget_cached()
