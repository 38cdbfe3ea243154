"""Fixtures of the pipeline suite: Meltano with its plugins (installed once per session)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from target_azure_eventhubs.testing import ReadEvent, read_all
from tests.services import source_tree_lock

ROOT = Path(__file__).resolve().parents[2]
PROJECT_TEMPLATE = Path(__file__).resolve().parent / "meltano_project"
MELTANO_SPEC = "meltano>=4.0,<5"  # as scripts/demo.sh
# Variables that would leak a developer's own settings into the test's Meltano project.
_FOREIGN_PREFIXES = ("TARGET_AZURE_EVENTHUBS_", "TAP_POSTGRES_", "MELTANO_")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "target-azure-eventhubs"


def meltano_executable() -> Path:
    """The repository's .venv-meltano (made by scripts/demo.sh) or a cached venv, created
    here when missing (Meltano is kept apart from the project's venv, like the demo does)."""
    repo_meltano = ROOT / ".venv-meltano" / "bin" / "meltano"
    if repo_meltano.exists():
        return repo_meltano
    venv = _cache_dir() / "meltano-venv"
    meltano = venv / "bin" / "meltano"
    venv.parent.mkdir(parents=True, exist_ok=True)
    # pytest-xdist's workers may all get here at once: one creates the venv, the others wait.
    with (venv.parent / "meltano-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not meltano.exists():
            _create_meltano_venv(venv)
    return meltano


def _create_meltano_venv(venv: Path) -> None:
    """Meltano in its own venv; a failed install leaves nothing behind."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            MELTANO_SPEC,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise RuntimeError(f"pip install {MELTANO_SPEC} failed:\n{proc.stderr[-4000:]}")


def meltano_env(root: Path) -> dict[str, str]:
    """The environment for Meltano in the project at `root`: this process's, without the
    variables that would leak a developer's own settings or virtualenv into it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_FOREIGN_PREFIXES) and k not in {"VIRTUAL_ENV", "PYTHONPATH"}
    }
    env.update(
        MELTANO_PROJECT_ROOT=str(root), MELTANO_SEND_ANONYMOUS_USAGE_STATS="false", NO_COLOR="1"
    )
    return env


@dataclass
class MeltanoProject:
    """A Meltano project in a temporary directory, and Meltano run in it with logs."""

    root: Path
    meltano: Path
    base_env: dict[str, str]
    install_seconds: float
    log_dir: Path
    runs: list[dict] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.base_env, **extra}

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 300,
        log_name: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.meltano), *args],
            cwd=self.root,
            env=env or self.base_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if log_name:
            (self.log_dir / f"{log_name}.log").write_text(
                f"$ meltano {' '.join(args)}\n--- exit {proc.returncode}\n--- stdout\n"
                f"{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def popen(self, *args: str, env: dict[str, str], log_name: str) -> subprocess.Popen[str]:
        log = (self.log_dir / f"{log_name}.log").open("w")
        log.write(f"$ meltano {' '.join(args)}\n")
        log.flush()
        return subprocess.Popen(
            [str(self.meltano), *args],
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


@pytest.fixture(scope="session")
def meltano_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeltanoProject]:
    """Meltano + tap-postgres + this target, installed once per session in a temp copy of
    the test's Meltano project (so runs and their state never touch the repository)."""
    started = time.monotonic()
    meltano = meltano_executable()
    root = tmp_path_factory.mktemp("meltano") / "project"
    shutil.copytree(PROJECT_TEMPLATE, root, ignore=shutil.ignore_patterns(".meltano", "output"))
    config = root / "meltano.yml"
    text = config.read_text()
    assert "pip_url: -e ../../.." in text
    config.write_text(text.replace("pip_url: -e ../../..", f"pip_url: -e {ROOT}"))
    log_dir = root / "output"
    log_dir.mkdir()
    project = MeltanoProject(
        root=root, meltano=meltano, base_env=meltano_env(root), install_seconds=0.0, log_dir=log_dir
    )
    with source_tree_lock():  # pip install -e of the repository writes its egg-info there
        proc = project.run("install", timeout=900, log_name="meltano-install")
    assert proc.returncode == 0, (
        f"meltano install failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    project.install_seconds = time.monotonic() - started
    yield project


class HubLog:
    """Everything the hub holds, read with the official consumer; tells new events apart."""

    def __init__(self, connection_string: str, hub: str) -> None:
        self.connection_string = connection_string
        self.hub = hub
        self.seen: set[tuple[str, int]] = set()

    def new_events(self) -> list[ReadEvent]:
        events = read_all(self.connection_string, self.hub, timeout=120)
        new = [e for e in events if (e.partition_id, e.sequence_number) not in self.seen]
        self.seen.update((e.partition_id, e.sequence_number) for e in events)
        return new
