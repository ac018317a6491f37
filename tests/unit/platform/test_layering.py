"""The dependency rule of STYLE.md: webapp → analytics → campaigns → contacts.

A package imports only packages to its right. The one sideways need, campaigns building
tracked, unsubscribe and UTM links, goes through analytics' leaf modules, which import
nothing but each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ORDER = ["contacts", "campaigns", "analytics", "webapp"]
ANALYTICS_LEAVES = {
    "analytics.tokens",
    "analytics.links",
    "analytics.snippet",
    "analytics.sanitize",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _violations() -> list[str]:
    problems = []
    for index, package in enumerate(ORDER):
        forbidden = ORDER[index + 1 :]
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for name in _imports(path):
                top = name.split(".", 1)[0]
                if top not in forbidden:
                    continue
                if package == "campaigns" and (
                    name == "analytics" or ".".join(name.split(".")[:2]) in ANALYTICS_LEAVES
                ):
                    continue  # ``from analytics import links``: the alias is checked too
                problems.append(f"{module} imports {name}")
    for leaf in ANALYTICS_LEAVES:
        path = ROOT / (leaf.replace(".", "/") + ".py")
        for name in _imports(path):
            top = name.split(".", 1)[0]
            if top in ORDER and not any(name.startswith(x) for x in ANALYTICS_LEAVES):
                problems.append(f"leaf {leaf} imports {name}")
    return problems


def test_packages_only_import_the_packages_below_them():
    assert _violations() == []


def test_campaigns_reach_analytics_only_through_its_leaf_modules():
    for path in sorted((ROOT / "campaigns").rglob("*.py")):
        for name in _imports(path):
            if name.startswith("analytics.") and name.count(".") >= 1:
                module = ".".join(name.split(".")[:2])
                assert module in ANALYTICS_LEAVES, f"{path.name} imports {name}"
