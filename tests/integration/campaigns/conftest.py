"""Fixtures shared by the campaigns tests."""

from __future__ import annotations

import pytest

from tests.services import mjml_available, need
from tests.smtp_servers import recording_smtp  # noqa: F401 - a fixture for test_test_send


@pytest.fixture
def mjml():
    """Skip locally (fail in CI) when node or node_modules/mjml is missing."""
    need("mjml", mjml_available(), "node or node_modules/mjml missing")
