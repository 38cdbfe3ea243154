"""The package's layout rules, checked on the import graph of its source files.

Every import counts, including those under `TYPE_CHECKING` and inside functions: a circle
through a type-only import is still a circle for a reader of the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "target_azure_eventhubs"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
# Leaf modules every package may use: they import nothing from the package themselves.
SHARED_LEAVES = {f"{PACKAGE}.errors", f"{PACKAGE}.runtime"}
MAX_MODULE_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports (a package counts as its __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for dotted in targets:
            target = dotted
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    graph = {name: imports_of(name, path, known) for name, path in found.items()}
    # A submodule import also runs its packages' __init__: that is no edge of its own.
    return {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in graph.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in SUBPACKAGES) else "<top>"


SUBPACKAGES = {"events", "changes", "delivery"}


def test_graph_sees_the_known_edges() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.events" in graph[f"{PACKAGE}.sink"]
    assert f"{PACKAGE}.delivery.sdk" in graph[f"{PACKAGE}.delivery.sender"]


def test_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    assert cycles(import_graph()) == []


def test_events_import_nothing_from_other_packages() -> None:
    for name, targets in import_graph().items():
        if package_of(name) == "events":
            outside = {t for t in targets if package_of(t) != "events"}
            assert not outside, f"{name} imports {sorted(outside)}"


def test_delivery_does_not_import_the_singer_side() -> None:
    for name, targets in import_graph().items():
        if package_of(name) == "delivery":
            bad = {t for t in targets if package_of(t) != "delivery" and t not in SHARED_LEAVES}
            assert not bad, f"{name} imports {sorted(bad)}"


def test_changes_use_only_events_and_the_shared_leaves() -> None:
    for name, targets in import_graph().items():
        if package_of(name) == "changes":
            bad = {
                t
                for t in targets
                if package_of(t) not in {"changes", "events"} and t not in SHARED_LEAVES
            }
            assert not bad, f"{name} imports {sorted(bad)}"


def _imported_roots(root: Path) -> set[str]:
    found: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def test_the_target_and_the_local_hub_are_separate_products() -> None:
    """Neither imports the other: the hub is a distribution of its own (localhub/), which
    the target's tests use, and the target's wheel does not ship."""
    assert "eventhubs_localhub" not in _imported_roots(ROOT)
    assert PACKAGE not in _imported_roots(ROOT.parent / "localhub" / "src")


def test_shared_leaves_import_nothing_from_the_package() -> None:
    graph = import_graph()
    for leaf in SHARED_LEAVES:
        assert graph[leaf] == set(), leaf


def test_the_sink_does_not_import_the_target() -> None:
    assert f"{PACKAGE}.target" not in import_graph()[f"{PACKAGE}.sink"]


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_over_the_size_limit(name: str) -> None:
    lines = modules()[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines"
