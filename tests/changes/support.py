"""What the change-tracking tests share: the input they send, the target's settings, and
reading back the hub, the change store and the run's output."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import signal
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventhubs_localhub import LocalHub
from eventhubs_localhub.hub import StoredEvent

from target_azure_eventhubs.delivery.partitioning import partition_for_key
from target_azure_eventhubs.testing import ReadEvent, read_all
from tests.integration.target_runner import record, schema, state

STREAM = "audiences"
HUB = "profiles"
PARTITIONS = 4
#: The PostgreSQL password of the change-store tests: grepped for in every output.
PG_PASSWORD = "ChangeStore-Secret-w8Qz3Lp"
T_A = "2025-05-04T10:00:00Z"  # the input's time of segment A

PROPERTIES: dict[str, Any] = {
    "profile_id": {"type": "string"},
    "email": {"type": ["string", "null"]},
    "first_name": {"type": ["string", "null"]},
    "segment_id": {"type": ["string", "null"]},
    "status": {"type": ["string", "null"]},
    "last_qualification_time": {"type": ["string", "null"]},
    "segments": {},
    "segmentMembership": {},
    "identityMap": {},
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def email_of(profile: str) -> str:
    return f"{profile}@example.com"


def hashed_email(profile: str) -> dict[str, list[str]]:
    return {"email_lc_sha256": [sha(email_of(profile))]}


def utc_now() -> str:
    """The target's clock, to the second (as it writes run times)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Input ------------------------------------------------------------------------------------


def stream_schema(stream: str = STREAM) -> dict[str, Any]:
    return schema(stream, PROPERTIES, ["profile_id"])


def row(
    profile: str,
    segment: str,
    *,
    status: str | None = None,
    time: str | None = None,
    first_name: str | None = None,
    email: str | None = None,
    stream: str = STREAM,
) -> dict[str, Any]:
    """One membership row; no status unless given (change tracking derives it)."""
    data: dict[str, Any] = {
        "profile_id": profile,
        "email": email or email_of(profile),
        "first_name": first_name or profile.upper(),
        "segment_id": segment,
    }
    if status is not None:
        data["status"] = status
    if time is not None:
        data["last_qualification_time"] = time
    return record(stream, data)


def snapshot(
    audience: dict[str, list[str]], *, times: dict[str, str] | None = None, bookmark: Any = 1
) -> list[dict[str, Any]]:
    """A schema, one row per (profile, segment) without status, then a STATE. ``times``:
    segment -> the input's lastQualificationTime for that segment."""
    messages: list[dict[str, Any]] = [stream_schema()]
    for profile, segments in audience.items():
        messages += [row(profile, seg, time=(times or {}).get(seg)) for seg in segments]
    messages.append(state({"bookmarks": {STREAM: {"run": bookmark}}}))
    return messages


def profile_record(profile: str, segments: list[str], *, stream: str = STREAM) -> dict:
    """One record holding all of a profile's memberships (a `segments` list, A at the
    input's time ``T_A``, the others at the run's): no drain can split a profile."""
    listed: list[Any] = [
        {"id": s, "lastQualificationTime": T_A} if s == "A" else s for s in segments
    ]
    data = {"profile_id": profile, "email": email_of(profile), "first_name": profile.upper()}
    return record(stream, {**data, "segments": listed})


def target_config(conn_str: str, store_url: str, **extra: Any) -> dict[str, Any]:
    """Change tracking on, CI-sized timeouts. With max_latency_ms 1000, input written at
    once is drained at its end (or at a STATE), never between two rows of a profile; tests
    that pace their input set a shorter one and send a profile as one record."""
    return {
        "connection_string": conn_str,
        "eventhub_name": HUB,
        "change_tracking": True,
        "change_store": store_url,
        "max_latency_ms": 1000,
        "send_timeout_seconds": 3,
        "retry_backoff_seconds": 0.2,
        "retry_backoff_max_seconds": 1,
        "max_retries": 3,
        "shutdown_timeout_seconds": 5,
        **extra,
    }


# The hub ----------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _as_read(event: StoredEvent) -> ReadEvent:
    return ReadEvent(
        partition_id=event.partition_id,
        body=event.body,
        properties={k: _text(v) for k, v in event.properties.items()},
        message_id=None if event.message_id is None else str(event.message_id),
        content_type=event.content_type,
        partition_key=event.partition_key,
        sequence_number=event.sequence_number,
        offset=str(event.offset),
        enqueued_time=None,
    )


class HubLog:
    """What a hub received, one run at a time.

    `new()` returns the events stored since its last call: from the hub's own storage when
    it runs in this process (instant), else read with the official consumer. `verify()`
    reads the whole hub with the official consumer and checks it holds exactly the events
    seen run by run.
    """

    def __init__(self, conn_str: str, hub: LocalHub | None = None) -> None:
        self.conn_str = conn_str
        self.hub = hub
        self._last: dict[str, int | None] = {}
        self.all: list[ReadEvent] = []

    def new(self) -> list[ReadEvent]:
        if self.hub is not None:
            since = {pid: -1 if seq is None else seq for pid, seq in self._last.items()}
            events = [
                _as_read(e)
                for e in self.hub.events(HUB)
                if e.sequence_number > since.get(e.partition_id, -1)
            ]
        else:
            events = read_all(self.conn_str, HUB, timeout=30, after=self._last)
        for event in events:
            self._last[event.partition_id] = event.sequence_number
        self.all += events
        return events

    def verify(self) -> list[ReadEvent]:
        """Everything, as the official consumer reads it; the same as seen run by run."""
        self.new()
        events = read_all(self.conn_str, HUB, timeout=30)

        def seen(items: list[ReadEvent]) -> list[tuple]:
            return sorted(
                (e.partition_id, e.sequence_number, e.message_id, e.body, e.properties)
                for e in items
            )

        assert seen(events) == seen(self.all)
        return events


