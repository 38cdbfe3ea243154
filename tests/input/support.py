"""Running the installed command on one input, as a user's pipeline would, against the
local hub: what arrived, the STATE lines, the exit code and the error lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eventhubs_localhub import LocalHub

from tests.core.support import HUB, SCHEMA, STREAM, config, lines, row, segments_in_hub

__all__ = ["HUB", "SCHEMA", "STREAM", "Run", "config", "lines", "row", "run", "segments_in_hub"]


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub(hubs={HUB: 2}) as local:
        yield local


@dataclass
class Run:
    code: int
    stdout: bytes
    stderr: str

    @property
    def states(self) -> list[bytes]:
        return [line for line in self.stdout.splitlines() if line.strip()]

    @property
    def errors(self) -> list[str]:
        """The ERROR lines, each without the log prefix."""
        return [
            line.split("| ", 3)[-1].strip()
            for line in self.stderr.splitlines()
            if "| ERROR " in line
        ]

    def assert_one_clear_error(self) -> str:
        assert self.code == 1, self.stderr
        assert "Traceback" not in self.stderr, self.stderr
        assert "please report" not in self.stderr, self.stderr
        assert len(self.errors) == 1, self.stderr
        return self.errors[0]


def run(tmp_path: Path, settings: dict[str, Any], messages: list[Any] | bytes, *args: str) -> Run:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(settings))
    data = messages if isinstance(messages, bytes) else lines(messages).encode()
    done = subprocess.run(
        [sys.executable, "-m", "target_azure_eventhubs", "--config", str(path), *args],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Run(done.returncode, done.stdout, done.stderr.decode(errors="replace"))
