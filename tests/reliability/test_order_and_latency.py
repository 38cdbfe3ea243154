"""Scenarios 10 and 11: per-profile order across several streams draining at once, and
idle input longer than max_latency_ms."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import pytest
from azure.eventhub._buffered_producer._partition_resolver import PartitionResolver

from tests.reliability.checks import (
    STREAM,
    TargetProcess,
    Workload,
    check_delivery,
    local_hub,
    make_workload,
    target_config,
    wait_until,
)

STREAMS = ("profiles", "vip_profiles", "churn_profiles")


@pytest.fixture(scope="module")
def three_streams(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Workload, dict[str, list[tuple[str, int, int]]]]:
    """One run: 20 profiles, each in all three streams, partition key profile_id. Returns
    the workload and, per profile, (partition, sequence number, input line) of its events."""
    tmp_path = tmp_path_factory.mktemp("three-streams")
    workload = make_workload(360, state_every=30, streams=STREAMS, profiles=20)
    with local_hub() as hub:
        # One event per row (rows of a profile reused across the input), so that the order
        # of a profile's rows can be read back event by event.
        config = target_config(hub.connection_string(), max_latency_ms=100, group_by_profile=False)
        target = TargetProcess(tmp_path, config)
        try:
            target.feed(workload.messages, chunk=15, delay=0.05)
            result = target.wait(60)
        finally:
            target.kill()
        outcome = check_delivery(
            "10 three streams, per-profile keys",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
        )
    by_profile: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for event in outcome.events:
        attributes = json.loads(event.body)["attributes"]
        by_profile[attributes["profile_id"]].append(
            (event.partition_id, event.sequence_number, attributes["line"])
        )
    assert len(by_profile) == 20
    return workload, by_profile


def _lines_in_partition_order(landed: list[tuple[str, int, int]]) -> list[int]:
    return [line for _, _, line in sorted(landed, key=lambda x: x[1])]


def test_per_profile_order_holds_within_each_stream(three_streams) -> None:
    workload, by_profile = three_streams
    resolver = PartitionResolver(["0", "1", "2", "3"])
    for profile, landed in by_profile.items():
        # One partition per profile, the one its key hashes to ...
        assert {p for p, _, _ in landed} == {resolver.get_partition_id_by_partition_key(profile)}
        # ... and in sequence-number order, each stream's events of it follow input order.
        lines = _lines_in_partition_order(landed)
        for stream in STREAMS:
            of_stream = [n for n in lines if workload.records[n][0] == stream]
            assert of_stream == sorted(of_stream), (profile, stream, of_stream)


def test_per_profile_order_holds_across_streams(three_streams) -> None:
    _, by_profile = three_streams
    for profile, landed in by_profile.items():
        lines = _lines_in_partition_order(landed)
        assert lines == sorted(lines), (profile, lines)


def test_idle_input_longer_than_max_latency(tmp_path: Path) -> None:
    workload = make_workload(100, state_every=50)
    first, rest = workload.messages[:52], workload.messages[52:]  # schema, 50 records, STATE
    assert first[-1]["type"] == "STATE"  # type: ignore[index]
    with local_hub() as hub:
        target = TargetProcess(tmp_path, target_config(hub.connection_string(), max_latency_ms=300))
        try:
            target.feed(first, close=False)
            # Idle for well over max_latency_ms: what waits is sent and its STATE written
            # while stdin is still open.
            assert wait_until(lambda: hub.event_count(STREAM) == 50, 10), target.stderr
            assert wait_until(lambda: len(target.states()) == 1, 5), target.stderr
            time.sleep(1.0)  # a duration under test: idle input, over 3 x max_latency_ms
            assert hub.event_count(STREAM) == 50
            target.feed(rest, close=False)
            assert wait_until(lambda: hub.event_count(STREAM) == 100, 10), target.stderr
            assert wait_until(lambda: len(target.states()) >= 2, 5), target.stderr
            target.close_input()
            result = target.wait(30)
        finally:
            target.kill()
        check_delivery(
            "11 idle input > max_latency_ms",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
        )
