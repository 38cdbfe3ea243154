"""Reading only what arrived after a point in time from a shared, non-empty event hub.

``mark`` records each partition's last enqueued sequence number (through the official
``EventHubConsumerClient``); ``read_since`` then reads each partition from just after that
sequence number (``starting_position`` = sequence number, exclusive) up to the partition's
last enqueued event at the time of the call. Events other producers send meanwhile come
back too: callers filter them by a run id of their own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from azure.eventhub import EventData, EventHubConsumerClient

from tests.helpers import ReadEvent, to_read_event


@dataclass(frozen=True)
class Position:
    partition_id: str
    last_sequence_number: int | None  # None: the partition was empty


def _client(connection_string: str, hub: str | None, consumer_group: str) -> EventHubConsumerClient:
    return EventHubConsumerClient.from_connection_string(
        connection_string, consumer_group=consumer_group, eventhub_name=hub
    )


def mark(connection_string: str, hub: str | None, consumer_group: str = "$Default") -> dict[str, Position]:
    """Every partition's current end (last enqueued sequence number, or empty)."""
    with _client(connection_string, hub, consumer_group) as client:
        marks = {}
        for pid in client.get_partition_ids():
            props = client.get_partition_properties(pid)
            last = None if props["is_empty"] else int(props["last_enqueued_sequence_number"])
            marks[pid] = Position(pid, last)
        return marks


def partition_count(connection_string: str, hub: str | None, consumer_group: str = "$Default") -> int:
    with _client(connection_string, hub, consumer_group) as client:
        return len(client.get_partition_ids())


def _read_partition(connection_string: str, hub: str | None, consumer_group: str,
                    start: Position, until: int, deadline: float) -> list[ReadEvent]:
    got: list[ReadEvent] = []
    done = threading.Event()
    client = _client(connection_string, hub, consumer_group)

    def on_batch(_context: Any, events: list[EventData]) -> None:
        for event in events:
            got.append(to_read_event(start.partition_id, event))
        if got and got[-1].sequence_number >= until:
            done.set()

    if start.last_sequence_number is None:
        position: Any = "-1"  # the partition was empty: from its beginning
    else:
        position = start.last_sequence_number  # int: a sequence number, exclusive below
    worker = threading.Thread(
        target=client.receive_batch,
        kwargs={
            "on_event_batch": on_batch,
            "partition_id": start.partition_id,
            "starting_position": position,
            "starting_position_inclusive": False,
            "max_batch_size": 500,
            "max_wait_time": 1.0,
        },
        daemon=True,
    )
    worker.start()
    done.wait(max(0.0, deadline - time.monotonic()))
    client.close()
    worker.join(15)
    if not done.is_set():
        raise TimeoutError(
            f"partition {start.partition_id}: read {len(got)} events after "
            f"{start.last_sequence_number}, expected up to sequence number {until}"
        )
    return got


def read_since(connection_string: str, hub: str | None, marks: dict[str, Position],
               consumer_group: str = "$Default", timeout: float = 60.0) -> list[ReadEvent]:
    """Events enqueued after ``marks`` (partition id order, then sequence number)."""
    deadline = time.monotonic() + timeout
    now = mark(connection_string, hub, consumer_group)
    results: dict[str, list[ReadEvent]] = {}
    errors: list[BaseException] = []

    def run(pid: str) -> None:
        try:
            start = marks.get(pid, Position(pid, None))
            end = now[pid].last_sequence_number
            if end is None or (start.last_sequence_number is not None
                               and end <= start.last_sequence_number):
                return  # nothing new on this partition
            events = _read_partition(connection_string, hub, consumer_group, start, end, deadline)
            results[pid] = [e for e in events if e.sequence_number <= end]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(pid,)) for pid in now]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    events: list[ReadEvent] = []
    for pid in sorted(results, key=lambda p: int(p) if p.isdigit() else p):
        events.extend(results[pid])
    return events
