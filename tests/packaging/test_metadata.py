"""The package's metadata says one thing everywhere: one version (pyproject.toml, read at
run time through the installed distribution's metadata), one list of Python versions
(classifiers, `--about`, the CI matrix), the license text it declares, a changelog entry
for the version."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import subprocess
import sys

import yaml

import target_azure_eventhubs
from tests.packaging.conftest import ROOT, pyproject
from tests.pipeline.conftest import MELTANO_SPEC

# SHA-256 of the official text, https://www.apache.org/licenses/LICENSE-2.0.txt
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def _command(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "target_azure_eventhubs", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def _about() -> dict:
    return json.loads(_command("--about", "--format=json"))


def _classifier_versions() -> list[str]:
    """The `Programming Language :: Python :: 3.x` classifiers' versions, oldest first."""
    found = [
        match.group(1)
        for c in pyproject()["classifiers"]
        if (match := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))
    ]
    return sorted(found, key=lambda v: int(v.split(".")[1]))


def test_one_version_from_pyproject_to_version_and_about():
    version = pyproject()["version"]
    assert importlib.metadata.version("target-azure-eventhubs") == version
    assert target_azure_eventhubs.__version__ == version
    assert _command("--version").startswith(f"target-azure-eventhubs v{version}, ")
    assert _about()["version"] == version


def test_python_versions_agree_in_classifiers_about_and_ci_matrix():
    classifiers = set(_classifier_versions())
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())
    matrix = workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    assert classifiers == {"3.11", "3.12", "3.13"}
    assert set(matrix) == classifiers
    assert set(_about()["supported_python_versions"]) == classifiers
    assert pyproject()["requires-python"] == f">={_classifier_versions()[0]}"


def test_license_file_is_the_apache_2_0_text_pyproject_declares():
    assert pyproject()["license"] == "Apache-2.0"
    assert pyproject()["license-files"] == ["LICENSE"]
    digest = hashlib.sha256((ROOT / "LICENSE").read_bytes()).hexdigest()
    assert digest == APACHE_2_0_SHA256


def test_changelog_has_unreleased_and_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    version = re.escape(pyproject()["version"])
    assert re.search(r"^## \[Unreleased\]$", text, flags=re.MULTILINE)
    assert re.search(rf"^## \[{version}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, flags=re.MULTILINE)
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.MULTILINE)
    links = re.findall(r"^\[([^\]]+)\]: https://", text, flags=re.MULTILINE)
    assert headings == links, "every release heading needs its link at the end"


def test_readme_compatibility_line_matches_pyproject_and_meltano_pin():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    line = text.split("**Compatibility:**", 1)[1].split("\n\n", 1)[0].replace("\n", " ")
    *older, newest = _classifier_versions()
    assert f"Python {', '.join(older)} and {newest};" in line
    for dependency in pyproject()["dependencies"]:
        name, _, spec = dependency.partition(">")
        if name in {"singer-sdk", "azure-eventhub"}:
            assert f"{name} " in line and f"(`>{spec}`)" in line, (name, line)
    assert f"Meltano 4 (`{MELTANO_SPEC.removeprefix('meltano')}`" in line
