"""Reduce a User-Agent string to a device class and a client family.

Crieur never stores a raw User-Agent: a tracking event keeps only these two coarse
labels, which is all the performance pages need (device split, mail clients) and
identifies nobody. The rules are ordered substring tests, not a full UA database: mail
clients and image proxies first (they borrow browser tokens), then browsers, most
specific first (Edge and Samsung Internet also say "Chrome", Chrome also says "Safari").
Results are cached: a campaign's events repeat a few hundred distinct UAs.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

__all__ = ["CLIENT_FAMILIES", "DEVICE_CLASSES", "UAInfo", "parse_user_agent"]

PHONE, TABLET, DESKTOP, UNKNOWN = "phone", "tablet", "desktop", "unknown"
DEVICE_CLASSES = (PHONE, TABLET, DESKTOP, UNKNOWN)

CLIENT_FAMILIES = (
    "GoogleImageProxy",
    "Yahoo",
    "Gmail",
    "Outlook",
    "Thunderbird",
    "Apple Mail",
    "Edge",
    "Samsung",
    "Opera",
    "Firefox",
    "Chrome",
    "Safari",
    "Bot",
    "Other",
)

MAX_UA_CHARS = 512


class UAInfo(NamedTuple):
    device_class: str
    client_family: str


# (lowercase needle, family), tested in order; the first match wins.
_FAMILY_RULES: tuple[tuple[str, str], ...] = (
    ("googleimageproxy", "GoogleImageProxy"),
    ("ggpht.com", "GoogleImageProxy"),
    ("yahoomailproxy", "Yahoo"),
    ("yahoomobile", "Yahoo"),
    ("ymobile", "Yahoo"),
    ("ymailnorrin", "Yahoo"),
    ("gmail", "Gmail"),
    ("microsoft outlook", "Outlook"),
    ("outlook-ios", "Outlook"),
    ("outlook-android", "Outlook"),
    ("outlook-express", "Outlook"),
    ("msoffice", "Outlook"),
    ("ms-office", "Outlook"),
    ("microsoft office", "Outlook"),
    ("windowsmail", "Outlook"),
    ("thunderbird", "Thunderbird"),
    ("crawler", "Bot"),
    ("spider", "Bot"),
    ("headlesschrome", "Bot"),
    ("curl/", "Bot"),
    ("wget/", "Bot"),
    ("python-", "Bot"),
    ("python/", "Bot"),
    ("aiohttp", "Bot"),
    ("httpx", "Bot"),
    ("go-http-client", "Bot"),
    ("java/", "Bot"),
    ("libwww", "Bot"),
    ("apache-httpclient", "Bot"),
    ("scrapy", "Bot"),
    ("phantomjs", "Bot"),
    ("facebookexternalhit", "Bot"),
    ("edg/", "Edge"),
    ("edge/", "Edge"),
    ("edga/", "Edge"),
    ("edgios/", "Edge"),
    ("samsungbrowser", "Samsung"),
    ("opr/", "Opera"),
    ("opera", "Opera"),
    ("firefox/", "Firefox"),
    ("fxios/", "Firefox"),
    ("chrome/", "Chrome"),
    ("crios/", "Chrome"),
    ("chromium/", "Chrome"),
)

# "Googlebot/2.1", "Slackbot-LinkExpanding", "TelegramBot (like TwitterBot)" but not the
# "CUBOT X19" phone.
_BOT = re.compile(r"bot(?:[/;)_-]|$)|robot")

_PROXIES = ("googleimageproxy", "ggpht.com", "yahoomailproxy")


def _family(ua: str) -> str:
    if _BOT.search(ua):
        return "Bot"
    for needle, family in _FAMILY_RULES:
        if needle in ua:
            return family
    if "applewebkit" in ua:
        # Safari says "Version/… Safari/…"; Apple Mail (macOS and iOS) and in-app web
        # views say AppleWebKit without the Safari token.
        if "safari/" in ua:
            return "Safari"
        if any(t in ua for t in ("macintosh", "iphone", "ipad", "ipod", "mac os x")):
            return "Apple Mail"
    return "Other"


def _device(ua: str) -> str:
    if any(p in ua for p in _PROXIES):
        return UNKNOWN  # the proxy hides the reader's device
    if "ipad" in ua or "tablet" in ua or "kindle" in ua or "silk/" in ua:
        return TABLET
    if "iphone" in ua or "ipod" in ua or "windows phone" in ua or "outlook-ios" in ua:
        return PHONE
    if "android" in ua:
        # Android phones say "Mobile"; Android tablets do not.
        return PHONE if "mobile" in ua else TABLET
    if "outlook-android" in ua or "mobile" in ua:
        return PHONE
    if any(t in ua for t in ("windows nt", "macintosh", "mac os x", "x11", "linux", "cros")):
        return DESKTOP
    if "microsoft outlook" in ua or "thunderbird" in ua or "msoffice" in ua:
        return DESKTOP
    return UNKNOWN


@lru_cache(maxsize=4096)
def _parse(ua: str) -> UAInfo:
    family = _family(ua)
    device = UNKNOWN if family == "Bot" else _device(ua)
    return UAInfo(device, family)


def parse_user_agent(user_agent: str | bytes | None) -> UAInfo:
    """(device_class, client_family) for a User-Agent header; junk gives (unknown, Other)."""
    if isinstance(user_agent, bytes):
        user_agent = user_agent.decode("latin-1")
    if not isinstance(user_agent, str):
        return UAInfo(UNKNOWN, "Other")
    ua = user_agent[:MAX_UA_CHARS].strip().lower()
    if not ua:
        return UAInfo(UNKNOWN, "Other")
    return _parse(ua)
