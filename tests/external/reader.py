"""Reading only what arrived after a point in time from a shared, non-empty event hub.

``mark`` records each partition's last enqueued sequence number (through the official
``EventHubConsumerClient``); ``read_since`` then reads each partition from just after that
sequence number (``starting_position`` = sequence number, exclusive) up to the partition's
last enqueued event at the time of the call. Events other producers send meanwhile come
back too: callers filter them by a run id of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from azure.eventhub import EventHubConsumerClient

from tests.helpers import ReadEvent, read_all


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


def read_since(connection_string: str, hub: str | None, marks: dict[str, Position],
               consumer_group: str = "$Default", timeout: float = 60.0) -> list[ReadEvent]:
    """Events enqueued after ``marks`` (partition id order, then sequence number)."""
    after = {pid: position.last_sequence_number for pid, position in marks.items()}
    return read_all(connection_string, hub, timeout, consumer_group, after=after)
