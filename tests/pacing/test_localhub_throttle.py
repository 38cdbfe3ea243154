"""The local hub's byte-rate throttle, with the official producer: what the pacing tests
measure against."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub.exceptions import EventDataSendError
from eventhubs_localhub import LocalHub

from tests.pacing.support import refused


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub(hubs={"profiles": 2}) as local:
        yield local


def test_a_byte_rate_throttle_answers_server_busy_above_its_bytes(hub: LocalHub) -> None:
    hub.faults.throttle(None, bytes_per_second=50_000)
    producer = EventHubProducerClient.from_connection_string(
        hub.connection_string("profiles"), retry_total=0
    )
    with producer:
        producer.send_batch([EventData(b"x" * 1000) for _ in range(40)])  # ~42 kB: allowed
        with pytest.raises(EventDataSendError) as info:
            producer.send_batch([EventData(b"x" * 1000) for _ in range(40)])
        assert info.value.error == "server-busy"
        journal = hub.faults.transfers()
        assert journal[0].outcome == "accepted"
        assert refused(journal)  # the SDK resends once; both refused
        assert 40_000 < journal[0].size < 50_000
        assert hub.event_count("profiles") == 40
        hub.faults.throttle(None)  # both rates None: off
        producer.send_batch([EventData(b"x" * 1000) for _ in range(40)])
    assert hub.event_count("profiles") == 80


def test_a_transfer_larger_than_a_second_goes_through_a_full_bucket(hub: LocalHub) -> None:
    hub.faults.throttle(10, bytes_per_second=1_000_000)
    producer = EventHubProducerClient.from_connection_string(
        hub.connection_string("profiles"), retry_total=0
    )
    with producer:
        producer.send_batch([EventData(b"y") for _ in range(25)])  # 25 events > 10/s: goes
        with pytest.raises(EventDataSendError):  # ... and leaves a debt
            producer.send_batch([EventData(b"y")])
    assert hub.event_count("profiles") == 25
