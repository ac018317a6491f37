"""The cookieless website counter and the UTM links that feed it.

A body pastes :func:`snippet_html` into its website. The script (:func:`site_script`)
sends one hit per page view to ``{public_url}/s/{site_key}/hit`` with:

- ``p``: the page path (no query string, no fragment);
- ``r``: the referrer's host, only when it is another site;
- ``e``: ``1`` when the page is an entry (no referrer or another site's);
- ``utm_source``, ``utm_medium``, ``utm_campaign`` from the page's query string.

It posts them as a form with ``navigator.sendBeacon`` (no CORS preflight), or falls back to
an image GET with the same fields in the query string; without JavaScript the
``<noscript>`` pixel ``/s/{site_key}/p.gif`` counts the view from its Referer. It sets no
cookie, touches no storage, and sends nothing when the browser says Do Not Track or
Global Privacy Control.

Visitors are counted with :func:`visitor_hash`: SHA-256 of a daily salt, the site key, the
User-Agent and the network prefix (/24 in IPv4, /48 in IPv6). The salt is random, lives
one day (``DailySalt``) and is then deleted, so yesterday's hashes cannot be recomputed
or linked to today's, and no IP address is stored or returned: this is the CNIL's
exempted audience measurement (anonymous statistics for the publisher alone, no
cross-site identifier, no link to a contact).
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import json
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

from analytics.sanitize import (
    clean_page_path,
    clean_text,
    clean_user_agent,
    clean_utm,
    is_http_url,
    referrer_host,
    utm_params,
)

__all__ = [
    "SiteHitData",
    "add_utm",
    "campaign_from_utm",
    "hit_from_beacon",
    "hit_from_pixel",
    "network_prefix",
    "new_daily_salt",
    "site_script",
    "snippet_html",
    "utm_campaign_value",
    "visitor_hash",
]

_SITE_KEY = re.compile(r"[A-Za-z0-9_-]{1,40}\Z")
_UUID_TAIL = re.compile(
    r"(?:^|[-_.])([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\Z", re.I
)


def _base(public_url: str) -> str:
    if not is_http_url(public_url):
        raise ValueError("public_url must be an http(s) URL")
    return public_url.strip().rstrip("/")


def _key(site_key: str) -> str:
    if not isinstance(site_key, str) or not _SITE_KEY.match(site_key):
        raise ValueError("invalid site key")
    return site_key


def snippet_html(public_url: str, site_key: str) -> str:
    """The HTML a body pastes into its website's pages."""
    base, key = _base(public_url), _key(site_key)
    js = html.escape(f"{base}/s/{key}.js", quote=True)
    gif = html.escape(f"{base}/s/{key}/p.gif", quote=True)
    return (
        f'<script async src="{js}"></script>\n'
        f'<noscript><img src="{gif}" alt="" width="1" height="1" '
        'referrerpolicy="no-referrer-when-downgrade" style="position:absolute"></noscript>'
    )


# Kept small on purpose (it loads on every page of the body's site); ES5 plus
# URL/URLSearchParams, which every browser in use has.
_SCRIPT = """\
(function(w,d,n){try{
if(n.doNotTrack=="1"||w.doNotTrack=="1"||n.msDoNotTrack=="1"||n.globalPrivacyControl)return;
var l=w.location,s=new URLSearchParams(l.search),q=new URLSearchParams(),r="";
try{r=d.referrer?new URL(d.referrer).hostname:""}catch(x){}
q.set("p",l.pathname.slice(0,500));
if(r&&r!=l.hostname)q.set("r",r);if(!r||r!=l.hostname)q.set("e","1");
["utm_source","utm_medium","utm_campaign"].forEach(function(k){
var v=s.get(k);if(v)q.set(k,v.slice(0,100))});
var u=__ENDPOINT__;
if(!(n.sendBeacon&&n.sendBeacon(u,q))){var i=new Image();i.src=u+"?"+q}
}catch(x){}})(window,document,navigator);
"""


def site_script(public_url: str, site_key: str) -> str:
    """The JavaScript served at ``/s/{site_key}.js``."""
    endpoint = f"{_base(public_url)}/s/{_key(site_key)}/hit"
    literal = json.dumps(endpoint).replace("<", "\\u003c").replace(">", "\\u003e")
    return _SCRIPT.replace("__ENDPOINT__", literal)


class SiteHitData(NamedTuple):
    """What one hit says, bounded; the web layer adds the visitor hash and campaign."""

    path: str
    referrer_host: str
    is_entry: bool
    utm_source: str
    utm_medium: str
    utm_campaign: str


