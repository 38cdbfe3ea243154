"""Fixtures of the packaging suite: the sdists and wheels of the two distributions (the
target, and the local hub in localhub/), built once per session with `python -m build`, as a
release does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import source_tree_lock

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "plugin" / "target-azure-eventhubs.yml"


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@dataclass(frozen=True)
class Distributions:
    sdist: Path
    wheel: Path
    build_seconds: float
    localhub_sdist: Path
    localhub_wheel: Path


@pytest.fixture(scope="session")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """Built once per run: under pytest-xdist the first worker to get here builds into the
    run's shared temporary directory and the others reuse what it built."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        out = tmp_path_factory.getbasetemp().parent / "dist"  # this run's, all workers'
    else:
        out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    with source_tree_lock():  # one build at a time; not while another writes the egg-info
        timing = out / "build-seconds"
        if not timing.exists():
            out.mkdir(parents=True, exist_ok=True)
            for project, outdir in ((ROOT, out), (ROOT / "localhub", out / "localhub")):
                proc = subprocess.run(
                    [sys.executable, "-m", "build", "--outdir", str(outdir), str(project)],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
                assert proc.returncode == 0, (
                    f"python -m build {project} failed:\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}"
                )
            timing.write_text(f"{time.monotonic() - started:.1f}")
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    hub_sdists = sorted((out / "localhub").glob("*.tar.gz"))
    hub_wheels = sorted((out / "localhub").glob("*.whl"))
    assert len(hub_sdists) == 1 and len(hub_wheels) == 1
    return Distributions(
        sdists[0], wheels[0], float(timing.read_text()), hub_sdists[0], hub_wheels[0]
    )
