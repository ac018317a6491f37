"""The plain-text alternative, derived from the blocks themselves (not scraped from HTML).

Links are written ``libellé : url`` on their own, lines wrapped at 78 characters where
words allow it (a long URL is never cut), and the footer carries the same information as
the HTML one. Placeholders (``{{ first_name }}``, ``{{ link_3 }}``…) are left for the
per-recipient step, exactly as in the HTML part.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from campaigns import ics
from campaigns.blocks import SOCIAL_NETWORKS, TRACKING_SENTENCES, LinkRegistry
from campaigns.markdown import markdown_to_text
from campaigns.personalise import placeholder

WIDTH = 78


# French typography: never break before ":" or "»", after "«", nor inside "18 h 30".
_GLUE_RE = re.compile(r" (?=[:;!?»])|(?<=«) |(?<=\d) (?=h \d)|(?<=\d h) (?=\d)")
# A placeholder cut across two lines would no longer be substituted.
_PLACEHOLDER_RE = re.compile(r"\{\{[^{}\n]{0,80}\}\}")
_GLUE = "\ue000"  # a private-use character: textwrap sees a letter, we put the space back


def wrap(text: str, width: int = WIDTH, indent: str = "") -> list[str]:
    """Wrap one paragraph; URLs and other long words stay whole."""
    glued = _PLACEHOLDER_RE.sub(lambda m: m.group(0).replace(" ", _GLUE), text)
    lines = _wrap(_GLUE_RE.sub(_GLUE, glued), width, indent)
    return [line.replace(_GLUE, " ") for line in lines]


def _wrap(text: str, width: int, indent: str) -> list[str]:
    out: list[str] = []
    for line in text.split("\n"):
        if not line.strip():
            out.append("")
            continue
        lead = line[: len(line) - len(line.lstrip())]
        # List items keep their marker; continuation lines align under the text.
        marker = ""
        stripped = line.lstrip()
        for m in ("- ", "> "):
            if stripped.startswith(m):
                marker = m
        if not marker and stripped[:1].isdigit() and ". " in stripped[:5]:
            marker = stripped[: stripped.index(". ") + 2]
        out.extend(
            textwrap.wrap(
                stripped,
                width=width,
                initial_indent=indent + lead,
                subsequent_indent=indent + lead + " " * len(marker),
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [""]
        )
    return out


def _link(label: str, href: str) -> str:
    return f"{label} : {href}"


def _ph(name: str) -> str:
    return placeholder(name)


def block_text(
    block: Mapping[str, Any],
    registry: LinkRegistry,
    event: ics.EventInfo | None = None,
) -> list[str]:
    """One validated block as unwrapped text paragraphs."""
    btype = block["type"]
    if btype == "heading":
        text = block["text"]
        return [f"{text}\n{'=' * min(len(text), WIDTH)}"]
    if btype == "text":
        return markdown_to_text(block["markdown"], registry.href)
    if btype == "image":
        line = f"[Image : {block['alt']}]"
        if block.get("href"):
            line = _link(line, registry.href(block["href"], block["alt"]))
        return [line]
    if btype == "button":
        url = block["url"]
        href = registry.href(url, block["label"])
        if href.lower().startswith("mailto:"):
            href = href[len("mailto:") :]
        return [_link(block["label"], href)]
    if btype == "confirm":
        return [_link(block["label"], _ph("confirm_url"))]
    if btype == "video":
        return [_link(f"Vidéo : {block['caption']}", registry.href(block["url"], block["caption"]))]
    if btype == "event":
        return event_text(event, registry)
    if btype == "rsvp":
        return rsvp_text(event)
    if btype == "poll":
        lines = [block["question"]]
        lines += [
            _link(f"- {option}", _ph(f"poll_url_{n}"))
            for n, option in enumerate(block["options"], 1)
        ]
        return ["\n".join(lines)]
    if btype == "social":
        return [
            "\n".join(
                _link(SOCIAL_NETWORKS[link["network"]],
                      registry.href(link["url"], SOCIAL_NETWORKS[link["network"]]))
                for link in block["links"]
            )
        ]  # fmt: skip
    if btype == "divider":
        return ["-" * 20]
    return []


def event_text(event: ics.EventInfo | None, registry: LinkRegistry) -> list[str]:
    """The event card in text."""
    if event is None:
        return []
    lines = [event.title.upper(), f"Quand : {ics.format_period(event)}", f"Où : {event.location}"]
    if event.map_url:
        lines.append(_link("Plan", registry.href(event.map_url, "Voir le plan")))
    if event.capacity:
        lines.append(f"Places : {event.capacity}")
    lines.append("Ajoutez l'événement à votre agenda avec le fichier joint (.ics).")
    return ["\n".join(lines)]


def rsvp_text(event: ics.EventInfo | None) -> list[str]:
    """The RSVP answers, one link per line."""
    head = "Serez-vous présent·e ?"
    if event is not None and event.rsvp_deadline:
        head += f" Merci de répondre avant le {ics.format_deadline(event.rsvp_deadline)}."
    return [
        head,
        "\n".join(
            [
                _link("- Oui", _ph("rsvp_yes_url")),
                _link("- Non", _ph("rsvp_no_url")),
                _link("- Peut-être", _ph("rsvp_maybe_url")),
            ]
        ),
    ]


def footer_text(branding: Mapping[str, Any], registry: LinkRegistry) -> list[str]:
    """The footer: why, unsubscribe, preferences, sender, DPO, measurement."""
    paras = [
        f"Vous recevez ce message car vous êtes inscrit·e à la liste « {_ph('list_name')} » : "
        f"{_ph('subscription_reason')}.",
        "\n".join(
            [
                _link("Se désinscrire", _ph("unsubscribe_url")),
                _link("Gérer mes préférences", _ph("preferences_url")),
            ]
        ),
    ]
    sender = [branding.get("from_name", "")]
    sender += [ln.strip() for ln in str(branding.get("postal_address", "")).splitlines() if ln]
    if branding.get("website_url"):
        site = registry.href(branding["website_url"], "Site internet")
        sender.append(_link("Site internet", site))
    paras.append("\n".join(s for s in sender if s))
    if branding.get("dpo_contact"):
        paras.append(
            "Données personnelles : vous pouvez exercer vos droits auprès de notre délégué·e "
            f"à la protection des données, {branding['dpo_contact']}."
        )
    policy = branding.get("tracking_policy", "aggregate")
    paras.append(TRACKING_SENTENCES.get(policy, TRACKING_SENTENCES["aggregate"]))
    return paras


def render_text(
    blocks: Sequence[Mapping[str, Any]],
    *,
    kind: str,
    branding: Mapping[str, Any],
    event: ics.EventInfo | None = None,
    registry: LinkRegistry | None = None,
) -> str:
    """The whole text part. Pass the registry used for the HTML so ``link_N`` agree."""
    registry = registry or LinkRegistry()
    paras: list[str] = [
        _link("Voir ce message dans le navigateur", _ph("web_version_url")),
        str(branding.get("from_name", "")),
    ]
    types = {b["type"] for b in blocks}
    if kind == "invitation" and "event" not in types:
        paras += event_text(event, registry)
    for block in blocks:
        paras += block_text(block, registry, event)
    if kind == "invitation" and "rsvp" not in types:
        paras += rsvp_text(event)
    lines: list[str] = []
    for para in paras:
        lines += wrap(para)
        lines.append("")
    lines.append("-- ")  # the usual signature separator, kept with its trailing space
    for para in footer_text(branding, registry):
        lines += wrap(para)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
