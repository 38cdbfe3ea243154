"""The code's own checks, run with the suite so that CI fails on them: ruff's lint rules,
ruff's formatting, and mypy over both packages (the target, and the local hub)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import source_tree_lock

ROOT = Path(__file__).resolve().parents[1]

CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
    "ruff format --check": [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
    "mypy": [sys.executable, "-m", "mypy", "target_azure_eventhubs", "localhub/src"],
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_tool_is_clean(name: str) -> None:
    # ruff reads every file under the repository: not while a build writes its trees there.
    lock = source_tree_lock() if name.startswith("ruff") else contextlib.nullcontext()
    with lock:
        done = subprocess.run(
            CHECKS[name], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
        )
    report = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, f"{name} failed:\n{report}"
