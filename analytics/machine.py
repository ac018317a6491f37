"""Tell machine activity (privacy proxies, link scanners, bots) from people's.

An open pixel or a click link is fetched by many things that are not the recipient:
Apple Mail Privacy Protection prefetches every image at delivery, corporate gateways
(Microsoft Defender Safe Links, Barracuda, Mimecast, Proofpoint, Symantec…) follow every
link of a message within seconds, chat apps unfurl links, scripts use curl. Counting
them as people inflates open rates and sends directors chasing noise, so every event is
stored with ``is_machine`` and the human figures leave those out.

The rules, each a sign that no person was there:

- the method is ``HEAD`` (browsers and mail clients fetch images and links with GET);
- the User-Agent is missing, a known scanner or bot, or Apple's bare ``Mozilla/5.0``;
- it came within seconds of sending: nobody reads and clicks that fast
  (:data:`OPEN_PREFETCH_SECONDS`, :data:`CLICK_PREFETCH_SECONDS`);
- an Apple Mail fetch within :data:`APPLE_PREFETCH_SECONDS` of sending (MPP prefetch);
- clicks on many links of one message within :data:`BURST_WINDOW_SECONDS`, or on
  every link of a message with several;
- a click by a recipient who never opened, from a client that is no browser.

Gmail's and Yahoo's image proxies are *not* machines by default: they fetch the pixel
when the person opens the message (the proxy only hides the device). Their prefetches
right after delivery are still caught by the timing rule. A body that prefers the
strictest reading can pass ``proxies_are_machines=True``.

:class:`ClickMemory` keeps, in memory, the recent clicks of each recipient key so the
web layer can apply the burst rule without a query per click.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import NamedTuple

from analytics.useragent import MAX_UA_CHARS, parse_user_agent

__all__ = [
    "APPLE_PREFETCH_SECONDS",
    "BURST_MIN_LINKS",
    "BURST_WINDOW_SECONDS",
    "CLICK_PREFETCH_SECONDS",
    "OPEN_PREFETCH_SECONDS",
    "ClickMemory",
    "RecentClicks",
    "classify_click",
    "classify_open",
    "is_machine_user_agent",
]

OPEN_PREFETCH_SECONDS = 5.0
APPLE_PREFETCH_SECONDS = 60.0
CLICK_PREFETCH_SECONDS = 10.0
BURST_WINDOW_SECONDS = 2.0
BURST_MIN_LINKS = 3

# Lowercase fragments of User-Agents that are never a person reading.
_SCANNER_FRAGMENTS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "messagelabs",
    "broadcom",
    "forcepoint",
    "trendmicro",
    "trend micro",
    "sophos",
    "fortinet",
    "fortiguard",
    "ironport",
    "cisco",
    "zscaler",
    "paloalto",
    "checkpoint",
    "check point",
    "safelinks",
    "safe links",
    "microsoft defender",
    "atp-",
    "bitdefender",
    "kaspersky",
    "cloudmark",
    "spamtitan",
    "hornet",
    "libraesva",
    "headlesschrome",
    "phantomjs",
    "python-",
    "python/",
    "curl/",
    "wget/",
    "go-http-client",
    "java/",
    "libwww",
    "apache-httpclient",
    "aiohttp",
    "httpx",
    "axios/",
    "node-fetch",
    "scrapy",
    "crawler",
    "spider",
    "facebookexternalhit",
    "whatsapp",
    "skypeuripreview",
    "google-safety",
    "linkpreview",
    "vadesecure",
)
_BOT = re.compile(r"bot(?:[/;)_-]|$)|robot")
_PROXY_FRAGMENTS = ("googleimageproxy", "ggpht.com", "yahoomailproxy")


class RecentClicks(NamedTuple):
    """Earlier clicks of one recipient: how long ago (seconds) and on which link."""

    ages: tuple[float, ...]
    link_ids: tuple[int | None, ...]


def _ua(user_agent: str | None) -> str:
    if not isinstance(user_agent, str):
        return ""
    return user_agent[:MAX_UA_CHARS].strip()


def is_machine_user_agent(user_agent: str | None, *, proxies_are_machines: bool = False) -> bool:
    """True for a missing UA, a scanner, a bot, a script, or Apple's bare ``Mozilla/5.0``."""
    ua = _ua(user_agent)
    if not ua:
        return True
    if ua == "Mozilla/5.0":  # Apple Mail Privacy Protection's prefetch
        return True
    low = ua.lower()
    if _BOT.search(low) or any(f in low for f in _SCANNER_FRAGMENTS):
        return True
    return proxies_are_machines and any(f in low for f in _PROXY_FRAGMENTS)


