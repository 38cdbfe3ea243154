"""Test helpers shared by every suite.

``read_all`` reads back everything a hub holds, through the official SDK consumer, so tests
assert on what really arrived rather than on what the producer believes it sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.eventhub import EventData, EventHubConsumerClient


@dataclass(frozen=True)
class ReadEvent:
    """One event as a consumer sees it.

    ``properties`` has str keys; the SDK hands AMQP strings back as bytes, so bytes values
    are decoded to str here (``raw_properties`` keeps the SDK's own view).
    """

    partition_id: str
    body: bytes
    properties: dict[str, Any]
    message_id: str | None
    content_type: str | None
    partition_key: str | None
    sequence_number: int
    offset: str
    enqueued_time: datetime | None
    raw_properties: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def to_read_event(partition_id: str, event: EventData) -> ReadEvent:
    props = event.properties or {}
    return ReadEvent(
        partition_id=partition_id,
        body=b"".join(event.body) if not isinstance(event.body, bytes) else event.body,
        properties={str(_text(k)): _text(v) for k, v in props.items()},
        message_id=None if event.message_id is None else str(_text(event.message_id)),
        content_type=_text(event.content_type),
        partition_key=_text(event.partition_key),
        sequence_number=event.sequence_number,
        offset=str(event.offset),
        enqueued_time=event.enqueued_time,
        raw_properties=dict(props),
    )


def _read_partition(
    connection_string: str,
    hub_name: str | None,
    partition_id: str,
    last_sequence_number: int,
    deadline: float,
    consumer_group: str,
    after: int | None = None,
) -> list[ReadEvent]:
    got: list[ReadEvent] = []
    done = threading.Event()
    client = EventHubConsumerClient.from_connection_string(
        connection_string, consumer_group=consumer_group, eventhub_name=hub_name
    )

    def on_batch(_context: Any, events: list[EventData]) -> None:
        for event in events:
            got.append(to_read_event(partition_id, event))
        if got and got[-1].sequence_number >= last_sequence_number:
            done.set()

    worker = threading.Thread(
        target=client.receive_batch,
        kwargs={
            "on_event_batch": on_batch,
            "partition_id": partition_id,
            # From the start, or just after `after` (a sequence number, exclusive).
            "starting_position": "-1" if after is None else after,
            "starting_position_inclusive": False,
            "max_batch_size": 1000,
            "max_wait_time": 0.5,
        },
        daemon=True,
    )
    worker.start()
    done.wait(max(0.0, deadline - time.monotonic()))
    client.close()
    worker.join(10)
    if not done.is_set():
        raise TimeoutError(
            f"partition {partition_id}: read {len(got)} events, "
            f"expected up to sequence number {last_sequence_number}"
        )
    return got


def read_all(
    connection_string: str,
    hub_name: str | None = None,
    timeout: float = 30.0,
    consumer_group: str = "$Default",
    after: Mapping[str, int | None] | None = None,
) -> list[ReadEvent]:
    """Every event of every partition, read with the official ``EventHubConsumerClient``.

    Reads each non-empty partition from the start (``starting_position="-1"``), or from just
    after the sequence number ``after[partition_id]`` when given (a shared hub: read only
    what came since), until its ``last_enqueued_sequence_number`` (taken when the call
    starts) has arrived. Returns the
    events ordered by partition id then sequence number. Raises ``TimeoutError`` when a
    partition does not deliver everything within ``timeout`` seconds.
    ``hub_name`` may be omitted when the connection string has ``EntityPath``.
    """
    deadline = time.monotonic() + timeout
    with EventHubConsumerClient.from_connection_string(
        connection_string, consumer_group=consumer_group, eventhub_name=hub_name
    ) as client:
        partition_ids = client.get_partition_ids()
    targets: dict[str, int] = {}
    results: dict[str, list[ReadEvent]] = {}
    errors: list[BaseException] = []

    def run(pid: str) -> None:
        # Partitions are read in parallel: every SDK management call and close costs ~0.5 s.
        try:
            with EventHubConsumerClient.from_connection_string(
                connection_string, consumer_group=consumer_group, eventhub_name=hub_name
            ) as props_client:
                props = props_client.get_partition_properties(pid)
            since = (after or {}).get(pid)
            if props["is_empty"] or (
                since is not None and props["last_enqueued_sequence_number"] <= since
            ):
                return
            targets[pid] = props["last_enqueued_sequence_number"]
            results[pid] = _read_partition(
                connection_string, hub_name, pid, targets[pid], deadline, consumer_group, since
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(pid,)) for pid in partition_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    events: list[ReadEvent] = []
    for pid in sorted(results, key=lambda p: int(p) if p.isdigit() else p):
        events.extend(e for e in results[pid] if e.sequence_number <= targets[pid])
    return events
