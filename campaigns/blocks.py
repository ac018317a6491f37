"""Blocks: checking what an officer composed, and turning it into MJML.

The block types are the CONTRACT's (``POST /campaigns``). Validation returns normalised
copies and refuses bad input with a :class:`~contacts.db.DomainError` whose French message
names the block ("Bloc 3 (image) : …"); ``details["block"]`` holds the 0-based index.

Rendering uses its own Jinja environment over the top-level ``templates/`` folder, with
``autoescape=True`` (``select_autoescape()`` would skip ``.mjml``) and ``StrictUndefined``.
Officer text is passed to the templates as *data*: it is escaped, so ``<mj-include>`` or
``<mj-raw>`` typed in a block is text, never MJML, and ``{{ first_name }}`` comes out
literally for the per-recipient step (:mod:`campaigns.personalise`). Layout templates
emit the per-recipient placeholders through the ``ph()`` global.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from campaigns import ics
from campaigns.markdown import render_markdown, rewrite_links
from campaigns.personalise import MAX_POLL_OPTIONS, SYSTEM_VARIABLES, is_allowed, placeholder
from contacts.db import DomainError
from contacts.i18n import N_, Message

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"

BLOCK_TYPES = (
    "heading",
    "text",
    "image",
    "button",
    "video",
    "event",
    "rsvp",
    "poll",
    "social",
    "divider",
    "confirm",
)
TYPE_LABELS = {
    "heading": N_("titre"),
    "text": N_("texte"),
    "image": N_("image"),
    "button": N_("bouton"),
    "video": N_("vidéo"),
    "event": N_("événement"),
    "rsvp": N_("réponse à l'invitation"),
    "poll": N_("sondage"),
    "social": N_("réseaux sociaux"),
    "divider": N_("séparateur"),
    "confirm": N_("bouton de confirmation"),
}
SOCIAL_NETWORKS = {
    "facebook": "Facebook",
    "instagram": "Instagram",
    "x": "X (Twitter)",
    "twitter": "X (Twitter)",
    "linkedin": "LinkedIn",
    "youtube": "YouTube",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "tiktok": "TikTok",
    "threads": "Threads",
    "peertube": "PeerTube",
    "website": N_("Site internet"),
}
MAX_BLOCKS = 100
MAX_URL = 2000
LIMITS = {"heading": 200, "markdown": 20_000, "alt": 300, "label": 80, "caption": 300,
          "question": 300, "option": 100}  # fmt: skip
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --------------------------------------------------------------------------- validation


class _BlockError(Exception):
    """Why one block is refused: a French msgid (``N_``, or a ``Message`` with parameters)."""

    def __init__(self, message: str, field_: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field_


def _msg(text: str) -> Message:
    """``text`` (an ``N_``-marked label or a ``Message``) as a parameter the edge translates."""
    return text if isinstance(text, Message) else Message(text)


def clean_text(value: Any) -> str:
    """A string without control characters (NUL, escape…), trimmed; None → ''."""
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise _BlockError(N_("une valeur texte est attendue"))
    return _CONTROL_RE.sub("", str(value)).strip()


def _required(block: Mapping[str, Any], key: str, label: str, limit: int) -> str:
    text = clean_text(block.get(key))
    if not text:
        raise _BlockError(N_("%(label)s est obligatoire", label=_msg(label)), key)
    if len(text) > limit:
        raise _BlockError(
            N_("%(label)s dépasse %(max)s caractères", label=_msg(label), max=limit), key
        )
    return " ".join(text.split()) if key != "markdown" else text


def check_url(value: Any, *, label: str = N_("l'adresse"), mailto: bool = False) -> str:
    """An absolute http(s) URL (or ``mailto:`` when allowed); raises a French message."""
    url = clean_text(value)
    if not url:
        raise _BlockError(N_("%(label)s est obligatoire", label=_msg(label)))
    if len(url) > MAX_URL:
        raise _BlockError(N_("%(label)s est trop longue", label=_msg(label)))
    if any(c.isspace() for c in url) or "{{" in url or "{%" in url or "}}" in url:
        raise _BlockError(N_("%(label)s ne doit contenir ni espace ni variable", label=_msg(label)))
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.netloc and not parts.netloc.startswith("@"):
        return url
    if mailto and scheme == "mailto" and "@" in parts.path:
        return url
    message = (
        N_("%(label)s doit être une adresse http(s) ou mailto: complète (« %(url)s » refusée)")
        if mailto
        else N_("%(label)s doit être une adresse http(s) complète (« %(url)s » refusée)")
    )
    raise _BlockError(Message(message, {"label": _msg(label), "url": url[:60]}))


def _validate_one(block: Any, kind: str) -> dict[str, Any]:
    if not isinstance(block, Mapping):
        raise _BlockError(N_("un bloc doit être un objet avec un « type »"))
    btype = block.get("type")
    if btype not in BLOCK_TYPES:
        raise _BlockError(
            N_(
                "type de bloc inconnu « %(type)s » (types possibles : %(allowed)s)",
                type=str(btype)[:40],
                allowed=", ".join(BLOCK_TYPES),
            ),
            "type",
        )
    out: dict[str, Any] = {"type": btype}
    if btype == "heading":
        out["text"] = _required(block, "text", N_("le texte du titre"), LIMITS["heading"])
    elif btype == "text":
        out["markdown"] = _required(block, "markdown", N_("le texte"), LIMITS["markdown"])
    elif btype == "image":
        out["src"] = check_url(block.get("src"), label=N_("l'adresse de l'image"))
        out["alt"] = _required(
            block, "alt", N_("le texte alternatif (description de l'image)"), LIMITS["alt"]
        )
        if clean_text(block.get("href")):
            out["href"] = check_url(block.get("href"), label=N_("le lien de l'image"))
    elif btype == "button":
        out["label"] = _required(block, "label", N_("le libellé du bouton"), LIMITS["label"])
        out["url"] = check_url(block.get("url"), label=N_("le lien du bouton"), mailto=True)
    elif btype == "confirm":
        # The button of a re-permission campaign: its link is always the recipient's own
        # ``{{ confirm_url }}`` (never an officer's URL, never a click redirect).
        out["label"] = _required(block, "label", N_("le libellé du bouton"), LIMITS["label"])
    elif btype == "video":
        out["url"] = check_url(block.get("url"), label=N_("le lien de la vidéo"))
        out["thumbnail"] = check_url(block.get("thumbnail"), label=N_("l'image d'aperçu"))
        out["caption"] = _required(
            block, "caption", N_("la légende de la vidéo"), LIMITS["caption"]
        )
    elif btype in ("event", "rsvp"):
        if kind != "invitation":
            raise _BlockError(N_("ce bloc n'existe que dans une invitation"))
    elif btype == "poll":
        out["question"] = _required(block, "question", N_("la question"), LIMITS["question"])
        options = block.get("options")
        if not isinstance(options, Sequence) or isinstance(options, str):
            raise _BlockError(N_("les options du sondage doivent être une liste"), "options")
        cleaned = [" ".join(clean_text(o).split()) for o in options]
        if any(not o for o in cleaned):
            raise _BlockError(N_("une option du sondage est vide"), "options")
        if not 2 <= len(cleaned) <= MAX_POLL_OPTIONS:
            raise _BlockError(
                N_("un sondage propose de 2 à %(max)s options", max=MAX_POLL_OPTIONS), "options"
            )
        if any(len(o) > LIMITS["option"] for o in cleaned):
            raise _BlockError(
                N_("une option dépasse %(max)s caractères", max=LIMITS["option"]), "options"
            )
        if len({o.casefold() for o in cleaned}) != len(cleaned):
            raise _BlockError(N_("deux options du sondage sont identiques"), "options")
        out["options"] = cleaned
    elif btype == "social":
        links = block.get("links")
        if not isinstance(links, Sequence) or isinstance(links, str) or not links:
            raise _BlockError(N_("ajoutez au moins un lien de réseau social"), "links")
        if len(links) > 12:
            raise _BlockError(N_("12 liens au plus"), "links")
        out["links"] = []
        for n, link in enumerate(links, 1):
            if not isinstance(link, Mapping):
                raise _BlockError(
                    N_("le lien %(n)s doit avoir un réseau et une adresse", n=n), "links"
                )
            network = clean_text(link.get("network")).lower()
            if network not in SOCIAL_NETWORKS:
                raise _BlockError(
                    N_(
                        "réseau « %(network)s » inconnu (possibles : %(allowed)s)",
                        network=network[:30],
                        allowed=", ".join(SOCIAL_NETWORKS),
                    ),
                    "links",
                )
            url = check_url(link.get("url"), label=N_("l'adresse du lien %(n)s", n=n))
            out["links"].append({"network": network, "url": url})
    return out


def validate_blocks(
    blocks: Any, *, kind: str = "newsletter", has_event: bool = False
) -> list[dict[str, Any]]:
    """Normalised copies of the blocks, or a DomainError naming the first bad block."""
    if not isinstance(blocks, Sequence) or isinstance(blocks, str):
        raise DomainError("invalid_blocks", "Le contenu doit être une liste de blocs.")
    if not blocks:
        raise DomainError("invalid_blocks", "Le message est vide : ajoutez au moins un bloc.")
    if len(blocks) > MAX_BLOCKS:
        raise DomainError(
            "invalid_blocks",
            "Un message compte au plus %(max)s blocs.",
            params={"max": MAX_BLOCKS},
        )
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        btype = block.get("type") if isinstance(block, Mapping) else None
        label = TYPE_LABELS.get(btype, N_("bloc")) if isinstance(btype, str) else N_("bloc")
        try:
            clean = _validate_one(block, kind)
            if btype in ("rsvp", "poll", "confirm") and btype in seen:
                raise _BlockError(N_("un seul bloc de ce type par message"))
            if btype in ("event", "rsvp") and not has_event:
                raise _BlockError(N_("décrivez d'abord l'événement de l'invitation"))
        except _BlockError as exc:
            raise DomainError(
                "invalid_block",
                "Bloc %(n)s (%(label)s) : %(reason)s.",
                params={"n": i + 1, "label": _msg(label), "reason": _msg(exc.message)},
                block=i,
                field=exc.field,
            ) from None
        seen.add(btype)
        result.append(clean)
    return result


# ------------------------------------------------------------------------------ branding

DEFAULT_BRAND_COLOR = "#000091"  # the French State's "bleu France"
_HEX_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


def parse_hex_color(value: str) -> tuple[int, int, int]:
    """``#rgb`` or ``#rrggbb`` → (r, g, b)."""
    digits = value.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def contrast_ratio(color_a: str, color_b: str) -> float:
    """WCAG 2 contrast ratio between two hex colours (1 to 21)."""

    def luminance(color: str) -> float:
        def channel(c: int) -> float:
            s = c / 255
            return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

        r, g, b = (channel(c) for c in parse_hex_color(color))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    la, lb = sorted((luminance(color_a), luminance(color_b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def normalise_branding(branding: Mapping[str, Any] | None) -> dict[str, Any]:
    """The body's identity with every key the layouts use, checked and defaulted.

    Keys: ``from_name``, ``from_address``, ``logo_url``, ``brand_color``, ``postal_address``,
    ``dpo_contact``, ``website_url``, ``tracking_policy`` (off|aggregate|per_contact);
    ``heading_color`` is derived (the brand colour when readable on white).
    """
    src = dict(branding or {})

    def text(key: str, limit: int = 500) -> str:
        return _CONTROL_RE.sub("", str(src.get(key) or "")).strip()[:limit]

    def url(key: str) -> str:
        value = text(key, MAX_URL)
        if not value:
            return ""
        try:
            return check_url(value)
        except _BlockError:
            raise DomainError(
                "invalid_branding",
                "Identité : l'adresse « %(key)s » doit être en http(s).",
                params={"key": key},
            ) from None

    color = text("brand_color", 7) or DEFAULT_BRAND_COLOR
    if not _HEX_RE.match(color):
        raise DomainError(
            "invalid_branding", "Identité : la couleur doit s'écrire #rrggbb (ex. #000091)."
        )
    policy = text("tracking_policy", 20) or "aggregate"
    if policy not in TRACKING_SENTENCES:
        policy = "aggregate"
    return {
        "from_name": " ".join(text("from_name", 200).split()) or "Votre collectivité",
        "from_address": text("from_address", 320),
        "logo_url": url("logo_url"),
        "brand_color": color.lower(),
        "heading_color": color.lower() if contrast_ratio(color, "#ffffff") >= 4.5 else "#1e1e1e",
        "postal_address": text("postal_address", 1000),
        "dpo_contact": text("dpo_contact", 320),
        "website_url": url("website_url"),
        "tracking_policy": policy,
    }


# ----------------------------------------------------------------------------- rendering


def _placeholder(name: str) -> Markup:
    if not (name in SYSTEM_VARIABLES or is_allowed(name, frozenset())):
        raise ValueError(f"unknown per-recipient variable {name!r}")
    return Markup(placeholder(name))


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The MJML Jinja environment (separate from the web app's)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals["ph"] = _placeholder
    env.filters["nl2br"] = _nl2br
    return env


def _nl2br(value: str) -> Markup:
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    return Markup("<br />").join(lines)


@dataclass(frozen=True)
class Link:
    """A URL the message links to; ``index`` N is the ``{{ link_N }}`` placeholder."""

    index: int
    url: str
    label: str

    @property
    def placeholder(self) -> str:
        return f"link_{self.index}"


@dataclass
class LinkRegistry:
    """Collects the campaign's links; with ``track`` it hands out ``{{ link_N }}`` hrefs.

    One entry per distinct URL (CampaignLink is unique per campaign and URL).
    """

    track: bool = True
    links: list[Link] = field(default_factory=list)
    _by_url: dict[str, Link] = field(default_factory=dict)

    def href(self, url: str, label: str = "") -> str:
        """What to put in ``href`` for ``url``: a placeholder or the URL itself."""
        if not url.lower().startswith(("http://", "https://")):
            return url  # mailto: links are not redirected
        link = self._by_url.get(url)
        if link is None:
            link = Link(len(self.links) + 1, url, " ".join(label.split())[:255])
            self.links.append(link)
            self._by_url[url] = link
        return placeholder(link.placeholder) if self.track else url


@dataclass
class RenderContext:
    """Campaign-wide values the block templates need."""

    branding: Mapping[str, Any]
    event: ics.EventInfo | None
    registry: LinkRegistry
    headings_seen: int = 0


def render_block(block: Mapping[str, Any], index: int, ctx: RenderContext) -> Markup:
    """One validated block → an MJML ``<mj-section>`` fragment."""
    btype = block["type"]
    values: dict[str, Any] = {"block": block, "index": index, "branding": ctx.branding}
    if btype == "heading":
        values["level"] = 1 if ctx.headings_seen == 0 else 2
        ctx.headings_seen += 1
    elif btype == "text":
        values["html"] = Markup(
            rewrite_links(render_markdown(block["markdown"]), ctx.registry.href)
        )
    elif btype in ("image", "button", "video"):
        url = block.get("href") or block.get("url")
        label = block.get("label") or block.get("alt") or block.get("caption") or ""
        values["href"] = ctx.registry.href(url, label) if url else ""
    elif btype == "social":
        values["links"] = [
            {"label": SOCIAL_NETWORKS[link["network"]],
             "href": ctx.registry.href(link["url"], SOCIAL_NETWORKS[link["network"]])}
            for link in block["links"]
        ]  # fmt: skip
    elif btype in ("event", "rsvp"):
        values.update(event_values(ctx))
    elif btype == "poll":
        values["options"] = [
            {"label": label, "var": f"poll_url_{n}"} for n, label in enumerate(block["options"], 1)
        ]
    template = environment().get_template(f"blocks/{btype}.mjml")
    return Markup(template.render(values))


def event_values(ctx: RenderContext) -> dict[str, Any]:
    """Template values describing the invitation's event, in French, Paris time."""
    ev = ctx.event
    if ev is None:
        raise DomainError("event_required", "Une invitation doit décrire son événement.")
    return {
        "event": ev,
        "when": ics.format_period(ev),
        "deadline": ics.format_deadline(ev.rsvp_deadline) if ev.rsvp_deadline else "",
        "map_href": ctx.registry.href(ev.map_url, "Voir le plan") if ev.map_url else "",
    }


TRACKING_SENTENCES = {
    "off": "Ce message ne contient aucun dispositif de mesure d'audience.",
    "aggregate": (
        "Nous mesurons de façon globale et anonyme le nombre d'ouvertures et de clics de ce "
        "message, sans savoir qui l'a ouvert."
    ),
    "per_contact": (
        "Si vous l'avez accepté, nous mesurons l'ouverture de ce message et les clics sur ses "
        "liens afin d'améliorer nos communications ; sinon, seuls des totaux anonymes sont "
        "comptés. Vous pouvez changer d'avis dans vos préférences."
    ),
}


def render_mjml(
    blocks: Sequence[Mapping[str, Any]],
    *,
    kind: str,
    branding: Mapping[str, Any],
    subject: str,
    preheader: str,
    event: ics.EventInfo | None = None,
    track_links: bool = True,
    registry: LinkRegistry | None = None,
) -> tuple[str, list[Link]]:
    """Validated blocks → the whole MJML document and the links it contains.

    ``branding`` must come from :func:`normalise_branding`. Pass ``registry`` to share
    ``link_N`` numbering with the text part.
    """
    ctx = RenderContext(branding, event, registry or LinkRegistry(track=track_links))
    body = [render_block(block, i, ctx) for i, block in enumerate(blocks)]
    types = {b["type"] for b in blocks}
    extra: dict[str, Any] = {}
    if kind == "invitation":
        extra = event_values(ctx)
        extra["auto_event"] = "event" not in types
        extra["auto_rsvp"] = "rsvp" not in types
    policy = branding.get("tracking_policy", "aggregate")
    website = branding.get("website_url") or ""
    template = environment().get_template(f"layouts/{kind}.mjml")
    mjml = template.render(
        blocks=body,
        branding=branding,
        subject=subject,
        preheader=preheader,
        tracking_sentence=TRACKING_SENTENCES.get(policy, TRACKING_SENTENCES["aggregate"]),
        pixel=policy != "off",
        website_href=ctx.registry.href(website, "Site internet") if website else "",
        **extra,
    )
    return mjml, ctx.registry.links
