"""Preview re-render latency: the long-lived mjml process beside a fresh CLI per render.

Run from the repository root: ``.venv/bin/python bench/bench_preview.py [--renders 50]
[--cli-renders 10]``. It compiles a 12-block newsletter end to end (validation, Jinja →
MJML, MJML → HTML, text part) the way the preview does, then times per-recipient
personalisation of the result. Prints a short markdown report and writes it to
``bench/reports/preview.md``. Targets: p50 < 50 ms through the long-lived process and at
least 5× faster than a fresh ``mjml`` process per render.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from campaigns.compose import compile_campaign  # noqa: E402
from campaigns.mjml import MjmlServer, compile_with_cli  # noqa: E402
from campaigns.personalise import compile_html, compile_text, sample_values  # noqa: E402

BRANDING = {
    "from_name": "Ville de Saint-Exemple",
    "from_address": "communication@saint-exemple.fr",
    "logo_url": "https://www.saint-exemple.fr/logo.png",
    "brand_color": "#000091",
    "postal_address": "1 place de la Mairie\n00000 Saint-Exemple",
    "dpo_contact": "dpo@saint-exemple.fr",
    "website_url": "https://www.saint-exemple.fr",
    "tracking_policy": "aggregate",
}
PARAGRAPH = (
    "Bonjour {{ first_name }},\n\nLes travaux de la **rue de la République** se terminent "
    "à la fin du mois. Le [calendrier détaillé](https://www.saint-exemple.fr/travaux) est en "
    "ligne.\n\n- Déviation par le boulevard\n- Stationnement gratuit place du Marché"
)
BLOCKS = [
    {"type": "heading", "text": "Les nouvelles de mars"},
    {"type": "text", "markdown": PARAGRAPH},
    {"type": "image", "src": "https://www.saint-exemple.fr/parc.jpg", "alt": "Le parc rénové"},
    {"type": "text", "markdown": PARAGRAPH},
    {"type": "button", "label": "Voir l'agenda", "url": "https://www.saint-exemple.fr/agenda"},
    {"type": "divider"},
    {"type": "heading", "text": "Vie associative"},
    {"type": "text", "markdown": PARAGRAPH},
    {
        "type": "video",
        "url": "https://video.saint-exemple.fr/v/1",
        "thumbnail": "https://www.saint-exemple.fr/video.jpg",
        "caption": "Le conseil municipal en deux minutes",
    },
    {
        "type": "poll",
        "question": "Que pensez-vous de cette lettre ?",
        "options": ["Utile", "Trop longue", "À améliorer"],
    },
    {"type": "divider"},
    {
        "type": "social",
        "links": [
            {"network": "facebook", "url": "https://facebook.com/saintexemple"},
            {"network": "mastodon", "url": "https://mastodon.fr/@saintexemple"},
        ],
    },
]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def time_renders(compiler, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(n):
        subject = f"Les nouvelles de mars ({i})"  # a change per render, like typing
        t0 = time.perf_counter()
        compile_campaign(BLOCKS, "newsletter", None, BRANDING, subject, "L'essentiel du mois",
                         compiler=compiler)  # fmt: skip
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=50)
    parser.add_argument("--cli-renders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "reports" / "preview.md")
    args = parser.parse_args()

    server = MjmlServer(timeout=30)
    try:
        t0 = time.perf_counter()
        first = compile_campaign(BLOCKS, "newsletter", None, BRANDING, "x", "y",
                                 compiler=server.compile)  # fmt: skip
        cold_ms = (time.perf_counter() - t0) * 1000
        assert not first.warnings, first.warnings
        long_lived = time_renders(server.compile, args.renders)
    finally:
        server.close()
    cli = time_renders(lambda m: compile_with_cli(m, timeout=60), args.cli_renders)

    # Per-recipient personalisation of the compiled parts.
    html_t, text_t = compile_html(first.html), compile_text(first.text)
    values = sample_values(first.links)
    t0 = time.perf_counter()
    for i in range(args.messages):
        values["first_name"] = f"Camille{i}"
        html_t.render(values)
        text_t.render(values)
    per_msg_us = (time.perf_counter() - t0) / args.messages * 1e6

    p50, p95 = percentile(long_lived, 0.5), percentile(long_lived, 0.95)
    c50, c95 = percentile(cli, 0.5), percentile(cli, 0.95)
    speedup = c50 / p50
    ok = p50 < 50 and speedup >= 5
    report = "\n".join(
        [
            "# Preview re-render latency",
            "",
            f"12-block newsletter compiled end to end (blocks → MJML → HTML + text), "
            f"HTML {first.html_size / 1024:.1f} KB. Machine: {platform.machine()}, "
            f"{os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d %H:%M')}.",
            "",
            "| path | renders | p50 (ms) | p95 (ms) | mean (ms) |",
            "| --- | ---: | ---: | ---: | ---: |",
            f"| long-lived node process | {len(long_lived)} | {p50:.1f} | {p95:.1f} | "
            f"{statistics.mean(long_lived):.1f} |",
            f"| fresh `mjml` CLI per render | {len(cli)} | {c50:.1f} | {c95:.1f} | "
            f"{statistics.mean(cli):.1f} |",
            "",
            f"- First render, including the node process start: {cold_ms:.0f} ms.",
            f"- Speed-up at p50: **{speedup:.1f}×** (target ≥ 5×); p50 target < 50 ms: "
            f"**{'met' if p50 < 50 else 'missed'}**.",
            f"- Per-recipient personalisation (HTML + text, {args.messages} messages): "
            f"**{per_msg_us:.1f} µs** per message.",
            f"- Verdict: {'PASS' if ok else 'FAIL'}.",
            "",
        ]
    )
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
