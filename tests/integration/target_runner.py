"""Running the real `target-azure-eventhubs` CLI as a subprocess, as Meltano does."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET = [sys.executable, "-m", "target_azure_eventhubs"]  # as the installed command runs
# The target class's own entry point: no connection started before the target loads.
TARGET_WITHOUT_EARLY_CONNECTION = [sys.executable, "-m", "target_azure_eventhubs.target"]


def singer_lines(messages: list[dict[str, Any] | str]) -> str:
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


def schema(stream: str, properties: dict[str, Any], key_properties: list[str]) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": key_properties,
    }


def record(stream: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": data}


def state(value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "STATE", "value": value}


MEMBERSHIP_PROPERTIES = {
    "profile_id": {"type": "string"},
    "email": {"type": ["string", "null"]},
    "first_name": {"type": ["string", "null"]},
    "last_name": {"type": ["string", "null"]},
    "segment_id": {"type": "string"},
    "status": {"type": "string"},
    "last_qualification_time": {"type": ["string", "null"]},
    "seq": {"type": ["integer", "null"]},
}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def states(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


_SUMMARY_SECONDS = re.compile(r"Summary: .*, \d+ invalid, ([\d.]+) s, ")


def run_seconds(stderr: str) -> float:
    """How long the run took by the target's own Summary line: from the start of the run to
    its end, without the interpreter's start-up (which a loaded machine stretches)."""
    match = _SUMMARY_SECONDS.search(stderr)
    assert match, f"no Summary line in stderr:\n{stderr[-3000:]}"
    return float(match.group(1))


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def run_target(
    tmp_path: Path,
    config: dict[str, Any],
    messages: list[dict[str, Any] | str],
    timeout: float = 120,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> Result:
    path = write_config(tmp_path, config)
    started = time.monotonic()
    proc = subprocess.run(
        [*(command or TARGET), "--config", str(path)],
        input=singer_lines(messages),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


class LiveTarget:
    """A target process fed line by line, whose STATE output is watched as it appears."""

    def __init__(self, tmp_path: Path, config: dict[str, Any]) -> None:
        path = write_config(tmp_path, config)
        self.proc = subprocess.Popen(
            [*TARGET, "--config", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def send(self, messages: list[dict[str, Any] | str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(singer_lines(messages))
        self.proc.stdin.flush()

    def next_state(self, timeout: float) -> dict[str, Any] | None:
        try:
            return json.loads(self.lines.get(timeout=timeout))
        except queue.Empty:
            return None

    def finish(self, timeout: float = 60) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)
