"""The safe Markdown subset officers write text blocks in, turned into sanitised HTML.

Two layers, because either alone has let XSS through elsewhere: markdown-it with raw HTML
disabled (so ``<script>`` is text, not markup), then ``nh3`` with a short allowlist of tags
and of URL schemes (so ``javascript:``, ``data:`` and relative links disappear even if the
parser lets something odd through). Headings are folded to ``h2``/``h3``: the e-mail's own
title is the ``h1``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

ALLOWED_TAGS = frozenset(
    {"p", "strong", "em", "a", "ul", "ol", "li", "br", "h2", "h3", "blockquote"}
)
ALLOWED_ATTRIBUTES = {"a": {"href"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Tags whose content goes too, not just the tag (nh3 already drops script/style content).
DROP_CONTENT_TAGS = frozenset({"script", "style", "iframe", "object", "embed", "svg", "math"})

_HREF_RE = re.compile(r'<a href="([^"]*)"')
_BARE_A_RE = re.compile(r"<a>(.*?)</a>", re.S)

LinkMapper = Callable[[str, str], str]


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    # Images go through image blocks, which require alt text; tables, code and rules are
    # not part of the subset (they render poorly in mail clients).
    md.disable(["image", "code", "fence", "hr", "html_block", "html_inline"])
    return md


def _fold_headings(tokens: list[Token]) -> None:
    for tok in tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = "h2" if tok.tag in ("h1", "h2") else "h3"


def render_markdown(text: str) -> str:
    """Markdown → sanitised HTML (a fragment for an ``mj-text``)."""
    md = _parser()
    tokens = md.parse(text or "")
    _fold_headings(tokens)
    raw = md.renderer.render(tokens, md.options, {})
    return sanitise_html(raw)


def sanitise_html(fragment: str) -> str:
    """Keep only the subset's tags and absolute http(s)/mailto links."""
    cleaned = nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_CONTENT_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        url_relative="deny",
        link_rel=None,
        strip_comments=True,
    ).strip()
    # A link whose href was refused keeps its text, without an empty <a>.
    return _BARE_A_RE.sub(r"\1", cleaned)


def html_links(fragment: str) -> list[str]:
    """The hrefs of a sanitised fragment, unescaped, in document order."""
    return [html.unescape(m.group(1)) for m in _HREF_RE.finditer(fragment)]


def rewrite_links(fragment: str, replace: Callable[[str, str], str]) -> str:
    """Replace each http(s) href of a sanitised fragment with ``replace(url, label)``.

    ``replace`` returns the new (already safe, unescaped) href text; ``mailto:`` links are
    left alone. Used to swap URLs for per-recipient ``{{ link_N }}`` placeholders.
    """
    out: list[str] = []
    pos = 0
    for m in re.finditer(r'<a href="([^"]*)">(.*?)</a>', fragment, flags=re.S):
        url = html.unescape(m.group(1))
        out.append(fragment[pos : m.start()])
        if url.lower().startswith(("http://", "https://")):
            label = _strip_tags(m.group(2))
            new = replace(url, label)
            out.append(f'<a href="{html.escape(new, quote=True)}">{m.group(2)}</a>')
        else:
            out.append(m.group(0))
        pos = m.end()
    out.append(fragment[pos:])
    return "".join(out)


def _strip_tags(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


@dataclass(frozen=True)
class MdLink:
    """A link written in Markdown: its visible text and target."""

    text: str
    url: str


def markdown_links(text: str) -> list[MdLink]:
    """Links of a Markdown text with their visible text (for checks and the text part)."""
    links: list[MdLink] = []
    for tok in _inline_tokens(text):
        children = tok.children or []
        i = 0
        while i < len(children):
            child = children[i]
            if child.type == "link_open":
                href = str(child.attrs.get("href", ""))
                parts: list[str] = []
                i += 1
                while i < len(children) and children[i].type != "link_close":
                    if children[i].type == "text":
                        parts.append(children[i].content)
                    i += 1
                links.append(MdLink("".join(parts).strip(), href))
            i += 1
    return links


def _inline_tokens(text: str) -> Iterator[Token]:
    for tok in _parser().parse(text or ""):
        if tok.type == "inline":
            yield tok


def markdown_to_text(text: str, link_href: LinkMapper | None = None) -> list[str]:
    """Markdown → plain-text paragraphs (unwrapped), links written as ``texte : url``.

    ``link_href(url, label)`` may map a URL to what the text part shows (a placeholder).
    Returns one string per paragraph or list item; the caller wraps lines.
    """
    md = _parser()
    tokens = md.parse(text or "")
    paras: list[str] = []
    list_stack: list[list[int]] = []  # [counter] per open list; -1 for bullets
    quote_depth = 0
    prefix = ""
    for tok in tokens:
        if tok.type == "bullet_list_open":
            list_stack.append([-1])
        elif tok.type == "ordered_list_open":
            list_stack.append([int(tok.attrs.get("start", 1) or 1)])
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            list_stack.pop()
        elif tok.type == "blockquote_open":
            quote_depth += 1
        elif tok.type == "blockquote_close":
            quote_depth -= 1
        elif tok.type == "list_item_open":
            counter = list_stack[-1]
            indent = "  " * (len(list_stack) - 1)
            if counter[0] < 0:
                prefix = f"{indent}- "
            else:
                prefix = f"{indent}{counter[0]}. "
                counter[0] += 1
        elif tok.type == "inline":
            line = _inline_text(tok, link_href)
            if quote_depth:
                line = "> " * quote_depth + line
            paras.append(prefix + line)
            prefix = ""
    return paras


def _inline_text(tok: Token, link_href: LinkMapper | None) -> str:
    out: list[str] = []
    href: str | None = None
    label: list[str] = []
    for child in tok.children or []:
        if child.type == "link_open":
            href = str(child.attrs.get("href", ""))
            label = []
        elif child.type == "link_close":
            text_ = "".join(label).strip()
            target = href or ""
            if target.lower().startswith(("http://", "https://")) and link_href:
                target = link_href(target, text_)
            elif target.lower().startswith("mailto:"):
                target = target[len("mailto:") :]
            elif not target.lower().startswith(("http://", "https://")):
                target = ""  # dropped by the sanitiser in the HTML part too
            out.append(f"{text_} : {target}" if target and target != text_ else text_)
            href = None
        elif child.type in ("text", "code_inline"):
            (label if href is not None else out).append(child.content)
        elif child.type in ("softbreak",):
            (label if href is not None else out).append(" ")
        elif child.type == "hardbreak":
            (label if href is not None else out).append("\n")
    return "".join(out).strip()
