"""Bound the hostile fields that public tracking endpoints receive.

User-Agent, Referer, page URL and ``utm_*`` values come from anyone on the Internet.
Here they are reduced to what Crieur keeps, at the lengths of their columns: NUL and
control characters (and bidi overrides, which reorder text on screen) removed, lengths
capped, referrers cut down to their host, page URLs to their path, non-HTTP(S) URLs
refused. Everything stays data: escaping for HTML happens at display time (Jinja
autoescape), and for spreadsheets in the export code; nothing here decodes or
interprets markup.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "HOST_MAX",
    "PATH_MAX",
    "UA_MAX",
    "UTM_FIELDS",
    "UTM_MAX",
    "VALUE_MAX",
    "clean_host",
    "clean_page_path",
    "clean_site_key",
    "clean_text",
    "clean_user_agent",
    "clean_utm",
    "clean_value",
    "is_http_url",
    "referrer_host",
    "utm_params",
]

UA_MAX = 512
HOST_MAX = 255
PATH_MAX = 500
UTM_MAX = 100
VALUE_MAX = 200  # TrackingEvent.value and Answer.value
URL_INPUT_MAX = 8192  # longer input is cut before parsing, to bound the work

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")

# C0 and C1 controls, DEL, bidi embeddings/overrides/isolates, BOM, line/paragraph
# separators.
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\u2028\u2029]"
)
_HOST = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\Z"
)
_IPV6 = re.compile(r"\[[0-9a-f:.]+\]\Z")
_SITE_KEY = re.compile(r"[A-Za-z0-9_-]{1,40}\Z")


def clean_text(value: object, max_len: int) -> str:
    """``value`` as a one-line string: controls become spaces, ends trimmed, capped."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif not isinstance(value, str):
        value = str(value)
    # Cut first so a 10 MB header costs no more than a short one, then clean, then cut again.
    value = _CONTROL.sub(" ", value[: max_len * 4]).strip()
    return value[:max_len].rstrip()


def clean_user_agent(user_agent: object) -> str:
    """A User-Agent to classify (never to store): at most :data:`UA_MAX` characters."""
    return clean_text(user_agent, UA_MAX)


def clean_utm(value: object) -> str:
    """One ``utm_*`` value, at most :data:`UTM_MAX` characters."""
    return clean_text(value, UTM_MAX)


def clean_value(value: object) -> str:
    """An event or answer value (RSVP choice, poll option), at most :data:`VALUE_MAX`."""
    return clean_text(value, VALUE_MAX)


def clean_site_key(value: object) -> str | None:
    """A site key as found in a URL, or None when it cannot be one."""
    if isinstance(value, str) and _SITE_KEY.match(value):
        return value
    return None


def is_http_url(url: object) -> bool:
    """True for an absolute ``http:`` or ``https:`` URL with a host."""
    if not isinstance(url, str) or len(url) > URL_INPUT_MAX or _CONTROL.search(url):
        return False
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


def clean_host(host: object) -> str:
    """A lowercase host name (IDN to punycode), or "" when it is not a valid one."""
    if not isinstance(host, str):
        return ""
    host = host.strip().rstrip(".").lower()
    if not host or len(host) > HOST_MAX * 2:
        return ""
    if _IPV6.match(host):
        return host[:HOST_MAX]
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    if len(host) > HOST_MAX or not _HOST.match(host):
        return ""
    return host


def referrer_host(referrer: object) -> str:
    """The host of an HTTP(S) referrer, nothing else (no path, query, port or user)."""
    if isinstance(referrer, bytes):
        referrer = referrer.decode("utf-8", "replace")
    if not isinstance(referrer, str):
        return ""
    referrer = referrer[:URL_INPUT_MAX].strip()
    if not is_http_url(referrer):
        return ""
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        return ""
    if ":" in host:  # IPv6 literal: urlsplit drops the brackets
        host = f"[{host}]"
    return clean_host(host)


def clean_page_path(page: object) -> str | None:
    """The path of a page URL, or None when the URL is not HTTP(S) or a path.

    Query and fragment are dropped: they can hold personal data (an e-mail in a
    confirmation link); campaign attribution reads ``utm_*`` apart, with
    :func:`utm_params`.
    """
    if isinstance(page, bytes):
        page = page.decode("utf-8", "replace")
    if not isinstance(page, str):
        return None
    page = page[:URL_INPUT_MAX].strip()
    if page.startswith("/") and not page.startswith("//") and not page.startswith("/\\"):
        path = page.split("?", 1)[0].split("#", 1)[0]
    elif is_http_url(page):
        path = urlsplit(page).path or "/"
    else:
        return None
    path = clean_text(path, PATH_MAX)
    return path or "/"


def utm_params(query_or_url: object) -> dict[str, str]:
    """The ``utm_source``, ``utm_medium`` and ``utm_campaign`` of a query string or URL.

    Missing ones are absent from the result; values are cleaned and capped.
    """
    if isinstance(query_or_url, bytes):
        query_or_url = query_or_url.decode("utf-8", "replace")
    if not isinstance(query_or_url, str):
        return {}
    text = query_or_url[:URL_INPUT_MAX]
    if "?" in text or "://" in text:
        text = text.split("?", 1)[1] if "?" in text else ""
    text = text.split("#", 1)[0].lstrip("?")
    found: dict[str, str] = {}
    text = "&".join(text.split("&", 100)[:100])  # bound the work on a hostile query
    for key, value in parse_qsl(text, keep_blank_values=False):
        if key in UTM_FIELDS and key not in found:
            cleaned = clean_utm(value)
            if cleaned:
                found[key] = cleaned
    return found
