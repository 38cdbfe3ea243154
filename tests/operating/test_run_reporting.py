"""While and after a run: progress lines, Singer metrics, the summary, and dry runs.

Everything through the real command into the local hub; the hub's contents, stdout (STATE)
and the change store are what the assertions compare against.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

from eventhubs_localhub import LocalHub

from target_azure_eventhubs.testing import read_all
from tests.integration.target_runner import LiveTarget, record, run_target, schema, state
from tests.waiting import wait_until

STREAM = "members"
PROPERTIES = {
    "profile_id": {"type": "string"},
    "email": {"type": ["string", "null"]},
    "segment_id": {"type": ["string", "null"]},
    "status": {"type": ["string", "null"]},
}
_PROGRESS = re.compile(
    r"Progress: ([\d,]+) records read \(([\d,]+)/s\), ([\d,]+) events accepted, ([\d,]+) in "
    r"flight, ([\d.,]+) MB sent, (\d+) retries \((\d+) throttled\), oldest unaccepted "
    r"([\d.]+) s"
)


def config(hub: LocalHub, **extra: object) -> dict[str, object]:
    return {
        "connection_string": hub.connection_string(),
        "eventhub_name": "profiles",
        "identity_fields": {"email": "email_lc_sha256", "profile_id": "crmId"},
        "max_latency_ms": 100,
        "send_timeout_seconds": 4,
        "retry_backoff_seconds": 0.2,
        **extra,
    }


def rows(members: list[tuple[str, str]], status: str | None = "realized") -> list:
    messages: list = [schema(STREAM, PROPERTIES, ["profile_id"])]
    for pid, seg in members:
        row = {"profile_id": pid, "email": f"{pid}@Example.com", "segment_id": seg}
        if status is not None:
            row["status"] = status
        messages.append(record(STREAM, row))
    return [*messages, state({"done": len(members)})]


def metrics(stderr: str) -> list[dict]:
    return [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in stderr.splitlines()
        if "METRIC: " in line
    ]


def total(points: list[dict], name: str, **tags: object) -> int:
    return sum(
        p["value"]
        for p in points
        if p["metric"] == name and all(p["tags"].get(k) == v for k, v in tags.items())
    )


def test_progress_lines_and_metrics_while_input_trickles(tmp_path: Path):
    members = [(f"p{i:03d}", f"s{i % 3}") for i in range(120)]
    messages = rows(members)
    with LocalHub(hubs={"profiles": 4}) as hub:
        target = LiveTarget(tmp_path, config(hub, progress_interval_seconds=0.5))
        # The input comes in 5 parts, each after a Progress line: the run has at least 5.
        for start in range(0, len(messages), 25):
            lines = len(_PROGRESS.findall(target.stderr))
            target.send(messages[start : start + 25])
            assert wait_until(lambda n=lines: len(_PROGRESS.findall(target.stderr)) > n, 30), (
                target.stderr[-3000:]
            )
        assert target.finish(60) == 0, target.stderr[-3000:]
        events = read_all(hub.connection_string(), "profiles")
    stderr = target.stderr
    progress = [
        tuple(int(g.replace(",", "").split(".")[0]) for g in m.groups())
        for m in _PROGRESS.finditer(stderr)
    ]
    assert len(progress) >= 5, stderr[-3000:]
    read = [p[0] for p in progress]
    assert read == sorted(read) and read[-1] <= 120 and read[0] < 120
    accepted = [p[2] for p in progress]
    assert accepted == sorted(accepted) and accepted[-1] <= len(events)
    assert len(events) == 120
    points = metrics(stderr)
    assert total(points, "record_count", stream=STREAM) == 120
    assert total(points, "events_accepted", eventhub="profiles") == 120
    body_bytes = total(points, "bytes_accepted", eventhub="profiles")
    assert body_bytes > sum(len(e.body) for e in events)  # AMQP-encoded, bodies included
    batches = [p for p in points if p["metric"] == "batch_send_duration"]
    assert batches and all(p["type"] == "timer" and p["value"] >= 0 for p in batches)
    assert sum(p["tags"]["events"] for p in batches) == 120
    assert {p["tags"]["partition"] for p in batches} <= {"0", "1", "2", "3"}
    assert "Summary: 120 records read, 120 events sent" in stderr
    assert stderr.rstrip().splitlines()[-1].endswith("completed") or "; completed" in stderr


def test_progress_off_logs_no_progress_line(tmp_path: Path):
    with LocalHub(hubs={"profiles": 2}) as hub:
        result = run_target(tmp_path, config(hub, progress_interval_seconds=0), rows([("a", "s1")]))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Progress:" not in result.stderr
    assert total(metrics(result.stderr), "events_accepted", eventhub="profiles") == 1


def test_throttled_retries_are_counted_in_metrics_and_summary(tmp_path: Path):
    with LocalHub(hubs={"profiles": 1}) as hub:
        hub.faults.reject_next(2)  # two transfers answered server-busy, then accepted
        result = run_target(tmp_path, config(hub), rows([("a", "s1"), ("b", "s1")]), timeout=120)
        events = read_all(hub.connection_string(), "profiles")
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(events) == 2
    summary = re.search(r"Summary: .* (\d+) retries \((\d+) throttled\)", result.stderr)
    assert summary and int(summary.group(1)) == int(summary.group(2)) >= 1
    points = metrics(result.stderr)
    assert total(points, "send_retries") == int(summary.group(1))
    assert total(points, "throttled_sends") == int(summary.group(2))


def test_summary_counts_the_record_that_stopped_the_run(tmp_path: Path):
    messages = rows([("a", "s1"), ("b", "s1")])
    messages.insert(
        2,
        record(
            STREAM, {"profile_id": "bad", "email": "x@y.z", "segment_id": "s1", "status": "maybe"}
        ),
    )
    with LocalHub(hubs={"profiles": 2}) as hub:
        result = run_target(tmp_path, config(hub), messages)
        events = read_all(hub.connection_string(), "profiles")
    assert result.returncode == 1
    assert [json.loads(e.body)["identityMap"]["crmId"][0]["id"] for e in events] == ["a"]
    assert re.search(
        r"Summary: 2 records read, 1 events sent .*, 1 invalid, .*; stopped: an invalid record",
        result.stderr,
    ), result.stderr[-2000:]


def store_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT stream, profile_key, identity_map, memberships FROM change_tracking_profiles "
            "ORDER BY profile_key"
        ).fetchall()


def test_dry_run_sends_nothing_changes_no_store_writes_no_state(tmp_path: Path):
    store = tmp_path / "store" / "changes.sqlite"
    tracking = {
        "change_tracking": True,
        "snapshot_end": "end_of_input",
        "change_store": f"sqlite:///{store}",
    }
    first = [("a", "s1"), ("a", "s2"), ("b", "s1"), ("c", "s1")]
    second = [("a", "s1"), ("b", "s1"), ("b", "s3"), ("d", "s1")]  # a leaves s2, c goes
    with LocalHub(hubs={"profiles": 2}) as hub:
        real = run_target(tmp_path, config(hub, **tracking), rows(first, status=None))
        assert real.returncode == 0, real.stderr[-2000:]
        before_events = read_all(hub.connection_string(), "profiles")
        before_store = store_rows(store)
        before_bytes = store.read_bytes()
        dry = run_target(tmp_path, config(hub, dry_run=True, **tracking), rows(second, status=None))
        after_events = read_all(hub.connection_string(), "profiles")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert dry.stdout == ""  # no STATE: Meltano keeps its bookmark
    assert len(after_events) == len(before_events) == 3
    assert store_rows(store) == before_store and store.read_bytes() == before_bytes
    # Events: b joins s3 (s1 existing), d is new (s1), a's row holds only s1 so a is
    # unchanged until the end, where a's exit event says s2 exited and s1 existing, and
    # c's that s1 exited: 2 realized, 2 existing, 2 exited in 4 events; a unchanged.
    assert (
        "Dry run, stream 'members': 4 records read, 4 events would be sent (memberships: "
        "2 realized, 2 existing, 2 exited), 1 profiles unchanged, 0 invalid records"
    ) in dry.stderr, dry.stderr[-3000:]
    shown = dry.stderr.split("Dry run, event 1 of 3 shown:\n", 1)[1]
    first_event = json.loads(shown.split("\n20", 1)[0])  # up to the next log line
    assert first_event["identityMap"]["email_lc_sha256"][0]["id"] in {
        hashlib.sha256(f"{p}@example.com".encode()).hexdigest() for p in "abd"
    }
    assert "@Example.com" not in dry.stderr and "@example.com" not in dry.stderr
    assert "nothing was sent, no store was changed, no STATE was written" in dry.stderr


def test_dry_run_without_a_store_creates_none_and_connects_nowhere(tmp_path: Path):
    store = tmp_path / "never" / "changes.sqlite"
    cfg = {
        "connection_string": "Endpoint=sb://127.0.0.1:9;SharedAccessKeyName=k;"
        "SharedAccessKey=never-used;UseDevelopmentEmulator=true",
        "eventhub_name": "profiles",
        "dry_run": True,
        "change_tracking": True,
        "change_store": f"sqlite:///{store}",
    }
    result = run_target(tmp_path, cfg, rows([("a", "s1"), ("b", "s2")], status=None))
    assert result.returncode == 0, result.stderr[-2000:]
    assert not store.parent.exists()
    assert "2 events would be sent (memberships: 2 realized, 0 existing, 0 exited)" in result.stderr
    assert "never-used" not in result.stderr
