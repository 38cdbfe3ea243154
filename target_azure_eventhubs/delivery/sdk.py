"""The private parts of `azure-eventhub` that delivery needs, in one place.

Every use of a private attribute of the SDK is here, each for a reason its public API cannot
serve; `tests/unit/delivery/test_sdk_adapter.py` fails, naming the attribute, when a release
of the SDK changes one of them.

- `send_once`: `EventHubProducerClient.send_batch` resends a batch at once, with no backoff,
  whenever the first send raises an `EventHubError` (it rebuilds the partition's producer
  and sends again). A batch refused as server-busy is then refused twice within
  milliseconds, where the service asks for 4 s. Sending through the partition's producer
  sends exactly once, and delivery's own retry loop decides when to send again.
- `warm_up`: the first send to a partition pays for a connect, CBS and attach; opening the
  partition's producer up front moves that cost out of the first batch.
- `fill_batch`: `EventDataBatch.add` converts and encodes each event twice (once to measure,
  once to append); appending already-encoded events to the batch's data sections halves
  the CPU cost of batching.
- `confirm_sender_link`: `create_batch` attaches a sender link but does not wait for the
  service to refuse it (no Send right, unknown hub); `--check` and start-up need that answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from azure.eventhub import EventDataBatch, EventHubProducerClient

ALL_PARTITIONS = "all-partitions"  # the SDK's key for its partition-less producer
_ATTACHED = 3  # pyamqp LinkState.ATTACHED


def send_once(
    client: EventHubProducerClient, batch: EventDataBatch, partition_id: str | None, timeout: float
) -> None:
    """Send `batch` once, to its partition (or to the service's choice without one)."""
    key = partition_id or ALL_PARTITIONS
    producers: dict[str, Any] = client._producers
    producer = producers.get(key)
    if producer is None or producer.closed:
        producers.setdefault(key, None)  # _start_producer expects the key
        client._start_producer(key, timeout)
        producer = producers[key]
    producer.send(batch, timeout=timeout)


def warm_up(
    client: EventHubProducerClient, partition_ids: Sequence[str], owned: Iterable[str]
) -> None:
    """Tell the client the hub's partitions (sparing its own lookup) and open a producer for
    each partition in `owned`; best effort: the first send connects, and retries, anyway."""
    try:
        client._partition_ids = list(partition_ids)
        producers: dict[str, Any] = client._producers
        for partition_id in partition_ids:
            producers.setdefault(partition_id, None)
    except AttributeError:
        return
    for partition_id in owned:
        try:
            client._start_producer(partition_id, None)
            producers[partition_id]._open_with_retry()
        except Exception:
            continue


def batch_size(batch: EventDataBatch) -> int:
    """The batch's size by the SDK's own accounting (envelope and events)."""
    return int(batch._size)


def append_encoded(batch: EventDataBatch, encoded: Sequence[bytes], size: int) -> None:
    """Append encoded events to the batch's data sections; `size` is its size after them."""
    batch._message[5].extend(encoded)  # BatchMessage.data
    batch._size = size
    batch._count += len(encoded)


def confirm_sender_link(client: EventHubProducerClient, wait: float) -> None:
    """Raise the service's refusal of the sender link `create_batch` attached, if it comes
    within `wait` seconds of the last frame seen."""
    try:
        handler: Any = client._producers[ALL_PARTITIONS]._handler  # type: ignore[union-attr]
        link: Any = handler._link
        connection: Any = handler._connection
        seen = connection._last_frame_received_time
    except (AttributeError, KeyError):  # the first send will tell
        return
    deadline = time.monotonic() + wait
    transport: Any = client._amqp_transport
    try:
        while link.get_state().value == _ATTACHED:  # get_state raises the link's error
            if connection._last_frame_received_time != seen or time.monotonic() > deadline:
                return
            connection.listen(wait=0.05)
    except Exception as exc:
        raise transport._create_eventhub_exception(exc) from exc
    raise transport._create_eventhub_exception(ConnectionError("the sender link was detached"))
