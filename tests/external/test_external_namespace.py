"""End to end against a real Event Hubs namespace or the official emulator.

    TARGET_AZURE_EVENTHUBS_TEST_CONNECTION_STRING='Endpoint=sb://...;EntityPath=profiles' \
        .venv/bin/python -m pytest tests/external -m external -v

Settings (environment):
  TARGET_AZURE_EVENTHUBS_TEST_CONNECTION_STRING  with EntityPath, or namespace-level plus
  TARGET_AZURE_EVENTHUBS_TEST_EVENTHUB           the event hub's name
  TARGET_AZURE_EVENTHUBS_TEST_CONSUMER_GROUP     optional, default $Default
Without the connection string the test is skipped with that reason.

The same path as users run: the target CLI (a subprocess, Singer lines on stdin) sends
membership rows of a few made-up profiles; the official EventHubConsumerClient reads them
back. A shared hub is not empty and other producers may write to it while the test runs, so
the test marks every partition's last sequence number before the run, reads only events
after it (tests/external/reader.py) and keeps only the events carrying this run's id (the
profile attribute `_targetTest.runId`).

Verified against the local hub: `test_external_path_against_local_hub` runs the same check
in CI against a local hub that already holds other events (including another run's), and
the external test itself was run with TARGET_AZURE_EVENTHUBS_TEST_CONNECTION_STRING set to
a `python -m eventhubs_localhub` connection string (both with EntityPath and
with TARGET_AZURE_EVENTHUBS_TEST_EVENTHUB), which exercises the environment handling too.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.eventhub import EventData, EventHubProducerClient

from target_azure_eventhubs.delivery.partitioning import partition_for_key
from target_azure_eventhubs.events import DEFAULT_ATTRIBUTE_FIELDS, DEFAULT_IDENTITY_FIELDS
from target_azure_eventhubs.testing import partition_ends, read_all
from tests.integration.target_runner import (
    MEMBERSHIP_PROPERTIES,
    record,
    run_target,
    schema,
    state,
)

ENV_CONNECTION_STRING = "TARGET_AZURE_EVENTHUBS_TEST_CONNECTION_STRING"
ENV_EVENTHUB = "TARGET_AZURE_EVENTHUBS_TEST_EVENTHUB"
ENV_CONSUMER_GROUP = "TARGET_AZURE_EVENTHUBS_TEST_CONSUMER_GROUP"
STREAM = "segment_memberships"
RUN_ID_PATH = "_targetTest.runId"
SEGMENTS = [
    "7841ba61-23c1-4bb3-a495-00d695fe1e93",
    "0b1e4b7c-2f7a-4f37-9d0e-5d1a0f8f6c11",
    "c3d9a2e0-6b1f-4c52-8f3e-1a2b3c4d5e6f",
]
PROPERTIES = {**MEMBERSHIP_PROPERTIES, "run_id": {"type": "string"}}


@dataclass
class Outcome:
    run_id: str
    rows: int
    events: int
    foreign_events: int  # events after the mark that belong to someone else
    duplicates: int


def _rows(run_id: str, profiles: int = 12) -> list[dict]:
    rows = []
    for i in range(profiles):
        for j in range(1 + i % 3):
            rows.append(
                {
                    "profile_id": f"ext-{run_id[:12]}-{i:03d}",
                    # Mixed case and blanks: the target normalises before hashing.
                    "email": f"  Test.User{i}+{run_id[:8]}@Example.COM ",
                    "first_name": f"Test{i}",
                    "last_name": "External",
                    "segment_id": SEGMENTS[j],
                    "status": ["realized", "existing", "exited"][(i + j) % 3],
                    "last_qualification_time": f"2025-03-0{1 + j}T12:{i:02d}:05Z",
                    "run_id": run_id,
                }
            )
    return rows


def check_target_against_hub(
    tmp_path: Path,
    connection_string: str,
    eventhub: str | None,
    consumer_group: str = "$Default",
    after_mark: Callable[[], None] | None = None,
) -> Outcome:
    """Run the target CLI on a fresh run id; assert the hub got every row, shaped right.

    ``after_mark`` runs between the mark and the target (tests use it to play another
    producer writing to the shared hub meanwhile).
    """
    run_id = uuid.uuid4().hex
    rows = _rows(run_id)
    tmp_path.mkdir(parents=True, exist_ok=True)
    marks = partition_ends(connection_string, eventhub, consumer_group)
    if after_mark is not None:
        after_mark()
    partitions = len(marks)
    config = {
        "connection_string": connection_string,
        "identity_fields": {**DEFAULT_IDENTITY_FIELDS, "profile_id": "crmId"},
        "attribute_fields": {**DEFAULT_ATTRIBUTE_FIELDS, "run_id": RUN_ID_PATH},
    }
    if eventhub:
        config["eventhub_name"] = eventhub
    final_state = {"bookmarks": {STREAM: {"run_id": run_id}}}
    messages = [schema(STREAM, PROPERTIES, ["profile_id"])]
    messages += [record(STREAM, row) for row in rows]
    messages.append(state(final_state))
    result = run_target(tmp_path, config, messages, timeout=180)
    assert result.returncode == 0, f"target failed ({result.returncode}):\n{result.stderr[-5000:]}"
    # STATE is written only once the hub accepted every event before it.
    assert result.states and result.states[-1] == final_state

    after = {pid: end.last_sequence_number for pid, end in marks.items()}
    events = read_all(connection_string, eventhub, 120, consumer_group, after=after)
    mine, foreign = [], 0
    for event in events:
        try:
            body = json.loads(event.body)
            tag = body.get("_targetTest", {}).get("runId")
        except (ValueError, AttributeError):
            tag = None
        if tag == run_id:
            mine.append((event, body))
        else:
            foreign += 1

    expected: dict[str, dict[str, dict]] = {}
    for row in rows:
        expected.setdefault(row["profile_id"], {})[row["segment_id"]] = {
            "lastQualificationTime": row["last_qualification_time"],
            "status": row["status"],
        }
    by_row = {row["profile_id"]: row for row in rows}
    seen: dict[tuple[str, str], int] = {}
    for event, body in mine:
        profile_id = body["identityMap"]["crmId"][0]["id"]
        row = by_row[profile_id]
        email_hash = hashlib.sha256(row["email"].strip().lower().encode()).hexdigest()
        assert body["identityMap"] == {
            "email_lc_sha256": [{"id": email_hash}],
            "crmId": [{"id": profile_id}],
        }
        assert body["person"] == {
            "name": {"firstName": row["first_name"], "lastName": row["last_name"]}
        }
        for segment_id, membership in body["segmentMembership"]["ups"].items():
            assert membership == expected[profile_id][segment_id]
            seen[(profile_id, segment_id)] = seen.get((profile_id, segment_id), 0) + 1
        assert event.partition_id == str(partition_for_key(profile_id, partitions)), (
            f"{profile_id} on partition {event.partition_id}"
        )
        assert event.properties.get("stream") == STREAM
    missing = {(p, s) for p, segs in expected.items() for s in segs} - set(seen)
    assert not missing, (
        f"{len(missing)} of {len(rows)} memberships never arrived: {sorted(missing)[:5]}"
    )
    return Outcome(run_id, len(rows), len(mine), foreign, sum(n - 1 for n in seen.values()))


@pytest.mark.external
@pytest.mark.slow
def test_external_namespace(tmp_path):
    connection_string = os.environ.get(ENV_CONNECTION_STRING)
    if not connection_string:
        pytest.skip(
            f"{ENV_CONNECTION_STRING} is not set (optionally with {ENV_EVENTHUB} and "
            f"{ENV_CONSUMER_GROUP}): no external Event Hubs namespace to test against"
        )
    eventhub = os.environ.get(ENV_EVENTHUB) or None
    if not eventhub and "entitypath=" not in connection_string.lower():
        pytest.fail(f"{ENV_CONNECTION_STRING} has no EntityPath and {ENV_EVENTHUB} is not set")
    consumer_group = os.environ.get(ENV_CONSUMER_GROUP) or "$Default"
    outcome = check_target_against_hub(tmp_path, connection_string, eventhub, consumer_group)
    print(
        f"external: run {outcome.run_id}: {outcome.rows} rows -> {outcome.events} events, "
        f"{outcome.duplicates} duplicates, {outcome.foreign_events} other events ignored"
    )


@pytest.mark.slow
def test_external_path_against_local_hub(tmp_path, local_hub):
    """The external test's own check, against a local hub that is already in use."""
    connection_string = local_hub.connection_string("profiles")
    first = check_target_against_hub(tmp_path / "a", connection_string, None)
    assert first.foreign_events == 0 and first.duplicates == 0

    def other_producer() -> None:
        # Someone else writes to the shared hub during the run: a segment event of another
        # run (same shape), and a body that is not JSON at all.
        with EventHubProducerClient.from_connection_string(connection_string) as producer:
            batch = producer.create_batch()
            other = {
                "segmentMembership": {"ups": {}},
                "identityMap": {"crmId": [{"id": "x"}]},
                "_targetTest": {"runId": "another-run"},
            }
            batch.add(EventData(json.dumps(other)))
            batch.add(EventData(b"\x00not json"))
            producer.send_batch(batch)

    # Namespace-level connection string + event hub name this time. The hub now holds the
    # first run's events (before the mark: never read) and two foreign ones (after it).
    second = check_target_against_hub(
        tmp_path / "b", local_hub.connection_string(), "profiles", after_mark=other_producer
    )
    assert second.foreign_events == 2
    assert second.events == first.events and second.duplicates == 0
