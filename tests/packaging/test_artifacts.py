"""What a release publishes: the sdists and wheels of both distributions pass `twine check`,
the target's sdist is the whole project (tests, sample data and localhub/ included), its
wheel only the target's package (no local hub), the local hub's wheel only its own, and the
two wheels installed into a fresh virtualenv (not editable) run both commands."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.packaging.conftest import ROOT, Distributions, pyproject

PACKAGE = "target_azure_eventhubs"


def _run(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as tar:
        # Every member sits under `<name>-<version>/`.
        return {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}


def _tracked_files() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return {name for name in out.split("\0") if name and (ROOT / name).is_file()}


def test_twine_check_passes(distributions: Distributions):
    print(f"python -m build: {distributions.build_seconds:.1f} s")
    proc = _run(
        sys.executable,
        "-m",
        "twine",
        "check",
        "--strict",
        distributions.sdist,
        distributions.wheel,
        distributions.localhub_sdist,
        distributions.localhub_wheel,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 4, proc.stdout


def test_the_local_hub_wheel_holds_its_package_and_command_only(distributions: Distributions):
    with zipfile.ZipFile(distributions.localhub_wheel) as wheel:
        names = wheel.namelist()
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = wheel.read(info).decode()
    tops = {name.split("/", 1)[0] for name in names}
    assert "eventhubs_localhub" in tops and not any(t.startswith(PACKAGE) for t in tops), tops
    assert "eventhubs_localhub/server.py" in names
    assert "azure-eventhubs-localhub = eventhubs_localhub.__main__:main" in entry_points


def test_sdist_holds_the_project_with_tests_and_sample_data(distributions: Distributions):
    names = _sdist_names(distributions.sdist)
    missing = _tracked_files() - names
    assert not missing, f"tracked files missing from the sdist: {sorted(missing)}"
    assert any(n.startswith("tests/") and n.endswith(".py") for n in names)
    assert any(n.startswith("sample_data/") and n.endswith(".jsonl") for n in names)
    junk = [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/.meltano/" in n]
    assert not junk, junk


def test_wheel_holds_the_package_and_license_only(distributions: Distributions):
    version = pyproject()["version"]
    with zipfile.ZipFile(distributions.wheel) as wheel:
        names = wheel.namelist()
        license_text = wheel.read(f"{PACKAGE}-{version}.dist-info/licenses/LICENSE")
        entry_points = wheel.read(f"{PACKAGE}-{version}.dist-info/entry_points.txt").decode()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {PACKAGE, f"{PACKAGE}-{version}.dist-info"}, tops
    assert not [n for n in names if "/tests/" in n or n.endswith("conftest.py")]
    assert not [n for n in names if "localhub" in n], "the target's wheel ships the local hub"
    assert f"{PACKAGE}/testing/readback.py" in names
    assert license_text == (ROOT / "LICENSE").read_bytes()
    for command in pyproject()["scripts"]:
        assert f"{command} = " in entry_points


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_virtualenv_runs_both_commands(
    distributions: Distributions, tmp_path: Path
):
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    bin_dir = venv / "bin"
    pip = _run(
        bin_dir / "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        distributions.wheel,
        distributions.localhub_wheel,
        cwd=tmp_path,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]

    # Run from the temp dir, so that the checkout cannot be imported by accident.
    where = _run(
        bin_dir / "python",
        "-c",
        "import target_azure_eventhubs as t; print(t.__file__); print(t.__version__)",
        cwd=tmp_path,
    )
    module_file, version = where.stdout.split()
    assert Path(module_file).is_relative_to(venv), module_file
    assert version == pyproject()["version"]

    about = _run(bin_dir / "target-azure-eventhubs", "--about", "--format=json", cwd=tmp_path)
    assert about.returncode == 0, about.stderr[-3000:]
    info = json.loads(about.stdout)
    assert info["name"] == "target-azure-eventhubs"
    assert info["version"] == version
    checkout = _run(sys.executable, "-m", PACKAGE, "--about", "--format=json", cwd=ROOT)
    assert info == json.loads(checkout.stdout), "the wheel's --about differs from the checkout's"

    hub_help = _run(bin_dir / "azure-eventhubs-localhub", "--help", cwd=tmp_path)
    assert hub_help.returncode == 0, hub_help.stderr[-3000:]
    assert "--hub NAME[:PARTITIONS]" in hub_help.stdout
