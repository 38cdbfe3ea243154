"""A user's path, outside this repository: a new Meltano project adds the loader from the
plugin definition, installs it from the built wheel, configures it with the secret in the
environment, and `meltano run tap-jsonl target-azure-eventhubs` delivers every profile to
a local hub, read back with `target_azure_eventhubs.testing.read_all`.

Uses the demo's Meltano (`meltano>=4.0,<5`, the cached venv of tests/pipeline). The
`meltano add` and `meltano run` output is printed (shown with `-rA`) and kept in the
project's output/ folder.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import time
from pathlib import Path

import pytest
import yaml
from eventhubs_localhub import LocalHubProcess

from target_azure_eventhubs.testing import read_all
from tests.packaging.conftest import DEFINITION, ROOT, Distributions
from tests.pipeline.conftest import MeltanoProject, meltano_env, meltano_executable

pytestmark = pytest.mark.slow

HUB = "profiles"
INPUT = ROOT / "sample_data" / "profiles_segments.jsonl"
LOADER = "target-azure-eventhubs"


def _write_definitions(where: Path, wheel: Path) -> tuple[Path, Path]:
    """The loader's definition installing the wheel (it is not on PyPI yet), and tap-jsonl's
    as this repository's meltano.yml declares it (pinned; Meltano Hub is not reachable)."""
    loader = yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))
    loader["pip_url"] = str(wheel)
    repo_project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    tap = next(p for p in repo_project["plugins"]["extractors"] if p["name"] == "tap-jsonl")
    tap = {k: v for k, v in tap.items() if k != "config"}
    paths = where / "target-azure-eventhubs.yml", where / "tap-jsonl.yml"
    for path, plugin in zip(paths, (loader, tap), strict=True):
        path.write_text(yaml.safe_dump(plugin, sort_keys=False), encoding="utf-8")
    return paths


def _meltano(project: MeltanoProject, *args: str, log: str, **env: str) -> str:
    proc = project.run(*args, env=project.env(**env), log_name=log)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"meltano {' '.join(args)} failed:\n{output[-5000:]}"
    return output


def _expected() -> dict[str, dict]:
    rows = [json.loads(line) for line in INPUT.read_text(encoding="utf-8").splitlines()]
    return {row["profile_id"]: row for row in rows}


def _assert_event_matches(body: dict, row: dict) -> None:
    email = row["email"].strip().lower()
    assert body["identityMap"]["email_lc_sha256"] == [
        {"id": hashlib.sha256(email.encode()).hexdigest()}
    ]
    assert set(body["segmentMembership"]["ups"]) == {s["id"] for s in row["segments"]}


def test_meltano_project_adds_installs_and_runs_the_loader_from_the_wheel(
    distributions: Distributions, tmp_path: Path
):
    timings: dict[str, float] = {"build": distributions.build_seconds}
    started = time.monotonic()
    meltano = meltano_executable()
    timings["meltano venv"] = time.monotonic() - started
    root = tmp_path / "my-project"
    root.mkdir()
    project = MeltanoProject(root, meltano, meltano_env(root), 0.0, tmp_path)
    loader_ref, tap_ref = _write_definitions(tmp_path, distributions.wheel)

    started = time.monotonic()
    _meltano(project, "init", "--no-usage-stats", ".", log="init")
    added = _meltano(
        project, "add", "--plugin-type", "loader", LOADER, "--from-ref", str(loader_ref),
        "--no-install", log="add-loader",
    )  # fmt: skip
    _meltano(
        project, "add", "--plugin-type", "extractor", "tap-jsonl", "--from-ref", str(tap_ref),
        "--no-install", log="add-extractor",
    )  # fmt: skip
    plugins = yaml.safe_load((root / "meltano.yml").read_text(encoding="utf-8"))["plugins"]
    assert set(plugins) == {"loaders", "extractors"}, "no stray plugin type"
    assert plugins["loaders"][0]["pip_url"] == str(distributions.wheel)
    timings["init + add"] = time.monotonic() - started

    started = time.monotonic()
    installed = _meltano(project, "install", log="install")
    timings["install"] = time.monotonic() - started

    (root / "data").mkdir()
    shutil.copy(INPUT, root / "data" / INPUT.name)
    for plugin, setting, value in [
        ("tap-jsonl", "path", "$MELTANO_PROJECT_ROOT/data/*.jsonl"),
        ("tap-jsonl", "stream_name", "profiles"),
        ("tap-jsonl", "primary_keys", '["profile_id"]'),
        (LOADER, "eventhub_name", HUB),
        (LOADER, "identity_fields", '{"email": "email_lc_sha256", "profile_id": "crmId"}'),
    ]:
        _meltano(project, "config", "set", plugin, setting, value, log=f"config-{setting}")

    key = secrets.token_urlsafe(24)
    with LocalHubProcess({HUB: 4}, key=key, extra_args=["--log-level", "WARNING"]) as hub:
        secret_env = {"TARGET_AZURE_EVENTHUBS_CONNECTION_STRING": hub.connection_string()}
        listed = _meltano(project, "config", "list", LOADER, log="config-list", **secret_env)
        started = time.monotonic()
        ran = _meltano(project, "run", "tap-jsonl", LOADER, log="run", **secret_env)
        timings["run"] = time.monotonic() - started
        events = read_all(hub.connection_string(), HUB)

    expected = _expected()
    bodies = [json.loads(event.body) for event in events]
    received = [body["identityMap"]["crmId"][0]["id"] for body in bodies]
    assert len(events) == len(expected) == 150
    assert sorted(received) == sorted(expected), "each profile exactly once"
    assert len({event.message_id for event in events}) == len(events)
    for body, profile_id in zip(bodies, received, strict=True):
        _assert_event_matches(body, expected[profile_id])

    assert "connection_string" in listed and "(redacted)" in listed
    outputs = [added, installed, listed, ran, (root / "meltano.yml").read_text()]
    assert not [text for text in outputs if key in text], "the hub's key was printed"

    print("$ meltano add --plugin-type loader target-azure-eventhubs --from-ref ...")
    print("\n".join(line for line in added.splitlines() if line.strip()))
    print("$ meltano run tap-jsonl target-azure-eventhubs  (selected lines)")
    keep = ("Summary:", "Incremental state", "Block run completed", "Run completed")
    print("\n".join(line for line in ran.splitlines() if any(k in line for k in keep)))
    print(f"read back: {len(events)} events, {len(set(received))} profiles")
    print("seconds: " + ", ".join(f"{name} {value:.1f}" for name, value in timings.items()))