def _too_soon(seconds_since_sent: float | None, limit: float) -> bool:
    return seconds_since_sent is not None and seconds_since_sent < limit


def classify_open(
    user_agent: str | None,
    method: str,
    seconds_since_sent: float | None,
    *,
    proxies_are_machines: bool = False,
) -> bool:
    """Whether an open-pixel fetch is a machine's (``seconds_since_sent`` None: unknown)."""
    if (method or "GET").upper() == "HEAD":
        return True
    if is_machine_user_agent(user_agent, proxies_are_machines=proxies_are_machines):
        return True
    if _too_soon(seconds_since_sent, OPEN_PREFETCH_SECONDS):
        return True
    family = parse_user_agent(_ua(user_agent)).client_family
    return family == "Apple Mail" and _too_soon(seconds_since_sent, APPLE_PREFETCH_SECONDS)


def is_click_burst(
    recent_click_ages: Sequence[float],
    link_count: int,
    *,
    link_id: int | None = None,
    recent_link_ids: Sequence[int | None] | None = None,
    window: float = BURST_WINDOW_SECONDS,
) -> bool:
    """Whether this click and the earlier ones within ``window`` seconds look automated.

    With link ids, distinct links are counted (a double click on one link is a person);
    without them, clicks are.
    """
    in_window = [i for i, age in enumerate(recent_click_ages) if 0 <= age <= window]
    if not in_window:
        return False
    if recent_link_ids is not None and len(recent_link_ids) == len(recent_click_ages):
        links = {recent_link_ids[i] for i in in_window}
        links.add(link_id)
        count = len(links)
    else:
        count = len(in_window) + 1
    if count >= BURST_MIN_LINKS:
        return True
    return link_count >= 2 and count >= link_count


def classify_click(
    user_agent: str | None,
    method: str,
    seconds_since_sent: float | None,
    recent_click_times: Sequence[float] = (),
    link_count: int = 0,
    *,
    link_id: int | None = None,
    recent_link_ids: Sequence[int | None] | None = None,
    had_open: bool | None = None,
    proxies_are_machines: bool = False,
) -> bool:
    """Whether a click on a tracked link is a machine's.

    ``recent_click_times`` are the ages in seconds of this recipient's earlier clicks
    (see :meth:`ClickMemory.record`); ``link_count`` is how many tracked links the
    message holds; ``had_open`` says whether the recipient opened first (None: unknown).
    """
    if (method or "GET").upper() == "HEAD":
        return True
    if is_machine_user_agent(user_agent, proxies_are_machines=proxies_are_machines):
        return True
    if _too_soon(seconds_since_sent, CLICK_PREFETCH_SECONDS):
        return True
    if is_click_burst(
        recent_click_times, link_count, link_id=link_id, recent_link_ids=recent_link_ids
    ):
        return True
    if had_open is False:
        # People whose client blocks images click without an open, but from a browser.
        info = parse_user_agent(_ua(user_agent))
        return info.device_class == "unknown" and info.client_family in ("Other", "Bot")
    return False


class ClickMemory:
    """Recent clicks per recipient key, in memory, bounded and thread-safe.

    Keeps at most ``max_keys`` recipients (least recently clicked dropped first) and, for
    each, the clicks of the last ``horizon`` seconds (at most ``max_per_key``). Lost on
    restart, which only weakens the burst rule for a few seconds.
    """

    def __init__(
        self, max_keys: int = 50_000, horizon: float = 60.0, max_per_key: int = 50
    ) -> None:
        self.max_keys = max_keys
        self.horizon = horizon
        self.max_per_key = max_per_key
        self._data: OrderedDict[str, deque[tuple[float, int | None]]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def record(self, key: str, link_id: int | None = None, at: float | None = None) -> RecentClicks:
        """Remember a click now and return the earlier ones still within the horizon."""
        now = time.monotonic() if at is None else at
        with self._lock:
            clicks = self._data.pop(key, None)
            if clicks is None:
                clicks = deque(maxlen=self.max_per_key)
            while clicks and now - clicks[0][0] > self.horizon:
                clicks.popleft()
            earlier = RecentClicks(
                tuple(now - t for t, _ in clicks), tuple(link for _, link in clicks)
            )
            clicks.append((now, link_id))
            self._data[key] = clicks
            while len(self._data) > self.max_keys:
                self._data.popitem(last=False)
        return earlier

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
