"""A config from a pipe (`--config <(...)`, `--config /dev/stdin` with `--input FILE`) is
read once and works: the command's early start and singer-sdk read the same settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.input.support import SCHEMA, config, lines, row, segments_in_hub

pytestmark = pytest.mark.slow


def test_config_from_process_substitution(tmp_path: Path, hub: LocalHub) -> None:
    source = tmp_path / "input.jsonl"
    source.write_text(lines([SCHEMA, row("p1", "s1"), '{"type":"STATE","value":{"b":1}}']))
    done = subprocess.run(
        [
            "bash",
            "-c",
            '"$0" -m target_azure_eventhubs --config <(printf %s "$1") < "$2"',
            sys.executable,
            json.dumps(config(hub)),
            str(source),
        ],
        capture_output=True,
        timeout=120,
        check=False,
        env=os.environ,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.splitlines() == [b'{"b":1}']
    assert segments_in_hub(hub) == {"s1"}


def test_config_from_stdin_with_input_from_a_file(tmp_path: Path, hub: LocalHub) -> None:
    source = tmp_path / "input.jsonl"
    source.write_text(lines([SCHEMA, row("p1", "s1"), '{"type":"STATE","value":{"b":1}}']))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "target_azure_eventhubs",
            "--config",
            "/dev/stdin",
            "--input",
            str(source),
        ],
        input=json.dumps(config(hub)).encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.splitlines() == [b'{"b":1}']
    assert segments_in_hub(hub) == {"s1"}
