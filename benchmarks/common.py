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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

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

_FIRST = [
    "Jane",
    "John",
    "Amelia",
    "Oliver",
    "Sofia",
    "Liam",
    "Chloe",
    "Noah",
    "Emma",
    "Lucas",
    "Mia",
    "Ethan",
    "Zoe",
    "Mateo",
    "Hannah",
    "Arjun",
    "Yuki",
    "Fatima",
    "Lars",
    "Ines",
]
_LAST = [
    "Doe",
    "Smith",
    "Garcia",
    "Mueller",
    "Rossi",
    "Kowalski",
    "Nakamura",
    "Okafor",
    "Dubois",
    "Johansson",
    "Patel",
    "Silva",
    "OBrien",
    "Nguyen",
    "Haddad",
    "Schmidt",
]
_CITIES = [
    ("Amsterdam", "NL"),
    ("Berlin", "DE"),
    ("Lisbon", "PT"),
    ("Dublin", "IE"),
    ("Warsaw", "PL"),
    ("Osaka", "JP"),
    ("Lagos", "NG"),
    ("Austin", "US"),
]
_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "shop.example"]
_TIERS = ["bronze", "silver", "gold", "platinum"]
_CHANNELS = ["email", "sms", "push", "none"]
_STATUSES = ["realized", "existing", "existing", "exited", "qualified"]
_SEGMENT_NAMES = [
    "High-value customers",
    "Cart abandoners (7 days)",
    "Newsletter subscribers",
    "Lapsed buyers (90 days)",
    "Loyalty gold tier",
    "Mobile app users",
]


def profile_id(index: int) -> str:
    return f"cust-{index:08d}"


def make_record(index: int, rng: random.Random) -> dict[str, Any]:
    """One membership row of one profile (one row per profile, so one event per record)."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, country = rng.choice(_CITIES)
    segment = rng.randrange(len(_SEGMENT_NAMES))
    return {
        "profile_id": profile_id(index),
        "email": f"{first}.{last}{index}@{rng.choice(_DOMAINS)}",
        "phone": f"+44 7700 {rng.randrange(1_000_000):06d}",
        "first_name": first,
        "last_name": last,
        "birth_date": f"{rng.randrange(1950, 2005)}-{rng.randrange(1, 13):02d}-"
        f"{rng.randrange(1, 29):02d}",
        "city": city,
        "country": country,
        "loyalty_tier": rng.choice(_TIERS),
        "preferred_channel": rng.choice(_CHANNELS),
        "segment_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "status": rng.choice(_STATUSES),
        "last_qualification_time": f"2024-{rng.randrange(1, 13):02d}-"
        f"{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:"
        f"{rng.randrange(60):02d}Z",
        "segment_name": _SEGMENT_NAMES[segment],
    }


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


def start_hub(partitions: int = PARTITIONS) -> Any:
    """A fresh local hub in its own process (hub `profiles`)."""
    from target_azure_eventhubs.localhub.hub import LocalHubProcess

    return LocalHubProcess(hubs={HUB: partitions}, extra_args=["--log-level", "WARNING"]).start()


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
    """Events per partition from `get_partition_properties` (official SDK), no read-back.

    One client per partition, in parallel: each SDK management call costs ~0.5 s locally.
    """
    from azure.eventhub import EventHubConsumerClient

    def client() -> Any:
        return EventHubConsumerClient.from_connection_string(
            connection_string, consumer_group="$Default", eventhub_name=HUB
        )

    with client() as first:
        partition_ids = first.get_partition_ids()
    props: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def run(pid: str) -> None:
        try:
            with client() as c:
                props[pid] = c.get_partition_properties(pid)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(pid,)) for pid in partition_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    counts: dict[str, int] = {}
    last: int | None = None
    for pid in partition_ids:
        p = props[pid]
        if p["is_empty"]:
            counts[pid] = 0
            continue
        counts[pid] = int(p["last_enqueued_sequence_number"]) + 1
        when = p.get("last_enqueued_time_utc")
        if when is not None:
            ms = int(when.timestamp() * 1000)
            last = ms if last is None else max(last, ms)
    return HubContents(counts, last)


@dataclass
class ReadBack:
    partition_id: str
    body: bytes
    message_id: str | None
    enqueued_ms: int
    sequence_number: int


def read_partition(
    connection_string: str,
    partition_id: str,
    limit: int,
    timeout: float = 120.0,
    on_event: Callable[[ReadBack], None] | None = None,
) -> list[ReadBack]:
    """The first `limit` events of one partition, read with `EventHubConsumerClient`."""
    from azure.eventhub import EventHubConsumerClient

    got: list[ReadBack] = []
    done = threading.Event()
    client = EventHubConsumerClient.from_connection_string(
        connection_string, consumer_group="$Default", eventhub_name=HUB
    )

    def on_batch(_context: Any, events: list[Any]) -> None:
        for event in events:
            if len(got) >= limit:
                break
            body = event.body
            body = body if isinstance(body, bytes) else b"".join(body)
            mid = event.message_id
            item = ReadBack(
                partition_id,
                body,
                mid.decode() if isinstance(mid, bytes) else (None if mid is None else str(mid)),
                int(event.enqueued_time.timestamp() * 1000),
                event.sequence_number,
            )
            got.append(item)
            if on_event is not None:
                on_event(item)
        if len(got) >= limit:
            done.set()

    if limit <= 0:
        return got
    worker = threading.Thread(
        target=client.receive_batch,
        kwargs={
            "on_event_batch": on_batch,
            "partition_id": partition_id,
            "starting_position": "-1",
            "max_batch_size": 1000,
            "max_wait_time": 0.5,
        },
        daemon=True,
    )
    worker.start()
    done.wait(timeout)
    client.close()
    worker.join(10)
    if len(got) < limit:
        raise TimeoutError(f"partition {partition_id}: read {len(got)} of {limit} events")
    return got


def read_events(
    connection_string: str, per_partition: dict[str, int], timeout: float = 300.0
) -> list[ReadBack]:
    """Read the first per_partition[pid] events of each partition, partitions in parallel."""
    results: dict[str, list[ReadBack]] = {}
    errors: list[BaseException] = []

    def run(pid: str, limit: int) -> None:
        try:
            results[pid] = read_partition(connection_string, pid, limit, timeout)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in per_partition.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [e for pid in sorted(results) for e in results[pid]]


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
