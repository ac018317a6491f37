"""Checks run before review: what a careful editor would flag in a message.

Each finding is ``{"code", "level": "error"|"warning", "message", "block"?}``, the message
being a ``contacts.i18n.Message`` (French text that the web edge can translate),
``block`` being the 0-based index of the block concerned. Errors should stop a submission
for review; warnings are advice. The checks read the raw blocks tolerantly (a draft may
be incomplete), so they also serve while the officer is still typing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from campaigns.blocks import (
    DEFAULT_BRAND_COLOR,
    TYPE_LABELS,
    contrast_ratio,
)
from campaigns.markdown import markdown_links
from campaigns.personalise import unresolved_placeholders
from contacts.i18n import N_, Message

MAX_SUBJECT_CHARS = 78
GMAIL_CLIP_BYTES = 102 * 1024
MIN_CONTRAST = 4.5
VAGUE_LINK_TEXTS = frozenset(
    {
        "ici",
        "cliquez ici",
        "cliquer ici",
        "clic ici",
        "click here",
        "here",
        "lien",
        "en savoir plus",
        "lire la suite",
        "plus",
        "voir",
    }
)
_TEXTUAL = ("heading", "text", "button", "event", "poll")
_HEX_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")

Finding = dict[str, Any]


def _finding(code: str, level: str, message: str, block: int | None = None) -> Finding:
    out: Finding = {"code": code, "level": level, "message": message}
    if block is not None:
        out["block"] = block
    return out


def _where(i: int, block: Mapping[str, Any]) -> Message:
    label = TYPE_LABELS.get(str(block.get("type")), N_("bloc"))
    return Message(N_("Bloc %(n)s (%(label)s)"), {"n": i + 1, "label": Message(label)})


def _s(value: Any) -> str:
    return " ".join(str(value).split()) if isinstance(value, str | int | float) else ""


def _is_vague(text: str) -> bool:
    return text.strip(" .!…»«\"'").casefold() in VAGUE_LINK_TEXTS


def check_blocks(blocks: Sequence[Any]) -> list[Finding]:
    """Accessibility and readability of the blocks themselves."""
    found: list[Finding] = []
    blocks = [b if isinstance(b, Mapping) else {} for b in blocks or []]
    for i, block in enumerate(blocks):
        btype = block.get("type")
        where = _where(i, block)
        if btype == "image":
            if not _s(block.get("alt")):
                found.append(
                    _finding(
                        "missing_alt",
                        "error",
                        N_(
                            "%(where)s : ajoutez un texte alternatif décrivant l'image "
                            "(lu par les lecteurs d'écran et affiché quand les images sont "
                            "bloquées).",
                            where=where,
                        ),
                        i,
                    )
                )
            before = blocks[i - 1].get("type") if i > 0 else None
            after = blocks[i + 1].get("type") if i + 1 < len(blocks) else None
            if before not in _TEXTUAL and after not in _TEXTUAL:
                found.append(
                    _finding(
                        "image_without_text",
                        "warning",
                        N_(
                            "%(where)s : l'image n'est accompagnée d'aucun texte ; beaucoup de "
                            "messageries bloquent les images par défaut.",
                            where=where,
                        ),
                        i,
                    )
                )
        elif btype == "video" and not _s(block.get("caption")):
            found.append(
                _finding(
                    "missing_alt",
                    "error",
                    N_("%(where)s : ajoutez une légende à la vidéo.", where=where),
                    i,
                )
            )
        elif btype == "button":
            label = _s(block.get("label"))
            if not label:
                found.append(
                    _finding(
                        "empty_link_text",
                        "error",
                        N_("%(where)s : le bouton n'a pas de libellé.", where=where),
                        i,
                    )
                )
            elif _is_vague(label):
                found.append(
                    _finding(
                        "vague_link_text",
                        "warning",
                        N_(
                            "%(where)s : « %(label)s » ne dit pas où mène le lien ; préférez un "
                            "libellé explicite (ex. « Consulter l'agenda »).",
                            where=where,
                            label=label,
                        ),
                        i,
                    )
                )
        elif btype == "text":
            for link in markdown_links(str(block.get("markdown") or "")):
                if not link.text:
                    found.append(
                        _finding(
                            "empty_link_text",
                            "error",
                            N_("%(where)s : un lien n'a pas de texte.", where=where),
                            i,
                        )
                    )
                elif _is_vague(link.text):
                    found.append(
                        _finding(
                            "vague_link_text",
                            "warning",
                            N_(
                                "%(where)s : le lien « %(text)s » ne dit pas où il mène ; "
                                "décrivez la destination dans le texte du lien.",
                                where=where,
                                text=link.text,
                            ),
                            i,
                        )
                    )
    types = [b.get("type") for b in blocks]
    if types and "image" in types and not any(t in ("heading", "text") for t in types):
        found.append(
            _finding(
                "images_only",
                "warning",
                N_(
                    "Le message ne contient que des images : ajoutez du texte, sans quoi il sera "
                    "vide pour qui bloque les images et plus souvent classé comme indésirable."
                ),
            )
        )
    return found


def check_envelope(subject: str, preheader: str) -> list[Finding]:
    """Subject and preheader."""
    found: list[Finding] = []
    subject = _s(subject)
    if not subject:
        found.append(_finding("missing_subject", "error", N_("Le message n'a pas d'objet.")))
    elif len(subject) > MAX_SUBJECT_CHARS:
        found.append(
            _finding(
                "subject_too_long",
                "warning",
                N_(
                    "L'objet compte %(n)s caractères : au-delà de %(max)s, il sera coupé dans "
                    "la plupart des messageries (surtout sur téléphone).",
                    n=len(subject),
                    max=MAX_SUBJECT_CHARS,
                ),
            )
        )
    if not _s(preheader):
        found.append(
            _finding(
                "missing_preheader",
                "warning",
                N_(
                    "Ajoutez un texte d'aperçu : il s'affiche après l'objet dans la boîte de "
                    "réception (sinon la messagerie montre le début du message)."
                ),
            )
        )
    return found


def check_placeholders(
    blocks: Sequence[Any], subject: str, preheader: str, custom_fields: Iterable[str] = ()
) -> list[Finding]:
    """Template-like text that will not be replaced (shown as typed)."""
    fields = list(custom_fields)
    found: list[Finding] = []

    def report(text: str, where: Message, block: int | None) -> None:
        for frag in unresolved_placeholders(text, fields):
            found.append(
                _finding(
                    "unresolved_placeholder",
                    "warning",
                    N_(
                        "%(where)s : « %(text)s » n'est pas une variable connue et s'affichera "
                        "tel quel (variables possibles : {{ first_name }}, {{ last_name }}"
                        "%(fields)s).",
                        where=where,
                        text=frag[:60],
                        fields="".join(f", {{{{ {f} }}}}" for f in fields),
                    ),
                    block,
                )
            )

    report(_s(subject), Message(N_("Objet")), None)
    report(_s(preheader), Message(N_("Texte d'aperçu")), None)
    for i, block in enumerate(blocks or []):
        if not isinstance(block, Mapping):
            continue
        texts = [block.get(k) for k in ("text", "markdown", "alt", "label", "caption", "question")]
        texts += list(block.get("options") or []) if isinstance(block.get("options"), list) else []
        report(" ".join(str(t) for t in texts if isinstance(t, str)), _where(i, block), i)
    return found


def check_html(html: str) -> list[Finding]:
    """Weight of the compiled HTML (Gmail clips past 102 KB, hiding the footer)."""
    size = len((html or "").encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        return [
            _finding(
                "html_too_heavy",
                "warning",
                N_(
                    "Le message pèse %(kb)s Ko : au-delà de 102 Ko, Gmail le coupe et masque la "
                    "fin (dont le lien de désinscription). Raccourcissez-le.",
                    kb=size // 1024,
                ),
            )
        ]
    return []


def check_contrast(branding: Mapping[str, Any] | None) -> list[Finding]:
    """Buttons are white text on the brand colour: it must stay readable (WCAG AA)."""
    color = str((branding or {}).get("brand_color") or DEFAULT_BRAND_COLOR)
    if not _HEX_RE.match(color):
        return [
            _finding("invalid_color", "error", N_("La couleur de la charte doit s'écrire #rrggbb."))
        ]
    ratio = contrast_ratio(color, "#ffffff")
    if ratio < MIN_CONTRAST:
        return [
            _finding(
                "low_contrast",
                "warning",
                N_(
                    "Le texte blanc des boutons sur la couleur %(color)s est peu lisible "
                    "(contraste %(ratio)s:1, il faut au moins %(min)s:1). "
                    "Choisissez une couleur plus foncée.",
                    color=color,
                    ratio=f"{ratio:.1f}",
                    min=MIN_CONTRAST,
                ),
            )
        ]
    return []


def run_checks(
    blocks: Sequence[Any],
    *,
    subject: str = "",
    preheader: str = "",
    html: str = "",
    branding: Mapping[str, Any] | None = None,
    custom_fields: Iterable[str] = (),
    extra: Iterable[str] = (),
) -> list[Finding]:
    """Every pre-review check; ``extra`` adds MJML warnings (``Compiled.warnings``) as errors."""
    fields = list(custom_fields)
    found = check_envelope(subject, preheader)
    found += check_blocks(blocks)
    found += check_placeholders(blocks, subject, preheader, fields)
    found += check_html(html)
    found += check_contrast(branding)
    found += [_finding("layout_error", "error", message) for message in extra]
    return found


def has_errors(findings: Iterable[Finding]) -> bool:
    """Whether any finding blocks submission."""
    return any(f["level"] == "error" for f in findings)
