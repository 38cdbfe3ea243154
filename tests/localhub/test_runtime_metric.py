"""Receiver runtime metrics: ``track_last_enqueued_event_properties`` with the official consumer.

A receiver that asks for them gets, with every event, the partition's last-enqueued sequence
number, offset and enqueued time as the hub holds them at delivery, and the retrieval time.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
from typing import Any

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.aio import EventHubConsumerClient as AsyncConsumerClient
from eventhubs_localhub import LocalHub, StoredEvent

from tests.waiting import wait_until

Seen = list[tuple[EventData, dict[str, Any] | None]]


def _utc(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


def _send(producer: EventHubProducerClient, bodies: range) -> None:
    producer.send_batch([EventData(b"e%d" % i) for i in bodies], partition_id="0")


def _expected(last: StoredEvent) -> dict[str, Any]:
    return {
        "sequence_number": last.sequence_number,
        "offset": str(last.offset),
        "enqueued_time": _utc(last.enqueued_time),
    }


def _without_retrieval(props: dict[str, Any] | None) -> dict[str, Any]:
    assert props is not None
    return {k: v for k, v in props.items() if k != "retrieval_time"}


def _receive_in_thread(hub: LocalHub, seen: Seen, **kwargs: Any) -> EventHubConsumerClient:
    client = EventHubConsumerClient.from_connection_string(
        hub.connection_string("profiles"), consumer_group="$Default", retry_total=0
    )

    def on_event(context: Any, event: EventData | None) -> None:
        if event is not None:
            seen.append((event, context.last_enqueued_event_properties))

    threading.Thread(
        target=client.receive,
        kwargs={"on_event": on_event, "partition_id": "0", "starting_position": "-1", **kwargs},
        daemon=True,
    ).start()
    return client


def test_each_event_carries_the_partitions_last_enqueued_event(
    hub: LocalHub, producer: EventHubProducerClient
) -> None:
    _send(producer, range(5))
    _send(producer, range(5, 8))
    stored_before = hub.events("profiles", "0")
    seen: Seen = []
    started = datetime.datetime.now(datetime.UTC)
    client = _receive_in_thread(hub, seen, track_last_enqueued_event_properties=True)
    try:
        assert wait_until(lambda: len(seen) >= 8, 10)
        # Events stored while the receiver is attached move the figures on.
        _send(producer, range(8, 10))
        assert wait_until(lambda: len(seen) >= 10, 10)
    finally:
        client.close()
    finished = datetime.datetime.now(datetime.UTC)
    stored = hub.events("profiles", "0")
    assert [e.body_as_str() for e, _ in seen] == [f"e{i}" for i in range(10)]
    # The first eight were all delivered while seq 7 was the last in the partition.
    for _event, props in seen[:8]:
        assert _without_retrieval(props) == _expected(stored_before[-1])
    # The last delivery names the last stored event (seq 9), never an earlier one.
    assert _without_retrieval(seen[-1][1]) == _expected(stored[-1])
    for event, props in seen[8:]:
        assert props is not None
        assert event.sequence_number is not None
        assert event.sequence_number <= props["sequence_number"] <= 9
    for _event, props in seen:
        assert props is not None
        assert started - datetime.timedelta(seconds=1) <= props["retrieval_time"] <= finished


def test_a_receiver_that_does_not_ask_gets_none(
    hub: LocalHub, producer: EventHubProducerClient
) -> None:
    _send(producer, range(3))
    seen: Seen = []
    client = _receive_in_thread(hub, seen)
    try:
        assert wait_until(lambda: len(seen) >= 3, 10)
    finally:
        client.close()
    assert [e.body_as_str() for e, _ in seen] == ["e0", "e1", "e2"]
    assert [props for _e, props in seen] == [None, None, None]
    assert all(not e.raw_amqp_message.delivery_annotations for e, _ in seen)


def test_async_consumer_gets_them_too(hub: LocalHub, producer: EventHubProducerClient) -> None:
    _send(producer, range(4))
    last = hub.events("profiles", "0")[-1]
    seen: Seen = []

    async def consume() -> None:
        client = AsyncConsumerClient.from_connection_string(
            hub.connection_string("profiles"), consumer_group="$Default", retry_total=0
        )
        done = asyncio.Event()

        async def on_event(context: Any, event: EventData | None) -> None:
            if event is not None:
                seen.append((event, context.last_enqueued_event_properties))
                if len(seen) >= 4:
                    done.set()

        async with client:
            task = asyncio.create_task(
                client.receive(
                    on_event,
                    partition_id="0",
                    starting_position="-1",
                    track_last_enqueued_event_properties=True,
                )
            )
            await asyncio.wait_for(done.wait(), 10)
            await client.close()
            # receive() returns about half a minute after close(); nothing is left to read.
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(consume())
    assert [e.body_as_str() for e, _ in seen] == ["e0", "e1", "e2", "e3"]
    for _event, props in seen:
        assert _without_retrieval(props) == _expected(last)
