"""Dependency direction (ARCHITECTURE.md): sharing may import indicators, never the reverse;
indicators/matching imports neither Django nor the rest of the project."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: Path) -> dict[Path, set[str]]:
    found = {}
    for path in package.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[path.relative_to(ROOT)] = names
    return found


def test_indicators_never_imports_sharing():
    offenders = {
        str(p): sorted(n for n in names if n.split(".")[0] == "sharing")
        for p, names in imported_modules(ROOT / "indicators").items()
    }
    assert {p: n for p, n in offenders.items() if n} == {}


def test_matching_imports_neither_django_nor_the_project():
    forbidden = {"django", "rest_framework", "celery", "config", "sharing", "indicators"}
    offenders = {
        str(p): sorted(n for n in names if n.split(".")[0] in forbidden)
        for p, names in imported_modules(ROOT / "indicators" / "matching").items()
    }
    assert {p: n for p, n in offenders.items() if n} == {}


def test_cluster_linking_is_pure_python():
    """indicators/clustering.py (DOMAIN §4.3) takes plain records from its service: no Django, no
    database, nothing from the project but the pure matching package."""
    path = ROOT / "indicators" / "clustering.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in indicators/clustering.py"
            names.add(node.module)
    forbidden = {"django", "rest_framework", "celery", "config", "sharing"}
    assert sorted(n for n in names if n.split(".")[0] in forbidden) == []
    project = sorted(n for n in names if n.split(".")[0] == "indicators")
    assert all(n.startswith("indicators.matching") for n in project), project
