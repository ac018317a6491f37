"""Fixtures for the contact unit tests: the real files under tests/data."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def data_file():
    """Path of a committed fixture file, by name (see tests/data/make_fixtures.py)."""

    def get(name: str) -> Path:
        path = DATA / name
        assert path.exists(), f"missing fixture {name}: run tests/data/make_fixtures.py"
        return path

    return get
