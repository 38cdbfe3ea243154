"""Reading back what an event hub holds, with the official `EventHubConsumerClient`, so that
checks assert on what really arrived rather than on what a producer believes it sent.

Partitions are read in parallel, each by its own client: every SDK management call and
close costs about half a second, even against a local hub.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import typing as t
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from azure.eventhub import EventData, EventHubConsumerClient

from target_azure_eventhubs.delivery.policy import reason_line

_T = TypeVar("_T")


@dataclass(frozen=True)
class ReadEvent:
    """One event as a consumer sees it.

    `properties` has str keys; the SDK hands AMQP strings back as bytes, so bytes values
    are decoded to str here (`raw_properties` keeps the SDK's own view).
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

    @property
    def enqueued_ms(self) -> int | None:
        return None if self.enqueued_time is None else int(self.enqueued_time.timestamp() * 1000)


@dataclass(frozen=True)
class PartitionEnd:
    """Where a partition ends now: its last enqueued event (None when it is empty)."""

    partition_id: str
    last_sequence_number: int | None
    last_enqueued_ms: int | None

    @property
    def count(self) -> int:
        """Events in the partition, for a hub that keeps every event (no retention)."""
        return 0 if self.last_sequence_number is None else self.last_sequence_number + 1


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _sequence_number(event: EventData) -> int:
    number = event.sequence_number
    assert number is not None, "received events always carry a sequence number"
    return number


def to_read_event(partition_id: str, event: EventData) -> ReadEvent:
    props = event.properties or {}
    body = event.body
    return ReadEvent(
        partition_id=partition_id,
        body=body if isinstance(body, bytes) else b"".join(t.cast("Iterable[bytes]", body)),
        properties={str(_text(k)): _text(v) for k, v in props.items()},
        message_id=None if event.message_id is None else str(_text(event.message_id)),
        content_type=_text(event.content_type),
        partition_key=_text(event.partition_key),
        sequence_number=_sequence_number(event),
        offset=str(event.offset),
        enqueued_time=event.enqueued_time,
        raw_properties=dict(props),
    )


def _client(
    conn_str: str,
    hub: str | None,
    consumer_group: str,
    client_options: Mapping[str, Any] | None = None,
) -> EventHubConsumerClient:
    return EventHubConsumerClient.from_connection_string(
        conn_str, consumer_group=consumer_group, eventhub_name=hub, **(client_options or {})
    )


def _in_parallel(items: Mapping[str, Callable[[], _T]]) -> dict[str, _T]:
    """Run one callable per partition in its own thread; the first error is raised."""
    results: dict[str, _T] = {}
    errors: list[BaseException] = []

    def run(pid: str, call: Callable[[], _T]) -> None:
        try:
            results[pid] = call()
        except BaseException as exc:  # raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in items.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _partition_order(pid: str) -> tuple[int, str]:
    return (int(pid), "") if pid.isdigit() else (1 << 30, pid)


def partition_ends(
    conn_str: str,
    hub: str | None = None,
    consumer_group: str = "$Default",
    client_options: Mapping[str, Any] | None = None,
) -> dict[str, PartitionEnd]:
    """Every partition's end, from `get_partition_properties`; no event is read."""
    with _client(conn_str, hub, consumer_group, client_options) as client:
        partition_ids = client.get_partition_ids()

    def end_of(pid: str) -> PartitionEnd:
        with _client(conn_str, hub, consumer_group, client_options) as client:
            props = client.get_partition_properties(pid)
        if props["is_empty"]:
            return PartitionEnd(pid, None, None)
        when = props.get("last_enqueued_time_utc")
        ms = None if when is None else int(when.timestamp() * 1000)
        return PartitionEnd(pid, int(props["last_enqueued_sequence_number"]), ms)

    ends = _in_parallel({pid: functools.partial(end_of, pid) for pid in partition_ids})
    return {pid: ends[pid] for pid in sorted(ends, key=_partition_order)}


def read_partition(
    conn_str: str,
    hub: str | None,
    partition_id: str,
    *,
    first: int | None,
    last: int,
    timeout: float,
    consumer_group: str = "$Default",
    on_event: Callable[[ReadEvent], None] | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> list[ReadEvent]:
    """Events `first`..`last` (sequence numbers, inclusive; `first` None: from the start)."""
    got: list[ReadEvent] = []
    done = threading.Event()
    client = _client(conn_str, hub, consumer_group, client_options)

    def on_batch(_context: Any, events: list[EventData]) -> None:
        for event in events:
            if _sequence_number(event) > last:
                break
            item = to_read_event(partition_id, event)
            got.append(item)
            if on_event is not None:
                on_event(item)
        if got and got[-1].sequence_number >= last:
            done.set()

    worker = threading.Thread(
        target=client.receive_batch,
        kwargs={
            "on_event_batch": on_batch,
            "partition_id": partition_id,
            "starting_position": "-1" if first is None else first,
            "starting_position_inclusive": True,
            "max_batch_size": 1000,
            "max_wait_time": 0.5,
        },
        daemon=True,
    )
    worker.start()
    done.wait(timeout)
    client.close()
    worker.join(10)
    if not done.is_set():
        raise TimeoutError(
            f"partition {partition_id}: read {len(got)} events, "
            f"expected up to sequence number {last}"
        )
    return got


def read_ranges(
    conn_str: str,
    hub: str | None,
    ranges: Mapping[str, tuple[int | None, int]],
    *,
    timeout: float = 120.0,
    consumer_group: str = "$Default",
    client_options: Mapping[str, Any] | None = None,
) -> list[ReadEvent]:
    """Events `first`..`last` of each partition (`ranges[pid] = (first, last)`), in
    partition order then sequence number."""
    deadline = time.monotonic() + timeout

    def reader(pid: str, first: int | None, last: int) -> Callable[[], list[ReadEvent]]:
        return lambda: read_partition(
            conn_str,
            hub,
            pid,
            first=first,
            last=last,
            timeout=max(0.0, deadline - time.monotonic()),
            consumer_group=consumer_group,
            client_options=client_options,
        )

    calls = {pid: reader(pid, first, last) for pid, (first, last) in ranges.items() if last >= 0}
    results = _in_parallel(calls)
    return [e for pid in sorted(results, key=_partition_order) for e in results[pid]]


def read_all(
    conn_str: str,
    hub: str | None = None,
    timeout: float = 30.0,
    consumer_group: str = "$Default",
    after: Mapping[str, int | None] | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> list[ReadEvent]:
    """Every event of every partition, from the start or from just after the sequence
    number `after[partition_id]` (a shared hub: read only what came since), up to each
    partition's last enqueued event when the call starts.

    Events come in partition order, then sequence number. Raises `TimeoutError` when a
    partition does not deliver everything within `timeout` seconds. `hub` may be omitted
    when the connection string has `EntityPath`. `client_options` go to every
    `EventHubConsumerClient` (e.g. `transport_type`, `custom_endpoint_address`).
    """
    deadline = time.monotonic() + timeout
    ranges: dict[str, tuple[int | None, int]] = {}
    for pid, end in partition_ends(conn_str, hub, consumer_group, client_options).items():
        since = (after or {}).get(pid)
        if end.last_sequence_number is None or (
            since is not None and end.last_sequence_number <= since
        ):
            continue
        ranges[pid] = (None if since is None else since + 1, end.last_sequence_number)
    remaining = max(0.0, deadline - time.monotonic())
    return read_ranges(
        conn_str,
        hub,
        ranges,
        timeout=remaining,
        consumer_group=consumer_group,
        client_options=client_options,
    )


def main(argv: list[str] | None = None) -> None:
    """`python -m target_azure_eventhubs.testing`: print what a hub holds."""
    import argparse  # noqa: PLC0415
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415

    parser = argparse.ArgumentParser(description="Print the events an event hub holds.")
    parser.add_argument(
        "--connection-string",
        default=os.environ.get("TARGET_AZURE_EVENTHUBS_CONNECTION_STRING"),
        help="default: $TARGET_AZURE_EVENTHUBS_CONNECTION_STRING",
    )
    parser.add_argument("--eventhub", help="needed unless the connection string has EntityPath")
    parser.add_argument(
        "--config", help="a target config file: its connection_string and eventhub_name"
    )
    parser.add_argument("--consumer-group", default="$Default")
    parser.add_argument("--last", type=int, help="only the N most recently enqueued events")
    args = parser.parse_args(argv)
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                config = json.load(handle)
        except (OSError, ValueError) as exc:
            parser.error(f"--config {args.config} cannot be read: {exc}")
        args.connection_string = config.get("connection_string") or args.connection_string
        args.eventhub = args.eventhub or config.get("eventhub_name")
    if not args.connection_string:
        parser.error("give --connection-string or set TARGET_AZURE_EVENTHUBS_CONNECTION_STRING")
    parts = {
        key.strip().lower(): value
        for key, _, value in (p.partition("=") for p in args.connection_string.split(";"))
    }
    hub = args.eventhub or parts.get("entitypath")
    if not hub:
        parser.error(
            "no event hub named: give --eventhub, eventhub_name in --config, or EntityPath in "
            "the connection string"
        )
    try:
        # One retry: a command someone waits on answers a wrong name or port quickly.
        events = read_all(
            args.connection_string, hub, 60, args.consumer_group, client_options={"retry_total": 1}
        )
    except Exception as exc:  # one line for the user, whatever the SDK raised
        where = parts.get("endpoint", "").removeprefix("sb://").strip("/") or "?"
        reason = reason_line(exc)
        sys.exit(f"Cannot read event hub '{hub}' in namespace '{where}': {reason}")
    events.sort(key=lambda e: (e.enqueued_ms or 0, e.partition_id, e.sequence_number))
    for event in events[-args.last :] if args.last else events:
        head = f"partition {event.partition_id} #{event.sequence_number} id {event.message_id}"
        try:
            body = json.dumps(json.loads(event.body), indent=2, ensure_ascii=False)
        except ValueError:  # not JSON (Avro, say): shown as it is
            body = repr(event.body)
        print(f"{head}\n{body}")
