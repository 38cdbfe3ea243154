"""The target end to end: Singer lines into the real CLI, events read back with the SDK consumer."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import pytest
from azure.eventhub._buffered_producer._partition_resolver import PartitionResolver
from eventhubs_localhub import LocalHub

from target_azure_eventhubs.testing import read_all
from tests.integration.target_runner import (
    MEMBERSHIP_PROPERTIES,
    TARGET_WITHOUT_EARLY_CONNECTION,
    LiveTarget,
    record,
    run_seconds,
    run_target,
    schema,
    state,
)

STREAM = "memberships"
PARTITIONS = ["0", "1", "2", "3"]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def base_config(hub: LocalHub, **extra: object) -> dict[str, object]:
    return {
        "connection_string": hub.connection_string(),
        "eventhub_name": "profiles",
        "send_timeout_seconds": 4,
        "retry_backoff_seconds": 0.2,
        "max_latency_ms": 200,
        **extra,
    }


def membership_schema() -> dict[str, object]:
    return schema(STREAM, MEMBERSHIP_PROPERTIES, ["profile_id"])


def rounds_of_memberships(profiles: list[str], rounds: int) -> list:
    """A schema, then per round one row for every profile (segment and attribute `seq` =
    the round) followed by a STATE naming the round."""
    messages: list = [membership_schema()]
    for seq in range(rounds):
        for profile in profiles:
            messages.append(
                record(
                    STREAM,
                    {
                        "profile_id": profile,
                        "email": f"{profile}@example.com",
                        "segment_id": f"seg-{seq}",
                        "status": "realized",
                        "seq": seq,
                    },
                )
            )
        messages.append(state({"bookmarks": {STREAM: {"round": seq}}}))
    return messages


def bodies(events: list) -> list[dict]:
    return [json.loads(e.body) for e in events]


def test_records_become_the_expected_events(local_hub: LocalHub, tmp_path: Path) -> None:
    messages = [
        membership_schema(),
        record(
            STREAM,
            {
                "profile_id": "p1",
                "email": "  John.Doe@Example.COM ",
                "first_name": "John",
                "last_name": "Doe",
                "segment_id": "seg-a",
                "status": "qualified",
                "last_qualification_time": "2020-03-03T22:24:39+01:00",
            },
        ),
        record(
            STREAM,
            {
                "profile_id": "p1",
                "email": "john.doe@example.com",
                "segment_id": "seg-b",
                "status": "exited",
                "last_qualification_time": "2020-03-04T10:00:00Z",
            },
        ),
        state({"bookmarks": {STREAM: {"line": 3}}}),
        record(
            STREAM,
            {
                "profile_id": "p2",
                "email": "Ann@Example.org",
                "segment_id": "seg-a",
                "status": "existing",
            },
        ),
        state({"bookmarks": {STREAM: {"line": 5}}}),
    ]
    result = run_target(tmp_path, base_config(local_hub), messages)
    assert result.returncode == 0, result.stderr
    assert result.states[-1] == {"bookmarks": {STREAM: {"line": 5}}}

    events = read_all(local_hub.connection_string("profiles"))
    by_profile = {e.properties["segment_ids"]: e for e in events}
    assert len(events) == 2
    p1 = json.loads(by_profile["seg-a,seg-b"].body)
    assert p1 == {
        "person": {"name": {"firstName": "John", "lastName": "Doe"}},
        "segmentMembership": {
            "ups": {
                "seg-a": {"status": "realized", "lastQualificationTime": "2020-03-03T21:24:39Z"},
                "seg-b": {"status": "exited", "lastQualificationTime": "2020-03-04T10:00:00Z"},
            }
        },
        "identityMap": {"email_lc_sha256": [{"id": sha("john.doe@example.com")}]},
    }
    p2 = json.loads(by_profile["seg-a"].body)
    assert p2 == {
        "segmentMembership": {"ups": {"seg-a": {"status": "existing"}}},
        "identityMap": {"email_lc_sha256": [{"id": sha("ann@example.org")}]},
    }
    for event in events:
        assert event.content_type == "application/json"
        assert event.properties["stream"] == STREAM
        assert event.message_id == hashlib.sha256(event.body).hexdigest()[:32]
        assert b"@" not in event.body  # no raw email leaves under a hashed namespace
    resolver = PartitionResolver(PARTITIONS)
    assert by_profile["seg-a,seg-b"].partition_id == resolver.get_partition_id_by_partition_key(
        "p1"
    )
    assert by_profile["seg-a"].partition_id == resolver.get_partition_id_by_partition_key("p2")


def test_each_profile_stays_on_one_partition_in_input_order(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    profiles = [f"profile-{n}" for n in range(40)]
    messages = rounds_of_memberships(profiles, 5)
    config = base_config(local_hub, group_by_profile=False, include_unmapped_attributes=True)
    result = run_target(tmp_path, config, messages)
    assert result.returncode == 0, result.stderr
    assert result.states[-1] == {"bookmarks": {STREAM: {"round": 4}}}

    events = read_all(local_hub.connection_string("profiles"))
    assert len(events) == 200
    resolver = PartitionResolver(PARTITIONS)
    seen: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for event in events:
        body = json.loads(event.body)
        profile = body["attributes"]["profile_id"]
        seen[profile].append((event.partition_id, event.sequence_number, body["attributes"]["seq"]))
    assert set(seen) == set(profiles)
    for profile, landed in seen.items():
        assert {p for p, _, _ in landed} == {resolver.get_partition_id_by_partition_key(profile)}
        in_partition_order = [s for _, _, s in sorted(landed, key=lambda x: x[1])]
        assert in_partition_order == [0, 1, 2, 3, 4]
    assert len({e.partition_id for e in events}) > 1


def test_grouping_merges_rows_of_a_profile_and_later_rows_win(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    messages = [
        membership_schema(),
        record(
            STREAM,
            {
                "profile_id": "p1",
                "email": "a@example.com",
                "segment_id": "s1",
                "status": "realized",
            },
        ),
        record(
            STREAM,
            {
                "profile_id": "p1",
                "email": "a@example.com",
                "segment_id": "s2",
                "status": "realized",
            },
        ),
        record(
            STREAM,
            {"profile_id": "p1", "email": "a@example.com", "segment_id": "s1", "status": "removed"},
        ),
    ]
    result = run_target(tmp_path, base_config(local_hub, max_latency_ms=5000), messages)
    assert result.returncode == 0, result.stderr
    events = read_all(local_hub.connection_string("profiles"))
    assert bodies(events) == [
        {
            "segmentMembership": {
                "ups": {"s1": {"status": "exited"}, "s2": {"status": "realized"}}
            },
            "identityMap": {"email_lc_sha256": [{"id": sha("a@example.com")}]},
        }
    ]


def test_no_state_before_the_hub_accepts(local_hub: LocalHub, tmp_path: Path) -> None:
    local_hub.faults.black_hole(True)
    target = LiveTarget(tmp_path, base_config(local_hub, send_timeout_seconds=1, max_retries=50))
    try:
        target.send([membership_schema()])
        target.send(
            [
                record(
                    STREAM,
                    {
                        "profile_id": f"p{n}",
                        "email": f"p{n}@example.com",
                        "segment_id": "s",
                        "status": "realized",
                    },
                )
                for n in range(20)
            ]
        )
        target.send([state({"bookmarks": {STREAM: {"line": 21}}})])
        assert target.next_state(timeout=4) is None, "STATE written while the hub accepted nothing"
        assert local_hub.event_count("profiles") == 0
        local_hub.faults.black_hole(False)
        assert target.next_state(timeout=30) == {"bookmarks": {STREAM: {"line": 21}}}
        stored = local_hub.event_count("profiles")
        assert stored >= 20  # withheld sends may be stored again when retried: at least once
        assert target.finish() == 0, target.stderr
    finally:
        target.proc.kill()
    ids = {e.message_id for e in read_all(local_hub.connection_string("profiles"))}
    assert len(ids) == 20
    assert "retries" in target.stderr


def test_idle_input_is_sent_within_max_latency(local_hub: LocalHub, tmp_path: Path) -> None:
    target = LiveTarget(tmp_path, base_config(local_hub, max_latency_ms=300))
    try:
        target.send(
            [
                membership_schema(),
                record(
                    STREAM,
                    {
                        "profile_id": "p1",
                        "email": "x@example.com",
                        "segment_id": "s",
                        "status": "realized",
                    },
                ),
                state({"n": 1}),
            ]
        )
        assert target.next_state(timeout=10) == {"n": 1}
        assert local_hub.event_count("profiles") == 1  # sent while stdin is still open
        target.send(
            [
                record(
                    STREAM,
                    {
                        "profile_id": "p2",
                        "email": "y@example.com",
                        "segment_id": "s",
                        "status": "realized",
                    },
                ),
                state({"n": 2}),
            ]
        )
        assert target.next_state(timeout=10) == {"n": 2}
        assert local_hub.event_count("profiles") == 2
        assert target.finish() == 0, target.stderr
    finally:
        target.proc.kill()


def test_invalid_record_fails_with_stream_key_and_line_and_keeps_what_came_before(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    messages = [
        membership_schema(),
        record(
            STREAM,
            {"profile_id": "p1", "email": "a@example.com", "segment_id": "s", "status": "realized"},
        ),
        record(
            STREAM,
            {"profile_id": "p2", "email": "b@example.com", "segment_id": "s", "status": "realized"},
        ),
        state({"line": 3}),
        record(
            STREAM,
            {"profile_id": "p3", "email": "c@example.com", "segment_id": "s", "status": "maybe"},
        ),
        record(
            STREAM,
            {"profile_id": "p4", "email": "d@example.com", "segment_id": "s", "status": "realized"},
        ),
        state({"line": 6}),
    ]
    result = run_target(tmp_path, base_config(local_hub), messages)
    assert result.returncode == 1
    assert "stream 'memberships'" in result.stderr
    assert "profile_id=p3" in result.stderr
    assert "input line 5" in result.stderr
    assert "'maybe'" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.states == [{"line": 3}]
    assert sorted(
        e.properties["segment_ids"] for e in read_all(local_hub.connection_string("profiles"))
    ) == ["s", "s"]


def test_dead_letter_keeps_invalid_records_and_sends_the_rest(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    messages = [
        membership_schema(),
        record(
            STREAM,
            {"profile_id": "p1", "email": "a@example.com", "segment_id": "s", "status": "realized"},
        ),
        record(STREAM, {"profile_id": "p2", "segment_id": "s", "status": "realized"}),
        record(
            STREAM,
            {"profile_id": "p3", "email": "c@example.com", "segment_id": "s", "status": "nope"},
        ),
        '{"type": "RECORD", "stream": "memberships", "record": {"profile_id": ',
        record(
            STREAM,
            {"profile_id": "p5", "email": "e@example.com", "segment_id": "s", "status": "exited"},
        ),
        state({"line": 6}),
    ]
    config = base_config(local_hub, on_invalid_record="dead_letter", dead_letter_path=str(dead))
    result = run_target(tmp_path, config, messages)
    assert result.returncode == 0, result.stderr
    assert result.states == [{"line": 6}]
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [(x["stream"], x["line"]) for x in letters] == [(STREAM, 3), (STREAM, 4), (None, 5)]
    assert "no identity" in letters[0]["reason"]
    assert "nope" in letters[1]["reason"]
    assert "not valid JSON" in letters[2]["reason"]
    assert letters[1]["record"]["profile_id"] == "p3"
    arrived = bodies(read_all(local_hub.connection_string("profiles")))
    assert sorted(b["identityMap"]["email_lc_sha256"][0]["id"] for b in arrived) == sorted(
        [sha("a@example.com"), sha("e@example.com")]
    )
    assert "3 invalid" in result.stderr


def test_skip_counts_invalid_records(local_hub: LocalHub, tmp_path: Path) -> None:
    messages = [
        membership_schema(),
        record(STREAM, {"profile_id": "p1", "segment_id": "s", "status": "realized"}),
        record(
            STREAM,
            {"profile_id": "p2", "email": "b@example.com", "segment_id": "s", "status": "realized"},
        ),
    ]
    result = run_target(tmp_path, base_config(local_hub, on_invalid_record="skip"), messages)
    assert result.returncode == 0, result.stderr
    assert "Invalid record profile_id=p1 in stream 'memberships' at input line 2" in result.stderr
    assert "1 invalid" in result.stderr
    assert local_hub.event_count("profiles") == 1


def test_event_larger_than_the_hub_accepts(tmp_path: Path) -> None:
    with LocalHub(hubs={"profiles": 2}, max_message_size=4096) as hub:
        big = "x" * 6000
        messages = [
            schema(STREAM, {**MEMBERSHIP_PROPERTIES, "note": {"type": "string"}}, ["profile_id"]),
            record(
                STREAM,
                {
                    "profile_id": "p1",
                    "email": "a@example.com",
                    "segment_id": "s",
                    "status": "realized",
                },
            ),
            record(
                STREAM,
                {
                    "profile_id": "p2",
                    "email": "b@example.com",
                    "segment_id": "s",
                    "status": "realized",
                    "note": big,
                },
            ),
        ]
        config = base_config(hub, include_unmapped_attributes=True, on_invalid_record="skip")
        result = run_target(tmp_path, config, messages)
        assert result.returncode == 0, result.stderr
        assert "more than the 4096 bytes" in result.stderr
        assert hub.event_count("profiles") == 1
        failing = run_target(tmp_path, {**config, "on_invalid_record": "fail"}, messages)
        assert failing.returncode == 1
        assert "profile_id=p2" in failing.stderr and "input line 3" in failing.stderr


def test_malformed_line_and_record_before_schema_are_named(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    broken = run_target(tmp_path, base_config(local_hub), [membership_schema(), "{not json"])
    assert broken.returncode == 1
    assert "input line 2: not valid JSON" in broken.stderr
    early = run_target(tmp_path, base_config(local_hub), [record("other", {"profile_id": "p"})])
    assert early.returncode == 1
    assert "other" in early.stderr and "before" in early.stderr.lower()


def test_routes_streams_to_their_event_hubs(tmp_path: Path) -> None:
    with LocalHub(hubs={"profiles": 2, "vip": 2}) as hub:
        messages = [
            membership_schema(),
            schema("vip_members", MEMBERSHIP_PROPERTIES, ["profile_id"]),
            record(
                STREAM,
                {
                    "profile_id": "p1",
                    "email": "a@example.com",
                    "segment_id": "s",
                    "status": "realized",
                },
            ),
            record(
                "vip_members",
                {
                    "profile_id": "p2",
                    "email": "b@example.com",
                    "segment_id": "v",
                    "status": "realized",
                },
            ),
        ]
        config = base_config(hub, stream_eventhubs={"vip_members": "vip"})
        result = run_target(tmp_path, config, messages)
        assert result.returncode == 0, result.stderr
        assert [e.properties["stream"] for e in read_all(hub.connection_string("profiles"))] == [
            STREAM
        ]
        assert [e.properties["stream"] for e in read_all(hub.connection_string("vip"))] == [
            "vip_members"
        ]


def test_round_robin_spreads_events(local_hub: LocalHub, tmp_path: Path) -> None:
    messages = [membership_schema()] + [
        record(
            STREAM,
            {
                "profile_id": "same",
                "email": f"u{n}@example.com",
                "segment_id": f"s{n}",
                "status": "realized",
            },
        )
        for n in range(200)
    ]
    config = base_config(
        local_hub, partitioning="round_robin", group_by_profile=False, max_batch_size_bytes=2048
    )
    result = run_target(tmp_path, config, messages)
    assert result.returncode == 0, result.stderr
    events = read_all(local_hub.connection_string("profiles"))
    assert len(events) == 200
    assert len({e.partition_id for e in events}) > 1


def test_wrong_key_fails_fast_naming_the_key_name_only(tmp_path: Path) -> None:
    secret = "Wr0ngKeyThatMustNeverBePrinted123="
    with LocalHub(hubs={"profiles": 2}) as hub:
        conn = hub.connection_string().replace(
            f"SharedAccessKey={hub.key}", f"SharedAccessKey={secret}"
        )
        assert secret in conn
        result = run_target(
            tmp_path,
            {"connection_string": conn, "eventhub_name": "profiles"},
            [membership_schema()],
        )
    assert result.returncode == 1
    assert run_seconds(result.stderr) < 5, result.stderr[-3000:]
    assert "refused the credentials" in result.stderr
    assert f"'{hub.key_name}'" in result.stderr
    assert secret not in result.stderr + result.stdout
    assert secret[:12] not in result.stderr + result.stdout


def test_missing_event_hub_is_named(local_hub: LocalHub, tmp_path: Path) -> None:
    result = run_target(
        tmp_path, base_config(local_hub, eventhub_name="nohub"), [membership_schema()]
    )
    assert result.returncode == 1
    assert run_seconds(result.stderr) < 5, result.stderr[-3000:]
    assert "'nohub'" in result.stderr
    assert "Traceback" not in result.stderr


def test_emulator_flag_for_a_remote_host_is_refused(tmp_path: Path) -> None:
    secret = "RemoteKeyNeverPrinted456="
    conn = (
        f"Endpoint=sb://contoso.servicebus.windows.net;SharedAccessKeyName=send;"
        f"SharedAccessKey={secret};EntityPath=profiles;UseDevelopmentEmulator=true"
    )
    result = run_target(tmp_path, {"connection_string": conn}, [membership_schema()])
    assert result.returncode == 1
    assert "UseDevelopmentEmulator=true" in result.stderr
    assert "contoso.servicebus.windows.net" in result.stderr
    assert secret not in result.stderr + result.stdout


@pytest.mark.parametrize("way", ["none", "two"])
def test_connection_settings_errors(tmp_path: Path, way: str) -> None:
    config: dict[str, object] = {"eventhub_name": "profiles"}
    if way == "two":
        config.update(
            connection_string="Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=a;SharedAccessKey=b",
            namespace="x",
            sas_key_name="a",
            sas_key="b",
        )
    result = run_target(tmp_path, config, [membership_schema()])
    assert result.returncode == 1
    assert ("no connection configured" if way == "none" else "two ways to connect") in result.stderr


def test_events_drained_while_connecting_are_sent_in_order_with_their_states(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    # Drains every 50 rows start long before the sender process can have connected (it is
    # started by the target here, not ahead of it by the command), so events are held,
    # then sent, in order.
    profiles = [f"profile-{n}" for n in range(60)]
    messages = rounds_of_memberships(profiles, 40)
    config = base_config(
        local_hub, batch_size_rows=50, max_latency_ms=10000, include_unmapped_attributes=True
    )
    result = run_target(
        tmp_path,
        config,
        messages,
        env={"LOGLEVEL": "DEBUG"},
        command=TARGET_WITHOUT_EARLY_CONNECTION,
    )
    assert result.returncode == 0, result.stderr
    assert "while the sender process connects" in result.stderr
    rounds = [s["bookmarks"][STREAM]["round"] for s in result.states]
    assert rounds == sorted(rounds) and rounds[-1] == 39

    events = read_all(local_hub.connection_string("profiles"))
    assert len(events) == 60 * 40
    seen: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for event in events:
        body = json.loads(event.body)
        seen[body["attributes"]["profile_id"]].append(
            (event.sequence_number, body["attributes"]["seq"])
        )
    assert set(seen) == set(profiles)
    for landed in seen.values():
        assert [s for _, s in sorted(landed)] == list(range(40))
