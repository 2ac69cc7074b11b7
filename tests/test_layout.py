"""The architecture holds: one job per folder, no import loop, small modules."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "intents", "knowledge")
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module named by an import, at any depth (inside functions and TYPE_CHECKING too)."""
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named.add(node.module)
            named.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
    return named


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path) & modules.keys() for name, path in modules.items()}


def test_intents_and_knowledge_never_import_bot_or_telegram() -> None:
    offenders = []
    for name, path in _modules().items():
        if name.startswith(("intents", "knowledge")):
            for target in _imports(path):
                if target.split(".")[0] in {"bot", "telegram"}:
                    offenders.append(f"{name} → {target}")
    assert offenders == []


def test_only_the_telegram_channel_imports_telegram() -> None:
    offenders = [
        name
        for name, path in _modules().items()
        if any(t.split(".")[0] == "telegram" for t in _imports(path))
        and not name.startswith(("bot.channels.telegram", "bot.cli.telegram"))
    ]
    assert offenders == []


def test_the_core_does_not_import_channels_or_cli() -> None:
    offenders = [
        f"{name} → {target}"
        for name, targets in _graph().items()
        if name.startswith("bot.core")
        for target in targets
        if target.startswith(("bot.channels", "bot.cli", "bot.app"))
    ]
    assert offenders == []


def test_no_import_loop() -> None:
    graph = _graph()
    # Importing a package runs its __init__; a module importing its own package is no loop.
    for name in graph:
        graph[name] = {t for t in graph[name] if t != name and not name.startswith(t + ".")}
    colour: dict[str, int] = defaultdict(int)
    loops: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        colour[node] = 1
        for target in sorted(graph[node]):
            if colour[target] == 1:
                loops.append(path[path.index(target) :] + [target])
            elif colour[target] == 0:
                visit(target, path + [target])
        colour[node] = 2

    for name in sorted(graph):
        if colour[name] == 0:
            visit(name, [name])
    assert loops == []


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_is_too_long(name: str) -> None:
    lines = _modules()[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by job"
