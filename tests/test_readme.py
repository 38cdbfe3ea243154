"""The README tells the truth about the settings and about how to run the tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SETTINGS_DOC = ROOT / "docs" / "settings.md"  # the README links to it
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def _cli() -> list[str]:
    beside = Path(sys.executable).parent / "target-azure-eventhubs"
    if beside.exists():
        return [str(beside)]
    if found := shutil.which("target-azure-eventhubs"):
        return [found]
    return [sys.executable, "-m", "target_azure_eventhubs.target"]


def _about_table() -> list[str]:
    out = subprocess.run(
        [*_cli(), "--about", "--format=markdown"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    lines = out.splitlines()
    after = lines[lines.index("## Settings") + 1 :]
    table: list[str] = []
    for line in after:
        if line.startswith("|"):
            table.append(line.rstrip())
        elif table:
            break
    return table


def _readme_table() -> list[str]:
    text = SETTINGS_DOC.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, "settings-table markers missing"
    block = text.split(START, 1)[1].split(END, 1)[0]
    return [line.rstrip() for line in block.strip().splitlines()]


def test_readme_settings_table_matches_about_output():
    about = _about_table()
    assert about, "`--about --format=markdown` printed no settings table"
    assert _readme_table() == about, (
        "docs/settings.md's settings table differs from `target-azure-eventhubs --about "
        "--format=markdown`: run `.venv/bin/python scripts/update_readme_settings.py`"
    )


def test_readme_table_lists_every_setting():
    documented = {line.split("|")[1].strip() for line in _readme_table()[2:]}
    from target_azure_eventhubs.target import TargetAzureEventHubs

    declared = set(TargetAzureEventHubs.config_jsonschema["properties"])
    assert declared <= documented


def _ci_command() -> str:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [
        line.strip()
        for line in lines
        if line.strip()
        and not line.startswith("#")
        and not line.strip().startswith(("set ", "cd ", "apt-get", "sudo "))
    ]
    assert commands, ".ci/run runs no command"
    # The README's command, then the fast tier again on the lowest allowed releases; the
    # SDK's live tests against the local hub run beside them.
    assert any("localhub/scripts/run_sdk_livetests.sh" in c for c in commands), commands
    assert "bash scripts/test_lowest.sh" in commands, commands
    main = commands.index("bash scripts/test.sh")
    assert commands.index("bash scripts/test_lowest.sh") > main, commands
    return commands[main]


def test_readme_test_command_is_what_ci_runs():
    ci = _ci_command()
    assert ci == "bash scripts/test.sh"
    text = README.read_text(encoding="utf-8")
    intro = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(bash scripts/\S+)", intro, flags=re.MULTILINE)
    assert commands[:2] == ["bash scripts/demo.sh", ci]
    workflow = (ROOT / ".github" / "workflows" / "test.yml").read_text(encoding="utf-8")
    assert re.search(rf"^\s+run: {re.escape(ci)}\s*$", workflow, flags=re.MULTILINE)


def test_ci_run_is_strict_bash():
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines


def test_test_script_runs_pytest_verbosely_and_passes_arguments():
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    runs = re.findall(r"^\s*exec \.venv/bin/python -m pytest (.*)$", script, flags=re.MULTILINE)
    assert len(runs) == 2, runs  # the fast tier, then the full one
    for run in runs:
        assert run.startswith("-v -rA ") and run.endswith(' "$@"'), run
        assert "-n " in run, run  # pytest-xdist
    assert '-m "not slow"' in runs[0] and "-m" not in runs[1].split(), runs
    assert "pip install" in script and '-e ".[test]"' in script


def test_both_tiers_are_documented_in_the_readme_and_the_script_help():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("**The tests**", 1)[1].split("\n## ", 1)[0]
    help_text = subprocess.run(
        ["bash", str(ROOT / "scripts" / "test.sh"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    for text in (section, help_text):
        assert "bash scripts/test.sh --fast" in text
        assert "skipped: N (real-namespace tests: M)" in text
        assert "scripts/install_test_services.sh" in text
