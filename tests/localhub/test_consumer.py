"""Consumer selectors (starting positions), live delivery and owner-level (epoch) stealing."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from eventhubs_localhub import LocalHub

from tests.waiting import wait_until


class Reader:
    """Runs client.receive on one partition in a thread, collecting events and errors."""

    def __init__(self, hub: LocalHub, partition_id: str = "0", **kwargs: Any) -> None:
        self.events: list[EventData] = []
        self.errors: list[Exception] = []
        self.client = EventHubConsumerClient.from_connection_string(
            hub.connection_string("profiles"), consumer_group="$Default", retry_total=0
        )
        self.thread = threading.Thread(
            target=self.client.receive,
            kwargs={
                "on_event": lambda _c, e: self.events.append(e),
                "on_error": lambda _c, e: self.errors.append(e),
                "partition_id": partition_id,
                **kwargs,
            },
            daemon=True,
        )
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EventData]:
        wait_until(lambda: len(self.events) >= count, timeout)
        return self.events

    def wait_error(self, timeout: float = 10.0) -> list[Exception]:
        wait_until(lambda: bool(self.errors), timeout)
        return self.errors

    def close(self) -> None:
        self.client.close()
        self.thread.join(10)


def close_all(*readers: Reader | None) -> None:
    """Close readers in parallel (each SDK close takes about a second)."""
    threads = [threading.Thread(target=r.close) for r in readers if r is not None]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_attached(hub: LocalHub, count: int, timeout: float = 10.0) -> None:
    assert wait_until(lambda: hub.consumer_count("profiles") >= count, timeout, interval=0.02)


def _has_end(reader: Reader) -> bool:
    return any(e.body_as_str() == "end" for e in reader.events)


def _fill(producer: EventHubProducerClient, n: int, start: int = 0) -> None:
    producer.send_batch([EventData(b"e%d" % i) for i in range(start, start + n)], partition_id="0")


def test_starting_positions(hub: LocalHub, producer: EventHubProducerClient) -> None:
    _fill(producer, 10)
    stored = hub.events("profiles", "0")
    readers = {
        "all": Reader(hub, starting_position="-1"),
        "seq>4": Reader(hub, starting_position=4, starting_position_inclusive=False),
        "seq>=4": Reader(hub, starting_position=4, starting_position_inclusive=True),
        "offset>": Reader(hub, starting_position=str(stored[6].offset)),
        "offset>=": Reader(
            hub, starting_position=str(stored[6].offset), starting_position_inclusive=True
        ),
    }
    try:
        # A last event: once a reader has it, it has had every earlier one it will ever get.
        producer.send_batch([EventData(b"end")], partition_id="0")
        expected = {"all": 10, "seq>4": 5, "seq>=4": 6, "offset>": 3, "offset>=": 4}
        for name, reader in readers.items():
            assert wait_until(lambda r=reader: _has_end(r), 10), name
            got = [e for e in reader.events if e.body_as_str() != "end"]
            bodies = [e.body_as_str() for e in got]
            first = 10 - expected[name]
            assert bodies == [f"e{i}" for i in range(first, 10)], name
            assert [e.sequence_number for e in got] == list(range(first, 10)), name
            assert [e.offset for e in got] == [str(s.offset) for s in stored[first:]], name
    finally:
        close_all(*readers.values())


def test_latest_and_enqueued_time_and_live_delivery(
    hub: LocalHub, producer: EventHubProducerClient
) -> None:
    _fill(producer, 3)
    cutoff_ms = hub.events("profiles", "0")[-1].enqueued_time
    # The events to come are enqueued after the cutoff (times are in milliseconds).
    assert wait_until(lambda: time.time() * 1000 > cutoff_ms + 1, 5, interval=0.001)
    latest = Reader(hub, starting_position="@latest")
    by_time = Reader(
        hub,
        starting_position=datetime.datetime.fromtimestamp(cutoff_ms / 1000, datetime.UTC),
    )
    try:
        wait_attached(hub, 2)  # both links attached before the new events arrive
        assert latest.events == [] and by_time.events == []
        _fill(producer, 2, start=3)
        assert [e.body_as_str() for e in latest.wait_for(2)] == ["e3", "e4"]
        assert [e.body_as_str() for e in by_time.wait_for(2)] == ["e3", "e4"]
        assert [e.sequence_number for e in latest.events] == [3, 4]
    finally:
        close_all(latest, by_time)


def test_higher_epoch_steals_and_lower_is_refused(
    hub: LocalHub, producer: EventHubProducerClient
) -> None:
    _fill(producer, 2)
    first = Reader(hub, starting_position="-1", owner_level=1)
    second = third = None
    try:
        assert len(first.wait_for(2)) == 2
        second = Reader(hub, starting_position="-1", owner_level=2)
        assert len(second.wait_for(2)) == 2
        errors = first.wait_error()
        assert errors, "the lower-epoch receiver should be disconnected"
        assert "amqp:link:stolen" in str(errors[0])
        assert "higher epoch of '2'" in str(errors[0])
        third = Reader(hub, starting_position="-1", owner_level=0)
        refused = third.wait_error()
        assert refused and "amqp:link:stolen" in str(refused[0])
        assert third.events == []
    finally:
        close_all(first, second, third)