def hit_from_beacon(fields: Mapping[str, object]) -> SiteHitData | None:
    """The hit in the script's form or query fields; None when the path is unusable."""

    def one(name: str) -> object:
        value = fields.get(name)
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        return value

    path = clean_page_path(one("p"))
    if path is None:
        return None
    host = referrer_host("https://" + clean_text(one("r"), 255)) if one("r") else ""
    return SiteHitData(
        path=path,
        referrer_host=host,
        is_entry=one("e") in ("1", 1, True),
        utm_source=clean_utm(one("utm_source")),
        utm_medium=clean_utm(one("utm_medium")),
        utm_campaign=clean_utm(one("utm_campaign")),
    )


def hit_from_pixel(referer: object) -> SiteHitData | None:
    """The hit the ``<noscript>`` pixel tells through its Referer header (the page URL)."""
    path = clean_page_path(referer)
    if path is None or not is_http_url(referer):
        return None
    utm = utm_params(referer)
    return SiteHitData(
        path=path,
        referrer_host="",
        is_entry=False,
        utm_source=utm.get("utm_source", ""),
        utm_medium=utm.get("utm_medium", ""),
        utm_campaign=utm.get("utm_campaign", ""),
    )


def new_daily_salt() -> str:
    """A fresh random salt (64 hex characters) for one site-day."""
    return secrets.token_hex(32)


def network_prefix(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of ``ip``, e.g. ``203.0.113.0/24``; "" if junk."""
    try:
        addr = ipaddress.ip_address(str(ip).strip().split("%", 1)[0])
    except ValueError:
        return ""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def visitor_hash(daily_salt: str, site_key: str, user_agent: str, network: str) -> str:
    """SHA-256 (hex) identifying a visitor for one day on one site, and nothing more.

    ``network`` may be the client IP or its prefix: an IP is cut to its prefix here,
    before hashing, and is never returned. With the salt deleted at the end of the day
    the hash cannot be reversed or matched across days or sites.
    """
    if not daily_salt:
        raise ValueError("a daily salt is required")
    prefix = network if "/" in str(network) else network_prefix(network)
    parts = (daily_salt, site_key, clean_user_agent(user_agent), prefix)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _bare_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _domains(body_domains: Iterable[str]) -> set[str]:
    out = set()
    for d in body_domains:
        if not d:
            continue
        d = d.strip()
        host = urlsplit(d).hostname if "://" in d else d.split("/", 1)[0].split(":", 1)[0]
        if host:
            out.add(_bare_host(host))
    return out


def _on_domains(host: str, domains: set[str]) -> bool:
    host = _bare_host(host)
    return any(host == d or host.endswith("." + d) for d in domains)


def add_utm(
    url: str,
    campaign: str,
    source: str = "crieur",
    medium: str = "email",
    body_domains: Iterable[str] = (),
) -> str:
    """``url`` with ``utm_*`` added when it points at one of the body's own sites.

    Links to other sites are returned unchanged (their owners do not need our campaign
    names). The existing query and fragment are kept as they are, and a ``utm_*`` the
    author set already wins.
    """
    domains = _domains(body_domains)
    if not domains or not is_http_url(url):
        return url
    parts = urlsplit(url)
    if not _on_domains(parts.hostname or "", domains):
        return url
    present = {p.split("=", 1)[0] for p in parts.query.split("&") if p}
    wanted = {"utm_source": source, "utm_medium": medium, "utm_campaign": campaign}
    added = [
        f"{k}={quote(clean_utm(v), safe='')}"
        for k, v in wanted.items()
        if k not in present and clean_utm(v)
    ]
    if not added:
        return url
    query = "&".join([parts.query, *added] if parts.query else added)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _slug(text: str, max_len: int = 40) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:max_len].strip("-")


def utm_campaign_value(campaign_uuid: str, name: str = "") -> str:
    """The ``utm_campaign`` Crieur puts on links: a readable slug, then the campaign UUID."""
    slug = _slug(name)
    return f"{slug}-{campaign_uuid}" if slug else campaign_uuid


def campaign_from_utm(utm_campaign: object) -> str | None:
    """The campaign UUID at the end of a ``utm_campaign`` value, or None (another tool's)."""
    if not isinstance(utm_campaign, str):
        return None
    match = _UUID_TAIL.search(utm_campaign.strip()[:200])
    return match.group(1).lower() if match else None
