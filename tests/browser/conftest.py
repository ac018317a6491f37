"""Browser fixtures: a live Crieur server on a file SQLite database, and Chromium.

The ``app`` fixture (tests/conftest.py) already uses a SQLite file under ``tmp_path`` for
browser tests, which the server's threads share; tests commit before the browser acts.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import pytest

from tests.live_server import CHROMIUM_ARGS, LiveServer, live_server
from tests.services import chromium_path, need


@pytest.fixture
def live_app(app) -> Iterator[LiveServer]:
    """The app served on a free loopback port in a thread (werkzeug ``make_server``)."""
    need("chromium", chromium_path() is not None, "install Debian's chromium")
    with live_server(app) as server:
        yield server


@pytest.fixture(scope="module")
def chromium():
    """One Chromium per module (launching costs about a second); pages are per test."""
    need("chromium", chromium_path() is not None, "install Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def png(width: int, height: int, rgb: tuple[int, int, int] = (0, 0, 145)) -> bytes:
    """A plain PNG image of the given size (for images an e-mail points to)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
