"""The newcomer's path: the README's demo command works on a fresh copy of the repository.

Copies the repository (git-tracked files plus untracked files that are not ignored; no
virtualenvs, no .meltano) to a temporary directory, runs the demo command exactly as the
README writes it, and checks that every sample profile arrived and nothing else did.
Takes about a minute with a warm pip cache (pip's default cache is reused).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.services import service_missing, source_tree_lock

ROOT = Path(__file__).resolve().parents[2]
RESULT = re.compile(r"^DEMO RESULT: profiles=(\d+) events=(\d+) missing=(\d+) unexpected=(\d+)$")
EXCLUDED_TOP = (".venv", ".meltano", "output", ".git")


def _repository_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    files = []
    for name in filter(None, out.split("\0")):
        top = name.split("/", 1)[0]
        if top.startswith(EXCLUDED_TOP) or not (ROOT / name).is_file():
            continue  # deleted in the working tree, or a virtualenv / Meltano state
        files.append(name)
    return files


def _copy_repository(dest: Path) -> None:
    for name in _repository_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def _readme_demo_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1]
    return re.search(r"^(bash scripts/demo\.sh)\b", section, flags=re.MULTILINE).group(1)


def _expected_profiles(sample_dir: Path) -> set[str]:
    """Distinct profiles of the demo's input files, computed here, not by the demo."""
    ids: set[str] = set()
    for path in sample_dir.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                ids.add(json.loads(line)["profile_id"])
    return ids


@pytest.mark.slow
def test_demo_delivers_every_sample_profile_once(tmp_path):
    if shutil.which("git") is None:
        service_missing("git is needed to list the repository's files", "install git")
    repo = tmp_path / "repo"
    with source_tree_lock():  # no other worker's build tree (sdist, egg-info) half-written
        _copy_repository(repo)
    assert (repo / "scripts" / "demo.sh").is_file()

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TARGET_AZURE_EVENTHUBS_", "MELTANO_", "TAP_JSONL_"))
        and k not in {"VIRTUAL_ENV", "PYTHONPATH"}
    }
    command = _readme_demo_command()
    proc = subprocess.run(
        command,
        shell=True,
        check=False,
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # a hang guard: a loaded machine makes pip slow
    )
    output = f"--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"`{command}` failed with {proc.returncode}\n{output}"

    last = proc.stdout.rstrip("\n").splitlines()[-1]
    match = RESULT.match(last)
    assert match, f"last line is not a DEMO RESULT line: {last!r}\n{output}"
    profiles, events, missing, unexpected = map(int, match.groups())

    expected = _expected_profiles(repo / "sample_data")
    assert len(expected) >= 200  # a few hundred sample profiles
    assert profiles == len(expected), output
    assert (events, missing, unexpected) == (len(expected), 0, 0), output

    # The report also showed the per-partition counts and the stored STATE.
    assert re.search(r"partition \d+: \d+ events", proc.stdout)
    assert "meltano state get local:tap-jsonl-to-target-azure-eventhubs" in proc.stdout
    assert '"singer_state"' in proc.stdout
