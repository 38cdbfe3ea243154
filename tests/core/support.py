"""The delivery promise, checked at the default settings: a target process fed from a test,
its STATE lines watched as they appear, against the local hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eventhubs_localhub import LocalHub

from tests.changes.support import child_pids

HUB = "profiles"
STREAM = "members"
SCHEMA = {
    "type": "SCHEMA",
    "stream": STREAM,
    "schema": {
        "type": "object",
        "properties": {
            "profile_id": {"type": "string"},
            "email": {"type": "string"},
            "segment_id": {"type": "string"},
            "status": {"type": "string"},
        },
    },
    "key_properties": ["profile_id"],
}
# The sender process is on by default; every promise is checked with it off too.
SENDER_PROCESS = [
    pytest.param(True, id="sender-process"),
    pytest.param(False, id="in-process"),
]


def row(profile: str, segment: str) -> dict[str, Any]:
    """A membership row; the segment id names the row, so an event's memberships tell
    which rows were merged into it."""
    return {
        "type": "RECORD",
        "stream": STREAM,
        "record": {
            "profile_id": profile,
            "email": f"{profile}@example.com",
            "segment_id": segment,
            "status": "realized",
        },
    }


def state_line(raw_value: str) -> str:
    return '{"type": "STATE", "value": ' + raw_value + "}"


def lines(messages: list[dict[str, Any] | str]) -> str:
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


def config(hub: LocalHub, **extra: Any) -> dict[str, Any]:
    """Only what connecting needs: every other setting at its default."""
    return {"connection_string": hub.connection_string(), "eventhub_name": HUB, **extra}


def segments_in_hub(hub: LocalHub) -> set[str]:
    """The segment ids of every event in the hub: the rows that reached it."""
    found: set[str] = set()
    for event in hub.events(HUB):
        found.update(json.loads(event.body)["segmentMembership"]["ups"])
    return found


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Target:
    """The target command, fed by the test; stdout and stderr read as they come."""

    tmp_path: Path
    settings: dict[str, Any]
    read_stdout: bool = True  # False: the test closes the pipe's reading end itself
    proc: subprocess.Popen[bytes] = field(init=False)
    out: list[tuple[float, bytes]] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        path = self.tmp_path / "config.json"
        path.write_text(json.dumps(self.settings))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "target_azure_eventhubs", "--config", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if self.read_stdout:
            threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append((time.monotonic(), line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line.decode(errors="replace"))

    def send(self, messages: list[dict[str, Any] | str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(lines(messages).encode())
        self.proc.stdin.flush()

    def close_input(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def signal(self, signum: int) -> float:
        """Send `signum`; returns when."""
        self.proc.send_signal(signum)
        return time.monotonic()

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the target did not exit within {timeout} s:\n{self.stderr}"
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def states(self) -> list[bytes]:
        return [line.rstrip(b"\n") for _, line in list(self.out) if line.strip()]

    @property
    def stderr(self) -> str:
        return "".join(self.err)[-6000:]

    def children(self) -> list[int]:
        """The pids of this process's children (the sender process)."""
        return child_pids(self.proc.pid)
