"""The release workflow publishes on a version tag with PyPI trusted publishing: an
environment, an OIDC token, no stored credential."""

from __future__ import annotations

import yaml

from tests.packaging.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def test_release_builds_and_publishes_on_a_version_tag_with_trusted_publishing():
    text = WORKFLOW.read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    trigger = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert trigger == {"push": {"tags": ["v*"]}}

    build_steps = workflow["jobs"]["build"]["steps"]
    runs = [step.get("run", "") for step in build_steps]
    assert "python -m build" in runs
    assert any(r.startswith("python -m twine check --strict") for r in runs)
    assert any("GITHUB_REF_NAME" in r for r in runs), "the tag must match the version"

    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    uses = [step.get("uses", "") for step in publish["steps"]]
    assert "pypa/gh-action-pypi-publish@release/v1" in uses
    publish_step = next(s for s in publish["steps"] if s.get("uses", "").startswith("pypa/"))
    assert "with" not in publish_step, "no password or token: trusted publishing"
    assert "secrets." not in text
