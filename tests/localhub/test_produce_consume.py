"""Producing with the official SDK and reading everything back with it."""

from __future__ import annotations

import pytest
from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub._buffered_producer._partition_resolver import PartitionResolver
from azure.eventhub.exceptions import EventDataSendError
from eventhubs_localhub import LocalHub

from target_azure_eventhubs.testing import read_all

from .conftest import FAST_FAIL


def _event(body: bytes, i: int, **props: object) -> EventData:
    event = EventData(body)
    event.properties = {"i": i, "kind": "test", **props}
    event.message_id = f"msg-{i}"
    event.content_type = "application/json"
    return event


def test_send_variants_and_read_back(hub: LocalHub, producer: EventHubProducerClient) -> None:
    batch = producer.create_batch()
    for i in range(10):
        batch.add(_event(b'{"n": %d}' % i, i))
    producer.send_batch(batch)
    keyed = producer.create_batch(partition_key="customer-42")
    for i in range(10, 15):
        keyed.add(_event(b"keyed-%d" % i, i))
    producer.send_batch(keyed)
    to_partition = producer.create_batch(partition_id="3")
    to_partition.add(_event(b"p3", 15))
    producer.send_batch(to_partition)
    producer.send_event(_event(b"single", 16))

    events = read_all(hub.connection_string("profiles"), timeout=20)
    assert len(events) == 17 == hub.event_count("profiles")
    by_id = {e.message_id: e for e in events}
    assert set(by_id) == {f"msg-{i}" for i in range(17)}
    for i in range(17):
        got = by_id[f"msg-{i}"]
        assert got.properties == {"i": i, "kind": "test"}
        assert got.content_type == "application/json"
    assert by_id["msg-3"].body == b'{"n": 3}'
    assert by_id["msg-16"].body == b"single"
    assert by_id["msg-15"].partition_id == "3"
    expected_pid = PartitionResolver(["0", "1", "2", "3"]).get_partition_id_by_partition_key(
        "customer-42"
    )
    for i in range(10, 15):
        assert by_id[f"msg-{i}"].partition_id == expected_pid
        assert by_id[f"msg-{i}"].partition_key == "customer-42"
        assert by_id[f"msg-{i}"].body == b"keyed-%d" % i
    assert by_id["msg-0"].partition_key is None
    # Sequence numbers are dense per partition and offsets grow with them.
    for pid in {e.partition_id for e in events}:
        part = [e for e in events if e.partition_id == pid]
        assert [e.sequence_number for e in part] == list(range(len(part)))
        offsets = [int(e.offset) for e in part]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
        stored = hub.events("profiles", pid)
        assert [s.sequence_number for s in stored] == [e.sequence_number for e in part]
        assert [str(s.offset) for s in stored] == [e.offset for e in part]
        assert [s.body for s in stored] == [e.body for e in part]
    # The batch without key went whole to one partition (round-robin per transfer).
    assert len({by_id[f"msg-{i}"].partition_id for i in range(10)}) == 1


def test_keys_route_like_the_sdk_resolver(hub: LocalHub, producer: EventHubProducerClient) -> None:
    keys = [f"profile-{n}" for n in range(24)]
    for key in keys:
        producer.send_batch([EventData(key.encode())], partition_key=key)
    resolver = PartitionResolver(["0", "1", "2", "3"])
    stored = hub.events("profiles")
    assert len(stored) == len(keys)
    for event in stored:
        key = event.body.decode()
        assert event.partition_key == key
        assert event.partition_id == resolver.get_partition_id_by_partition_key(key)
    assert len({e.partition_id for e in stored}) > 1


def test_large_event_accepted_and_oversized_rejected(hub: LocalHub, make_producer) -> None:
    producer = make_producer(hub.connection_string("profiles"), **FAST_FAIL)
    big = b"b" * (1024 * 1024 - 1024)
    producer.send_event(EventData(big))
    with pytest.raises(EventDataSendError) as info:
        producer.send_event(EventData(b"x" * (1024 * 1024 + 100)))
    assert info.value.error == "link:message-size-exceeded"
    assert "exceeds the limit (1048576 bytes)" in info.value.message
    stored = hub.events("profiles")
    assert [len(e.body) for e in stored] == [len(big)]


def test_basic_tier_max_message_size(make_producer) -> None:
    with LocalHub(hubs={"profiles": 2}, max_message_size=262144) as small:
        producer = make_producer(small.connection_string("profiles"), **FAST_FAIL)
        assert producer.create_batch().max_size_in_bytes == 262144
        with pytest.raises(EventDataSendError, match="exceeds the limit"):
            producer.send_event(EventData(b"x" * 300_000))
        producer.send_event(EventData(b"y" * 200_000))
        assert [len(e.body) for e in small.events("profiles")] == [200_000]


def test_management_properties(hub: LocalHub, producer: EventHubProducerClient) -> None:
    props = producer.get_eventhub_properties()
    assert props["eventhub_name"] == "profiles"
    assert props["partition_ids"] == ["0", "1", "2", "3"]
    assert producer.get_partition_ids() == ["0", "1", "2", "3"]
    before = producer.get_partition_properties("2")
    assert before["is_empty"] is True
    assert before["last_enqueued_sequence_number"] == -1
    producer.send_batch([EventData(b"a"), EventData(b"b")], partition_id="2")
    after = producer.get_partition_properties("2")
    assert after["is_empty"] is False
    assert after["id"] == "2"
    assert after["eventhub_name"] == "profiles"
    assert after["beginning_sequence_number"] == 0
    assert after["last_enqueued_sequence_number"] == 1
    stored = hub.events("profiles", "2")
    assert after["last_enqueued_offset"] == str(stored[-1].offset)
    assert int(after["last_enqueued_time_utc"].timestamp() * 1000) == stored[-1].enqueued_time
    other = EventHubProducerClient.from_connection_string(hub.connection_string("orders"))
    with other:
        assert other.get_partition_ids() == ["0", "1"]


def test_multi_frame_transfers_are_reassembled(make_producer) -> None:
    # A 64 KiB max frame size makes the SDK split each large transfer into several frames.
    with LocalHub(hubs={"profiles": 1}, max_frame_size=65536) as small_frames:
        producer = make_producer(small_frames.connection_string("profiles"), **FAST_FAIL)
        producer.send_event(EventData(b"L" * 300_000))
        batch = producer.create_batch()
        for i in range(400):
            batch.add(EventData(b"%04d" % i + b"m" * 1000))
        producer.send_batch(batch)
        stored = small_frames.events("profiles", "0")
        assert [len(e.body) for e in stored] == [300_000] + [1004] * 400
        assert [e.body[:4] for e in stored[1:]] == [b"%04d" % i for i in range(400)]
