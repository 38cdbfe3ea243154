"""docs/architecture.md names the code's parts: every class, function, method or module it
names in backticks exists in the target or the local hub."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (ROOT / "target_azure_eventhubs", ROOT / "localhub" / "src" / "eventhubs_localhub")
DEPENDENCIES = {"Target"}  # singer-sdk's, named as what the target builds on


def defined_names() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            names.update(path.relative_to(package.parent).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(node.name)
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names.add(node.target.id)
    return names


def named_in_doc() -> set[str]:
    """Backticked names that are code: dotted, private, or a class's CamelCase."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    found = set()
    for token in re.findall(r"`([^`]+)`", text):
        name = token.removesuffix("()").removesuffix(".py")
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name):
            continue
        if "." in name or name.startswith("_") or (name[0].isupper() and not name.isupper()):
            found.add(name)
    return found


def test_every_name_in_the_architecture_doc_exists() -> None:
    names = defined_names() | DEPENDENCIES
    named = named_in_doc()
    assert len(named) > 40  # the check reads the doc as meant
    missing = {name: [p for p in name.split(".") if p not in names] for name in named}
    assert {k: v for k, v in missing.items() if v} == {}
