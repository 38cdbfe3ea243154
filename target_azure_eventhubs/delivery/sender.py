"""Delivery: sending events to Event Hubs, retrying, and releasing STATE only after acceptance.

Design, so that correctness does not depend on the callers' threads:
- Every event gets a global sequence number when it is submitted.
- Each (event hub, partition) has a FIFO queue. Exactly one sender thread owns a queue and
  one `EventHubProducerClient` (the SDK's clients are not thread-safe), so per-partition
  order is kept and no client is ever shared.
- An event leaves its queue only when Event Hubs has accepted the batch holding it. The
  smallest sequence number still queued anywhere is therefore the acknowledgement
  watermark; a checkpoint mark registered by `checkpoint()` is released (`on_released`)
  once the watermark passes the events submitted before it. The target writes STATE and
  commits change-tracking decisions only when their mark is released.
- The SDK's own retries are switched off (`retry_total=0`); `policy` decides what is retried
  and how long to wait.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from azure.eventhub import EventDataBatch, EventHubProducerClient

from target_azure_eventhubs.delivery import sdk, tracing
from target_azure_eventhubs.delivery.connection import ConnectionSpec
from target_azure_eventhubs.delivery.encoding import Outbound, fill_batch
from target_azure_eventhubs.delivery.pacing import Pacer
from target_azure_eventhubs.delivery.partitioning import partitions_for_keys
from target_azure_eventhubs.delivery.policy import (
    DeliveryOptions,
    DeliveryStats,
    backoff_delay,
    classify,
    describe_failure,
    reason_line,
)
from target_azure_eventhubs.delivery.probe import probe_with_retries
from target_azure_eventhubs.errors import DeliveryError

_POLL = 0.05  # how often waiting threads re-check for stop and failure
_METRICS = logging.getLogger("singer_sdk.metrics")  # where singer-sdk logs METRIC lines


class _Queue:
    """Events for one partition (or one round-robin lane), owned by one sender."""

    __slots__ = ("events", "label", "partition_id")

    def __init__(self, partition_id: str | None, label: str) -> None:
        self.partition_id = partition_id
        self.label = label
        self.events: deque[Outbound] = deque()


class Delivery:
    """Sends events to one or more event hubs of a namespace; see the module docstring."""

    def __init__(
        self,
        spec: ConnectionSpec,
        options: DeliveryOptions,
        on_released: Callable[[int], None],
        logger: logging.Logger | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.spec = spec
        self._should_stop = should_stop
        self.options = options
        self.stats = DeliveryStats()
        self.logger = logger or logging.getLogger("target_azure_eventhubs.delivery")
        self._on_released = on_released
        self._cond = threading.Condition()
        self._emit_lock = threading.Lock()
        self._hubs: dict[str, _HubSender] = {}
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._buffered_bytes = 0
        self._marks: deque[tuple[int, int]] = deque()  # (last sequence number, mark)
        self._state_serial = 0
        self._emitted_serial = 0
        self._releasing = 0  # marks taken for release whose `on_released` has not returned
        self._failure: DeliveryError | None = None
        self._closing = False
        self._stopped = threading.Event()
        self._trace_parent: Any = None  # the run's tracing context, see `trace_under`
        self._pacer = Pacer(options.pace) if options.pace else None  # shared by all hubs

    # Public API (called from the target's main thread) ---------------------------------

    def open_hub(self, hub: str) -> None:
        """Connect to a hub up front: fails fast on bad credentials or a missing hub."""
        if hub not in self._hubs:
            if self._closing:
                raise DeliveryError(f"cannot open event hub '{hub}': delivery is closed")
            sender = _HubSender(self, hub)
            sender.start()
            self._hubs[hub] = sender

    def partition_ids(self, hub: str) -> list[str]:
        self.open_hub(hub)
        return self._hubs[hub].partition_ids

    def max_event_bytes(self, hub: str) -> int:
        self.open_hub(hub)
        return self._hubs[hub].max_batch_bytes

    def limits_ready(self, hub: str) -> bool:
        return True  # open_hub connects before it returns

    def submit(self, hub: str, items: Iterable[tuple[str | None, Outbound]]) -> None:
        """Queue events as (partition key, event); blocks while the buffer is full."""
        self.open_hub(hub)
        sender = self._hubs[hub]
        events = list(items)
        # Outside the lock, which the senders need to acknowledge.
        for _, out in events:
            out.encode()
        routes = sender.partition_indexes([key for key, _ in events])
        now = time.monotonic()
        with self._cond:
            for (_, out), index in zip(events, routes, strict=True):
                self._wait_for_room(out.size)
                out.seq = next(self._seq)
                out.queued_at = now
                self._last_seq = out.seq
                sender.queue_for(index, out.seq).events.append(out)
                self._buffered_bytes += out.size
            self._cond.notify_all()

    def trace_under(self, headers: Mapping[str, str]) -> None:
        """Make the sends' tracing spans children of the span these headers carry."""
        self._trace_parent = tracing.parent_from(headers)

    def checkpoint(self, mark: int) -> None:
        """Release `mark` once every event submitted so far has been accepted.

        Marks increase; only the latest mark ready is released, and it covers the earlier.
        """
        with self._cond:
            self._raise_if_failed()
            self._marks.append((self._last_seq, mark))
        self._release_states()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted is accepted and the marks it covers released
        (`on_released` returned); False on timeout. Raises on failure."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._buffered_bytes > 0:
                self._raise_if_failed()
                if not self._wait(deadline):
                    return False
            self._raise_if_failed()
        self._release_states()
        with self._cond:  # a sender thread may be releasing the last mark right now
            while self._releasing:
                if not self._wait(deadline):
                    return False
        return True

    def _wait(self, deadline: float | None) -> bool:
        """Wait on the condition (its lock held) until notified or polled; False once
        `deadline` has passed."""
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        self._cond.wait(_POLL if remaining is None else min(_POLL, remaining))
        return True

    def pending_events(self) -> int:
        with self._cond:
            return sum(len(q.events) for h in self._hubs.values() for q in h.queues())

    @property
    def failure(self) -> DeliveryError | None:
        """Why delivery stopped for good, if it did (no STATE is written after it)."""
        return self._failure

    def raise_if_failed(self) -> None:
        with self._cond:
            self._raise_if_failed()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the senders and close their clients; whatever is still queued stays unsent.

        Unsent events stop STATE for good, and stop the senders' retries: a shutdown must
        not wait for the whole retry budget (an in-flight send gets up to `timeout`).
        """
        with self._cond:
            self._closing = True
            if self._buffered_bytes > 0 and self._failure is None:
                self._failure = DeliveryError("stopped with events not yet accepted")
            self._cond.notify_all()
        self._stopped.set()
        deadline = time.monotonic() + timeout
        for sender in self._hubs.values():
            sender.join(max(0.0, deadline - time.monotonic()))

    # Internals shared with the senders ----------------------------------------------------

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _wait_for_room(self, size: int) -> None:
        # Back-pressure: the reader waits instead of the buffer growing without bound.
        limit = self.options.max_buffered_bytes
        while self._buffered_bytes > 0 and self._buffered_bytes + size > limit:
            self._raise_if_failed()
            if self._should_stop():
                raise DeliveryError("stopped while waiting for room in the send buffer")
            self._cond.wait(_POLL)
        self._raise_if_failed()

    def _fail(self, error: DeliveryError) -> None:
        with self._cond:
            if self._failure is None:
                self._failure = error
            self._cond.notify_all()
        self._stopped.set()

    def _acknowledge(self, hub: str, queue: _Queue, count: int) -> None:
        with self._cond:
            size = 0
            for _ in range(count):
                size += queue.events.popleft().size
            self._buffered_bytes -= size
            self.stats.count_batch(hub, queue.label, count, size)
            self._cond.notify_all()
        self._release_states()

    def progress(self) -> DeliveryStats:
        """A copy of the counters, with what is in flight now."""
        now = time.monotonic()
        with self._cond:
            queues = [q for h in self._hubs.values() for q in h.queues()]
            heads = [q.events[0].queued_at for q in queues if q.events]
            return dataclasses.replace(
                self.stats,
                per_partition=dict(self.stats.per_partition),
                per_hub=dict(self.stats.per_hub),
                in_flight=sum(len(q.events) for q in queues),
                oldest_unacknowledged=now - min(heads) if heads else 0.0,
            )

    def _watermark(self) -> int:
        """Every event with a sequence number below this has been accepted."""
        heads = [q.events[0].seq for h in self._hubs.values() for q in h.queues() if q.events]
        return min(heads) if heads else self._last_seq + 1

    def _release_states(self) -> None:
        with self._cond:
            if self._failure is not None or not self._marks:
                return
            watermark = self._watermark()
            ready = None
            while self._marks and self._marks[0][0] < watermark:
                ready = self._marks.popleft()[1]
            if ready is None:
                return
            self._state_serial += 1
            serial = self._state_serial
            self._releasing += 1
        try:
            with self._emit_lock:
                # Two threads may race here; only ever move forward.
                if serial > self._emitted_serial:
                    self._emitted_serial = serial
                    self._on_released(ready)
        finally:
            with self._cond:
                self._releasing -= 1
                self._cond.notify_all()


class _HubSender:
    """The partitions of one event hub and the sender threads that own them."""

    def __init__(self, delivery: Delivery, hub: str) -> None:
        self.delivery = delivery
        self.hub = hub
        self.partition_ids: list[str] = []
        self.max_batch_bytes = 0
        self._by_partition: dict[str, _Queue] = {}
        self._lanes: list[_Queue] = []
        self._threads: list[threading.Thread] = []

    def queues(self) -> list[_Queue]:
        return self._lanes or list(self._by_partition.values())

    def partition_indexes(self, keys: list[str | None]) -> list[int | None]:
        """The partition (index into partition_ids) of each key; None where any will do."""
        if self._lanes:
            return [None] * len(keys)
        keyed = [key for key in keys if key is not None]
        if not keyed:
            return [None] * len(keys)
        found = iter(partitions_for_keys(keyed, len(self.partition_ids)))
        return [None if key is None else next(found) for key in keys]

    def queue_for(self, index: int | None, seq: int) -> _Queue:
        if self._lanes:
            return self._lanes[seq % len(self._lanes)]
        if index is None:
            return self._by_partition[self.partition_ids[seq % len(self.partition_ids)]]
        return self._by_partition[self.partition_ids[index]]

    def start(self) -> None:
        options = self.delivery.options
        d = self.delivery
        limits = probe_with_retries(d.spec, self.hub, options, d.logger, d._stopped, d._should_stop)
        self.partition_ids, largest = limits.partition_ids, limits.max_message_size
        self.max_batch_bytes = min(largest, options.max_batch_size_bytes or largest)
        workers = max(1, min(options.max_parallel_sends, len(self.partition_ids)))
        if options.round_robin:
            self._lanes = [_Queue(None, "round-robin") for _ in range(workers)]
            assignments = [[lane] for lane in self._lanes]
        else:
            self._by_partition = {p: _Queue(p, p) for p in self.partition_ids}
            assignments = [list(self._by_partition.values())[i::workers] for i in range(workers)]
        for index, queues in enumerate(assignments):
            thread = threading.Thread(
                target=_Sender(self, queues).run,
                name=f"eventhubs-send-{self.hub}-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        self.delivery.logger.info(
            "Connected to %s: %d partitions, batches up to %d bytes, %d sender(s)%s",
            self.delivery.spec.describe(self.hub),
            len(self.partition_ids),
            self.max_batch_bytes,
            workers,
            f", paced to {options.pace.describe()} per namespace" if options.pace else "",
        )

    def _new_client(self) -> EventHubProducerClient:
        # Our retry loop owns retries; the SDK's would resend without backoff.
        return self.delivery.spec.create_producer(self.hub, retry_total=0)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Sender:
    """One thread: builds batches from its queues, sends, retries, acknowledges."""

    def __init__(self, hub: _HubSender, queues: list[_Queue]) -> None:
        self.hub = hub
        self.delivery = hub.delivery
        self.queues = queues
        self.client: EventHubProducerClient | None = None
        self._next = 0

    def run(self) -> None:
        try:
            self._warm_up()
            while (queue := self._next_queue()) is not None:
                batch, count = self._build_batch(queue)
                started = time.monotonic()
                self._send_with_retry(batch, queue)
                self.delivery._acknowledge(self.hub.hub, queue, count)
                self._log_batch(queue, count, time.monotonic() - started)
        except DeliveryError as error:
            self.delivery._fail(error)
        except Exception as exc:  # a bug must still stop STATE, loudly
            self.delivery._fail(
                DeliveryError(f"sender for event hub '{self.hub.hub}' crashed: {reason_line(exc)}")
            )
        finally:
            if self.client is not None:
                self.client.close()

    def _log_batch(self, queue: _Queue, count: int, seconds: float) -> None:
        """A Singer timer metric per accepted batch (singer-sdk's METRIC line format)."""
        if _METRICS.isEnabledFor(logging.INFO):
            tags = {"eventhub": self.hub.hub, "partition": queue.label, "events": count}
            point = {"type": "timer", "metric": "batch_send_duration", "value": seconds}
            _METRICS.info("METRIC: %s", orjson.dumps({**point, "tags": tags}).decode())

    def _warm_up(self) -> None:
        # The first send to a partition costs a connect, CBS and attach: pay it up front.
        self.client = self.hub._new_client()
        owned = [queue.partition_id for queue in self.queues if queue.partition_id is not None]
        sdk.warm_up(self.client, self.hub.partition_ids, owned)

    def _next_queue(self) -> _Queue | None:
        cond = self.delivery._cond
        with cond:
            while True:
                if self.delivery._failure is not None:
                    return None
                for offset in range(len(self.queues)):
                    queue = self.queues[(self._next + offset) % len(self.queues)]
                    if queue.events:
                        self._next = (self._next + offset + 1) % len(self.queues)
                        return queue
                if self.delivery._closing:
                    return None
                cond.wait(_POLL)

    def _build_batch(self, queue: _Queue) -> tuple[EventDataBatch, int]:
        assert self.client is not None
        with self.delivery._cond:
            # Only this thread removes from the queue: a snapshot of its head is stable.
            heads = itertools.islice(queue.events, 0, 8192)
            pacer = self.delivery._pacer
            pending = [out.encoded for out in (heads if pacer is None else pacer.cut(heads))]
        # The constructor, not client.create_batch(): that would open one more link just to
        # read the maximum message size, which the hub sender already knows.
        batch = EventDataBatch(
            max_size_in_bytes=self.hub.max_batch_bytes, partition_id=queue.partition_id
        )
        count = fill_batch(batch, pending)
        if count == 0:
            raise DeliveryError(
                f"an event of {len(pending[0])} bytes does not fit in a batch of "
                f"{self.hub.max_batch_bytes} bytes for event hub '{self.hub.hub}'"
            )
        return batch, count

    def _send_with_retry(self, batch: EventDataBatch, queue: _Queue) -> None:
        options = self.delivery.options
        attempt = 0
        while True:
            if self.delivery._stopped.is_set() and self.delivery._failure is not None:
                raise DeliveryError("stopped before the batch was accepted")
            if self.delivery._pacer is not None:  # each attempt counts against the budget
                size = sdk.batch_size(batch)
                self.delivery._pacer.acquire(len(batch), size, self.delivery._stopped.wait)
            try:
                self._send(batch, queue)
                return
            except Exception as exc:
                kind = classify(exc)
                if kind == "fatal":
                    raise DeliveryError(
                        describe_failure(exc, self.delivery.spec, self.hub.hub)
                    ) from exc
                attempt += 1
                self.delivery.stats.retries += 1
                if kind == "throttled":
                    self.delivery.stats.throttled += 1
                if attempt > options.max_retries:
                    raise DeliveryError(
                        f"Gave up after {options.max_retries} retries of a batch for partition "
                        f"{queue.label}. "
                        f"{describe_failure(exc, self.delivery.spec, self.hub.hub)}"
                    ) from exc
                delay = backoff_delay(attempt, kind, options)
                self.delivery.logger.warning(
                    "Send of %d events to %s partition %s failed (%s, %s); retry %d/%d in %.1f s",
                    len(batch),
                    self.hub.hub,
                    queue.label,
                    kind,
                    reason_line(exc),
                    attempt,
                    options.max_retries,
                    delay,
                )
                if self.delivery._stopped.wait(delay) and self.delivery._failure is not None:
                    raise DeliveryError("stopped before the batch was accepted") from exc
                if kind == "transient":
                    self._reconnect()

    def _send(self, batch: EventDataBatch, queue: _Queue) -> None:
        assert self.client is not None
        # Once per attempt: send_batch would resend a refused batch at once, with no
        # backoff (see delivery/sdk.py); _send_with_retry decides when to send again.
        with tracing.within(self.delivery._trace_parent):
            sdk.send_once(
                self.client,
                batch,
                queue.partition_id,
                timeout=self.delivery.options.send_timeout_seconds,
            )

    def _reconnect(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):  # the old connection is already broken
                self.client.close()
        self.client = self.hub._new_client()
