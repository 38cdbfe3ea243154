"""Shared pieces of the benchmarks: deterministic input, a fresh local hub, counting and
reading back what a hub holds, and running a child process with its own resource usage.

Stdlib + the project's own dependencies only (azure-eventhub, orjson).
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from target_azure_eventhubs.testing import ReadEvent, partition_ends, profiles, read_ranges

STREAM = "profiles"
HUB = "profiles"
PARTITIONS = 4
STATE_EVERY = 1000

SCHEMA_MESSAGE: dict[str, Any] = {
    "type": "SCHEMA",
    "stream": STREAM,
    "schema": {
        "type": "object",
        "properties": {
            "profile_id": {"type": "string"},
            "email": {"type": ["string", "null"]},
            "phone": {"type": ["string", "null"]},
            "first_name": {"type": ["string", "null"]},
            "last_name": {"type": ["string", "null"]},
            "birth_date": {"type": ["string", "null"], "format": "date"},
            "city": {"type": ["string", "null"]},
            "country": {"type": ["string", "null"]},
            "loyalty_tier": {"type": ["string", "null"]},
            "preferred_channel": {"type": ["string", "null"]},
            "segment_id": {"type": ["string", "null"]},
            "status": {"type": ["string", "null"]},
            "last_qualification_time": {"type": ["string", "null"], "format": "date-time"},
            "segment_name": {"type": ["string", "null"]},
        },
        "required": ["profile_id"],
    },
    "key_properties": ["profile_id"],
}

# Target settings used by every case: the profile id becomes the `crmId` identity (so a
# consumer can tell which record an event came from), two hashed identities, and enough
# attributes for an event body of about 500 bytes (`preferred_channel` stays unmapped:
# read and validated, not sent).
CONTENT_CONFIG: dict[str, Any] = {
    "identity_fields": {
        "profile_id": "crmId",
        "email": "email_lc_sha256",
        "phone": "phone_sha256",
    },
    "attribute_fields": {
        "first_name": "person.name.firstName",
        "last_name": "person.name.lastName",
        "birth_date": "person.birthDate",
        "city": "homeAddress.city",
        "country": "homeAddress.countryCode",
        "loyalty_tier": "loyalty.tier",
    },
}


def profile_id(index: int) -> str:
    return f"cust-{index:08d}"


def make_record(index: int, rng: random.Random) -> dict[str, Any]:
    """One membership row of one profile (one row per profile, so one event per record)."""
    return profiles.wide_row(index, rng, profile_id(index))


def singer_lines(records: int, seed: int = 20240517) -> Iterator[tuple[int | None, bytes]]:
    """(record index or None, line) for SCHEMA, `records` RECORDs and a STATE every 1000."""
    rng = random.Random(seed)
    yield None, orjson.dumps(SCHEMA_MESSAGE) + b"\n"
    for i in range(records):
        message = {"type": "RECORD", "stream": STREAM, "record": make_record(i, rng)}
        yield i, orjson.dumps(message) + b"\n"
        if (i + 1) % STATE_EVERY == 0 or i + 1 == records:
            state = {"type": "STATE", "value": {"bookmarks": {STREAM: {"row": i + 1}}}}
            yield None, orjson.dumps(state) + b"\n"


def write_input(path: Path, records: int) -> int:
    """Write the Singer input for `records` rows to `path`; returns its size in bytes."""
    size = 0
    with path.open("wb") as out:
        buffer: list[bytes] = []
        for _, line in singer_lines(records):
            buffer.append(line)
            if len(buffer) >= 4096:
                chunk = b"".join(buffer)
                out.write(chunk)
                size += len(chunk)
                buffer.clear()
        chunk = b"".join(buffer)
        out.write(chunk)
        size += len(chunk)
    return size


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as source:
        for line in source:
            message = orjson.loads(line)
            if message["type"] == "RECORD":
                yield message["record"]


# ------------------------------------------------------------------------------- the hub


def start_hub(partitions: int = PARTITIONS, websockets: bool = False) -> Any:
    """A fresh local hub in its own process (hub `profiles`); `websockets`: with a plain
    ws:// listener too (`hub.ws_settings()`)."""
    from eventhubs_localhub.hub import LocalHubProcess

    return LocalHubProcess(
        hubs={HUB: partitions},
        extra_args=["--log-level", "WARNING"],
        ws_port=0 if websockets else None,
    ).start()


def stop_hub(hub: Any) -> None:
    if hub.process is not None and hub.process.poll() is None:
        try:
            hub.terminate(timeout=10)
        except Exception:
            hub.kill()


@dataclass
class HubContents:
    per_partition: dict[str, int]
    last_enqueued_ms: int | None

    @property
    def total(self) -> int:
        return sum(self.per_partition.values())


def hub_contents(connection_string: str) -> HubContents:
    """Events per partition from `get_partition_properties` (official SDK), no read-back."""
    ends = partition_ends(connection_string, HUB)
    times = [end.last_enqueued_ms for end in ends.values() if end.last_enqueued_ms is not None]
    return HubContents({pid: end.count for pid, end in ends.items()}, max(times, default=None))


def read_events(
    connection_string: str, ranges: dict[str, tuple[int, int]], timeout: float = 300.0
) -> list[ReadEvent]:
    """Events `first`..`last` (sequence numbers) of each partition, partitions in parallel."""
    return read_ranges(connection_string, HUB, ranges, timeout=timeout)


# ------------------------------------------------------------------------ child processes


@dataclass
class ChildResult:
    returncode: int
    wall_seconds: float
    cpu_seconds: float
    user_seconds: float
    system_seconds: float
    max_rss_mb: float
    stdout_lines: list[bytes] = field(default_factory=list)
    started_at: float = 0.0  # time.time() when spawned


def run_child(
    command: list[str],
    stdin: IO[bytes] | int | None,
    stderr_path: Path,
    env: dict[str, str] | None = None,
    feed: Callable[[IO[bytes]], None] | None = None,
) -> ChildResult:
    """Run `command`, collect its stdout lines, and measure that child alone.

    `os.wait4` returns the child's own rusage (CPU time and `ru_maxrss`, KiB on Linux), so
    other children of this process (the hub, consumers) do not pollute the figures. With
    `feed`, stdin is a pipe and `feed(pipe)` runs in a thread (it must close the pipe).
    """
    lines: list[bytes] = []
    with stderr_path.open("wb") as err:
        started_at = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if feed is not None else stdin,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            bufsize=0,
        )
        feeder = None
        if feed is not None:
            assert proc.stdin is not None
            feeder = threading.Thread(target=feed, args=(proc.stdin,), daemon=True)
            feeder.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if feeder is not None:
            feeder.join(5)
    return ChildResult(
        returncode=proc.returncode,
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        user_seconds=usage.ru_utime,
        system_seconds=usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,
        stdout_lines=lines,
        started_at=started_at,
    )


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a running process from /proc/<pid>/stat (for the hub)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
