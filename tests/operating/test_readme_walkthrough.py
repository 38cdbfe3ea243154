"""The change-tracking walk-through (docs/change-tracking.md, with its dry run in
docs/operating.md), run as the docs tell it: every figure they show comes out of these
runs, so the docs cannot drift from what the target reports.

Order, as in the docs: a first run of the sample data on a new store; a dry run of the
second run's input (cust-00007 without one of its memberships); that second run; and the
exit event read back from the hub with the testing helper.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

pytestmark = pytest.mark.slow  # three runs of the target

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
REMOVED = ('"profile_id":"cust-00007"', '"segment_id":"15a228c5')


def readme_block(after: str, doc: str) -> list[str]:
    """The lines of the first fenced block of docs/`doc` after the line containing `after`."""
    lines = (ROOT / "docs" / doc).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    opening = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    closing = next(i for i in range(opening + 1, len(lines)) if lines[i].startswith("```"))
    return lines[opening + 1 : closing]


def shown(line: str) -> str:
    """A doc's output line as the log has it: without the `# ` and the abridged tail."""
    return line.removeprefix("# ").removesuffix(", ...").removesuffix("...")


def messages(stderr: str) -> str:
    return "\n".join(line.split(" | ")[-1] for line in stderr.splitlines())


def test_the_walkthrough_figures_are_what_the_runs_report(tmp_path: Path) -> None:
    full = (SAMPLE / "profiles.singer").read_text(encoding="utf-8")
    cut = "".join(
        line for line in full.splitlines(keepends=True) if not all(p in line for p in REMOVED)
    )
    assert full.count("\n") - cut.count("\n") == 1
    with LocalHub(hubs={"profiles": 4}) as hub:
        local = tmp_path / "hub.json"
        local.write_text(json.dumps({"connection_string": hub.connection_string()}))
        (tmp_path / "dry.json").write_text(json.dumps({"dry_run": True}))
        command = [sys.executable, "-m", "target_azure_eventhubs"]
        for config in (SAMPLE / "config.local.json", SAMPLE / "config.changes.json", local):
            command += ["--config", str(config)]

        def run(text: str, *extra: str) -> str:
            done = subprocess.run(
                [*command, *extra],
                input=text,
                capture_output=True,
                text=True,
                cwd=tmp_path,  # the store is relative to the working directory
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            return messages(done.stderr)

        first = run(full)
        dry = run(cut, "--config", str(tmp_path / "dry.json"))
        second = run(cut)
        [exit_event] = [e for e in hub.events("profiles", "3") if e.sequence_number == 100]

    walkthrough = readme_block("**Walk-through**", "change-tracking.md")
    split = next(i for i, line in enumerate(walkthrough) if line.startswith("grep -v"))
    figures = [(line, first) for line in walkthrough[:split] if line.startswith("# ")]
    figures += [(line, second) for line in walkthrough[split:] if line.startswith("# ")]
    dry_block = readme_block("a dry run of the second run's input", "operating.md")
    figures += [(line, dry) for line in dry_block if re.match(r"(Dry run|Stream|Change)", line)]
    assert len(figures) >= 8
    for line, output in figures:
        expected = shown(line)
        if "store sqlite:////.../" in expected:  # the path is the reader's own
            expected = expected.split("store sqlite:////.../", 1)[1].split(" ", 1)[1]
        assert expected in output, f"the docs show {line!r}; the run reported:\n{output}"

    # The event the docs show, read back: partition and sequence number, and its body.
    readme = (ROOT / "docs" / "change-tracking.md").read_text(encoding="utf-8")
    assert "\npartition 3 #100 id " in readme
    body = json.loads(exit_event.body)
    statuses = {seg: m["status"] for seg, m in body["segmentMembership"]["ups"].items()}
    assert statuses == {
        "b9e70623-3dc4-4049-8667-8113e5c34d95": "existing",
        "15a228c5-1d0c-4343-958f-11d329619b26": "exited",
        "30dbd75f-c8ff-42ef-83d1-7d2da8cb6dde": "existing",
    }
    assert body["identityMap"]["crmId"] == [{"id": "cust-00007"}]