def body(event: ReadEvent) -> dict[str, Any]:
    return json.loads(event.body)


def statuses(event: ReadEvent) -> dict[str, tuple[str, str | None]]:
    """segment -> (status, lastQualificationTime) of an event."""
    members = body(event)["segmentMembership"]["ups"]
    return {seg: (m["status"], m.get("lastQualificationTime")) for seg, m in members.items()}


_KNOWN_EMAILS = {
    sha(email): profile
    for profile, email in [(f"p{n}", email_of(f"p{n}")) for n in range(1000)]
    + [("p2", "p2.new@example.com")]
}


def profile_of(event: ReadEvent) -> str:
    """The profile an event is about, from its hashed email (events carry no profile id:
    the target sends each to its profile's partition directly)."""
    [entry] = body(event)["identityMap"]["email_lc_sha256"]
    return _KNOWN_EMAILS[entry["id"]]


def by_profile(events: list[ReadEvent]) -> dict[str, ReadEvent]:
    """The events keyed by profile; one event a profile."""
    keyed = {profile_of(e): e for e in events}
    assert len(keyed) == len(events), sorted(profile_of(e) for e in events)
    return keyed


def check_envelope(events: list[ReadEvent], stream: str = STREAM) -> None:
    """What every event carries: its message id (from the body), its stream and segments,
    its profile's partition (the profile id is the partition key), no raw email."""
    for event in events:
        assert event.message_id == hashlib.sha256(event.body).hexdigest()[:32]
        assert event.properties["stream"] == stream
        assert event.partition_id == str(partition_for_key(profile_of(event), PARTITIONS))
        assert b"@example.com" not in event.body
        segments = ",".join(body(event)["segmentMembership"]["ups"])
        assert event.properties["segment_ids"] == segments


# The run's output -------------------------------------------------------------------------

_CHANGES = re.compile(
    r"Changes in stream '(?P<stream>[^']+)': (?P<events>\d+) events \(memberships: "
    r"(?P<realized>\d+) realized, (?P<existing>\d+) existing, (?P<exited>\d+) exited\), "
    r"(?P<unchanged>\d+) profiles unchanged"
)


def change_counts(stderr: str, stream: str = STREAM) -> dict[str, int]:
    """The summary's change counts of ``stream``."""
    for match in _CHANGES.finditer(stderr):
        if match["stream"] == stream:
            return {k: int(v) for k, v in match.groupdict().items() if k != "stream"}
    raise AssertionError(f"no change summary for stream {stream!r} in:\n{stderr[-3000:]}")


def counts(events: int, realized: int, existing: int, exited: int, unchanged: int) -> dict:
    return {
        "events": events,
        "realized": realized,
        "existing": existing,
        "exited": exited,
        "unchanged": unchanged,
    }


def assert_no_password(*texts: str, password: str = PG_PASSWORD) -> None:
    for index, text in enumerate(texts):
        for part in (password, password[:12], password[-12:]):
            assert part not in text, f"output {index} holds (part of) the store's password"


# The change store -------------------------------------------------------------------------

Rows = dict[str, tuple[dict[str, list[str]], dict[str, str]]]


@dataclass
class StoreView:
    """A change store as the test reads it directly (not through the target's code)."""

    url: str
    sqlite_file: Path | None = None

    @property
    def kind(self) -> str:
        return "sqlite" if self.sqlite_file else "postgres"

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.sqlite_file is not None:
            if not self.sqlite_file.exists():
                return []
            with contextlib.closing(sqlite3.connect(self.sqlite_file, timeout=30)) as db:
                return db.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as db:
            return db.execute(sql, params).fetchall()

    def rows(self, stream: str = STREAM) -> Rows:
        """profile -> (identity map, memberships) of the stream."""
        found = self._query(
            "SELECT profile_key, identity_map, memberships, membership_count "
            "FROM change_tracking_profiles WHERE stream = %s",
            (stream,),
        )
        out: Rows = {}
        for key, ids, members_text, count in found:
            members = json.loads(members_text)
            assert count == len(members)
            out[key] = (json.loads(ids), members)
        return out

    def rows_digests(self, stream: str = STREAM) -> dict[str, str | None]:
        """profile -> the digest of the rows that made its state (None: compared again)."""
        found = self._query(
            "SELECT profile_key, rows_digest FROM change_tracking_profiles WHERE stream = %s",
            (stream,),
        )
        return dict(found)

    def execute(self, *statements: str) -> None:
        """Change the store behind the target's back (one transaction)."""
        if self.sqlite_file is not None:
            with contextlib.closing(sqlite3.connect(self.sqlite_file, timeout=30)) as db, db:
                for statement in statements:
                    db.execute(statement)
            return
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as db:
            for statement in statements:
                db.execute(statement)

    def memberships(self, stream: str = STREAM) -> dict[str, dict[str, str]]:
        return {key: members for key, (_, members) in self.rows(stream).items()}

    def raw_text(self) -> bytes:
        """Everything the store holds, to grep for personal data."""
        if self.sqlite_file is not None:
            files = [self.sqlite_file, Path(f"{self.sqlite_file}-wal")]
            return b"".join(f.read_bytes() for f in files if f.exists())
        rows = self._query("SELECT t::text FROM change_tracking_profiles AS t")
        return "\n".join(r[0] for r in rows).encode()


# Processes --------------------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Running (an exited process not yet reaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def kill_with_children(pid: int) -> None:
    """SIGKILL a target and its sender process (which runs in a session of its own)."""
    children = child_pids(pid)
    for victim in [pid, *children]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
