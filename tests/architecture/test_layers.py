"""The layer rule of docs/architecture.md, checked on every import in ``src/tailorbot``.

Imports point one way, top to bottom:

    cli → sim → api/client → runtime → services/stream → models/features/kb
        → log/store/archive → events/config/errors/metrics

A module may import from its own layer or any layer below it, never from a layer above; two
packages of one layer may not import each other both ways (a cycle). Lazy imports inside
functions count as imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tailorbot"

# Top to bottom; each top-level module or package of tailorbot is in exactly one layer.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli", "__main__"}),
    frozenset({"sim"}),
    frozenset({"api", "client"}),
    frozenset({"runtime"}),
    frozenset({"services", "stream", "integrations"}),
    frozenset({"models", "features", "kb"}),
    frozenset(
        {"log", "store", "archive", "dlq", "_backends", "_sqlite", "_redis", "_redis_pipelined"}
    ),
    frozenset(
        {
            "events",
            "config",
            "_config_checks",
            "errors",
            "metrics",
            "telemetry",
            "_lazy",
            "_heap",
            "_priority",
            "_ports",  # a TCP port held for a server (cli/serve.py, api/server.py)
            "_tallies",  # the per-request Prometheus figures (metrics.py)
            "compiled",  # finds the C extension
            "_native",  # the C extension (built from csrc/)
            "__init__",
            "data",
            "py",
        }
    ),
)
LAYER_OF = {name: depth for depth, names in enumerate(LAYERS) for name in names}


def top_level(path: Path) -> str:
    """``cli`` for src/tailorbot/cli/serve.py, ``runtime`` for src/tailorbot/runtime.py."""
    first = path.relative_to(SRC).parts[0]
    return first.removesuffix(".py")


def imported_top_levels(path: Path) -> set[tuple[str, int]]:
    """(top-level tailorbot module, line) of every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "tailorbot":  # from tailorbot import runtime
                names = [f"tailorbot.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "tailorbot":
                found.add((parts[1] if len(parts) > 1 else "__init__", node.lineno))
    return found


def all_imports() -> list[tuple[str, str, str, int]]:
    """(importing top level, imported top level, file, line) over the whole package."""
    edges = []
    for path in sorted(SRC.rglob("*.py")):
        source = top_level(path)
        for target, line in imported_top_levels(path):
            edges.append((source, target, str(path.relative_to(SRC.parent)), line))
    return edges


def test_every_top_level_module_has_a_layer() -> None:
    names = {top_level(p) for p in SRC.rglob("*.py")}
    assert names - set(LAYER_OF) == set(), "add new packages to LAYERS (and the docs)"


def test_no_import_points_up() -> None:
    upward = [
        f"{file}:{line}: {source} (layer {LAYER_OF[source]}) imports {target} "
        f"(layer {LAYER_OF[target]})"
        for source, target, file, line in all_imports()
        if LAYER_OF.get(target, len(LAYERS)) < LAYER_OF[source]
    ]
    assert upward == []


def test_no_two_packages_of_a_layer_import_each_other() -> None:
    pairs: dict[tuple[str, str], str] = {}
    for source, target, file, line in all_imports():
        if source != target and LAYER_OF.get(target) == LAYER_OF[source]:
            pairs.setdefault((source, target), f"{file}:{line}")
    cycles = sorted(
        f"{a} <-> {b} ({pairs[(a, b)]}, {pairs[(b, a)]})"
        for (a, b) in pairs
        if (b, a) in pairs and a < b
    )
    assert cycles == []


@pytest.mark.parametrize(
    ("source", "imported", "expected_upward"),
    [("store", "services", True), ("cli", "store", False), ("features", "kb", False)],
)
def test_the_rule_itself(source: str, imported: str, expected_upward: bool) -> None:
    """The check would catch an upward import (a guard against a check that cannot fail)."""
    assert (LAYER_OF[imported] < LAYER_OF[source]) is expected_upward


def test_imports_are_found_inside_functions_too(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from tailorbot.runtime import Runtime\n")
    assert imported_top_levels(module) == {("runtime", 2)}
