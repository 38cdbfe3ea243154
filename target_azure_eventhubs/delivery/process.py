"""Delivery in a child process, so sending and record processing use both cores.

Python threads share one interpreter lock: the SDK's senders and the record pipeline slow
each other down (measured: ~25k records/s processing alone, ~9k/s with in-process
senders). `DeliveryProcess` offers the `Delivery` interface but runs the real `Delivery` in
a child process (`python -m target_azure_eventhubs.delivery.child`, which imports only
what sending needs, started by `launcher`); events cross a socket pair.

Protocol (pickled tuples on one duplex connection):
- parent -> child: optionally ("preconnect", config) from the command line (see
  `launcher`), then ("init", config, options, logger name, level), ("open", hub),
  ("submit", hub, items), ("checkpoint", mark), ("trace", headers), ("flush", timeout),
  ("pending",), ("close", timeout); each submitted item is (partition key, body,
  properties), with the content type and message id after them when not the defaults
- child -> parent: ("reply", ok, value) for open/flush/pending/close, in request order, and
  at any time ("released", mark) when a checkpoint is released, ("failed", message) on a
  failure, and every `report_seconds` ("progress", stats).
`open` does not wait for its reply: the child connects while the parent reads, and the
reply is collected when the hub's limits are first needed. The child ignores SIGINT and
SIGTERM (the parent decides how to stop) and exits when the parent goes away.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import subprocess
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from target_azure_eventhubs.delivery import launcher
from target_azure_eventhubs.delivery.encoding import CONTENT_TYPE, Outbound
from target_azure_eventhubs.delivery.outbox import Outbox
from target_azure_eventhubs.delivery.policy import DeliveryOptions, DeliveryStats
from target_azure_eventhubs.errors import DeliveryError

_POLL = 0.1
_REPLY_MARGIN = 2.0  # seconds a reply may take beyond the time its request was given
_OUTBOX_BYTES = 8 << 20
_SUBMIT_EVENTS = 1000  # per message to the child, and at most
_SUBMIT_BYTES = 1 << 20  # of event bodies


class DeliveryProcess:
    """The `Delivery` interface, served by a `Delivery` running in a child process."""

    def __init__(
        self,
        config: Mapping[str, Any],
        options: DeliveryOptions,
        on_released: Callable[[int], None],
        logger: logging.Logger,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.options = options
        self.stats = DeliveryStats()
        self._progress = DeliveryStats()
        self._submitted = 0  # events handed to the sender process
        self._submits: deque[tuple[int, float]] = deque()  # (submitted so far, when)
        self.logger = logger
        self._on_released = on_released
        self._should_stop = should_stop
        self._failure: DeliveryError | None = None
        self._replies: queue.Queue[tuple[bool, Any]] = queue.Queue()
        # Room for a few drains: the parent reads on while the child takes the last one in.
        self._outbox = Outbox(max(1 << 20, min(_OUTBOX_BYTES, options.max_buffered_bytes // 4)))
        self._hubs: dict[str, tuple[list[str], int] | DeliveryError] = {}
        self._opening: deque[str] = deque()  # opens sent, replies not yet collected
        self._used: set[str] = set()  # hubs the target sends to (see connect_early)
        self._closed = False
        self._disconnected = False
        self._init = ("init", dict(config), options, logger.name, logger.getEffectiveLevel())
        self._started = False  # `_start` takes the child: its process, conn and finalizer
        # Replies still due to requests whose wait was given up on (see `_await_reply`):
        # replies come in request order, so the next ones are theirs and are passed over.
        self._stale_replies = 0

    def _start(self) -> None:
        """Take the sender process at the first message, not when built: a target that is
        built and never run (test frameworks build such targets) leaves no process behind."""
        self._started = True
        self._process, self._conn = launcher.take()
        # The child ignores SIGTERM: make sure it cannot outlive an embedding program that
        # never called close().
        self._finalizer = weakref.finalize(self, launcher.kill, self._process)
        self._post(self._init)
        for target, name in ((self._listen, "delivery-listener"), (self._write, "delivery-writer")):
            threading.Thread(target=target, name=name, daemon=True).start()

    # The Delivery interface --------------------------------------------------------------

    def connect_early(self, hub: str) -> None:
        """Start connecting to a hub that may be used; its failure counts only once it is."""
        if hub not in self._hubs and hub not in self._opening:
            self._post(("open", hub))
            self._opening.append(hub)

    def open_hub(self, hub: str) -> None:
        """Connect to a hub that will be used; the reply is collected when next needed."""
        self._used.add(hub)
        self.connect_early(hub)
        self._check_opened(hub)

    def partition_ids(self, hub: str) -> list[str]:
        return self._limits(hub)[0]

    def max_event_bytes(self, hub: str) -> int:
        return self._limits(hub)[1]

    def _limits(self, hub: str) -> tuple[list[str], int]:
        self.open_hub(hub)
        self._collect_opens()
        limits = self._hubs[hub]
        assert not isinstance(limits, DeliveryError)  # raised by _collect_opens
        return limits

    def limits_ready(self, hub: str) -> bool:
        """Whether `max_event_bytes(hub)` would answer without waiting."""
        self._collect_opens(wait=False)
        return hub in self._hubs

    def _collect_opens(self, wait: bool = True) -> None:
        # Replies come in request order: every outstanding open answers before a later
        # request. A hub that cannot be opened fails the run only if it is used.
        while self._opening:
            if not wait and self._replies.empty():
                return
            hub = self._opening[0]
            try:
                self._hubs[hub] = self._await_reply(raise_failure=False, stoppable=True)
            except DeliveryError as error:
                self._hubs[hub] = error
            self._opening.popleft()
        for hub in self._used:
            self._check_opened(hub)

    def _check_opened(self, hub: str) -> None:
        if isinstance(error := self._hubs.get(hub), DeliveryError):
            self._failure = self._failure or error
            raise error

    def submit(self, hub: str, items: Iterable[tuple[str | None, Outbound]]) -> None:
        self.open_hub(hub)
        # Encoding happens in the child: the parent's core is the busier one. Messages of a
        # bounded size keep the child busy sooner and the parent's memory flat.
        chunk: list[tuple[Any, ...]] = []
        size = count = 0
        for key, out in items:
            if out.message_id is None and out.content_type == CONTENT_TYPE:
                chunk.append((key, out.body, out.properties))
            else:  # CloudEvents: its own content type or message id
                chunk.append((key, out.body, out.properties, out.content_type, out.message_id))
            size += len(out.body)
            count += 1
            if len(chunk) >= _SUBMIT_EVENTS or size >= _SUBMIT_BYTES:
                self._post(("submit", hub, chunk))
                chunk, size = [], 0
        if chunk:
            self._post(("submit", hub, chunk))
        if count:
            self._submitted += count
            self._submits.append((self._submitted, time.monotonic()))

    def trace_under(self, headers: Mapping[str, str]) -> None:
        """Make the child's send spans children of the span these headers carry."""
        with contextlib.suppress(DeliveryError):  # a failed child is reported by the run
            self._post(("trace", dict(headers)))

    def checkpoint(self, mark: int) -> None:
        self.raise_if_failed()
        self._post(("checkpoint", mark))

    def flush(self, timeout: float | None = None) -> bool:
        if not self._started:
            return True  # nothing was handed over
        # The child may be busy taking in a submit (its buffer full during an outage): the
        # answer is awaited no longer than asked, plus a margin for the round trip; "not
        # yet" then, and the caller asks again (or stops, at its own deadline).
        deadline = None if timeout is None else time.monotonic() + timeout + _REPLY_MARGIN
        return bool(self._request(("flush", timeout), deadline=deadline))

    def pending_events(self) -> int:
        if self._failure is not None or not self._process_alive():
            return -1
        return int(self._request(("pending",))) if self._started else 0

    @property
    def failure(self) -> DeliveryError | None:
        return self._failure

    def progress(self) -> DeliveryStats:
        """The sender process's counters as it last reported them; what is in flight
        counts from here, where events wait before the sender process takes them in."""
        if self._closed:
            return self.stats
        stats = self._progress
        accepted = stats.events_sent
        while self._submits and self._submits[0][0] <= accepted:
            self._submits.popleft()
        oldest = time.monotonic() - self._submits[0][1] if self._submits else 0.0
        return dataclasses.replace(
            stats, in_flight=self._submitted - accepted, oldest_unacknowledged=oldest
        )

    def raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if not self._process_alive() and not self._closed:
            self._failure = DeliveryError(
                f"the delivery process stopped unexpectedly (exit code {self._process.returncode})"
            )
            raise self._failure

    def close(self, timeout: float = 10.0) -> None:
        if self._closed or not self._started:
            self._closed = True
            return
        try:
            # Even after a failure: the child must stop its senders and exit. It gets
            # `timeout` for sends in flight; if it cannot even answer, it is killed.
            stats = self._request(
                ("close", timeout),
                raise_failure=False,
                after_failure=True,
                deadline=time.monotonic() + timeout + _REPLY_MARGIN,
            )
            if isinstance(stats, DeliveryStats):
                self.stats = stats
        except DeliveryError:
            pass  # the child is gone: its statistics are lost, nothing else is
        self._closed = True
        self._outbox.put(None)
        with contextlib.suppress(subprocess.TimeoutExpired):  # the finalizer kills it
            self._process.wait(2.0)
        self._finalizer()

    # Plumbing ----------------------------------------------------------------------------

    def _post(
        self, message: tuple[Any, ...], after_failure: bool = False, deadline: float | None = None
    ) -> bool:
        """Queue a message for the writer thread; waits (stoppably) when the child is busy.
        False when `deadline` passed first: nothing was queued, no reply is due."""
        if not self._started:
            self._start()
        data = _dumps(message)
        while True:
            if not after_failure:
                self.raise_if_failed()
            elif not self._process_alive():
                raise DeliveryError("the delivery process has exited")
            if self._outbox.put(data, timeout=_POLL):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if self._should_stop() and message[0] == "submit":
                msg = "stopped while waiting to hand events to the sender"
                raise DeliveryError(msg)

    def _request(
        self,
        message: tuple[Any, ...],
        raise_failure: bool = True,
        after_failure: bool = False,
        deadline: float | None = None,
    ) -> Any:
        if not after_failure:
            self._collect_opens()
        if not self._post(message, after_failure, deadline):
            return False  # not even handed over in time: a timed-out flush or close
        if after_failure:
            while self._opening:  # answers still due to opens nobody collected
                self._opening.popleft()
                self._await_reply(raise_failure=False, deadline=deadline)
        return self._await_reply(raise_failure, deadline)

    def _await_reply(
        self, raise_failure: bool = True, deadline: float | None = None, stoppable: bool = False
    ) -> Any:
        """The next reply; False (a timed-out flush) once `deadline` has passed, and the
        reply, when it comes, is passed over. `stoppable`: a termination signal ends the
        wait (an open the child retries); the reply stays due."""
        while True:
            try:
                ok, value = self._replies.get(timeout=_POLL)
                if self._stale_replies:
                    self._stale_replies -= 1
                    continue
            except queue.Empty:
                if not self._process_alive():
                    raise DeliveryError(
                        "the delivery process stopped unexpectedly "
                        f"(exit code {self._process.returncode})"
                    ) from None
                if self._disconnected and self._replies.empty():
                    raise DeliveryError("the sender process closed its connection") from None
                if deadline is not None and time.monotonic() >= deadline:
                    self._stale_replies += 1
                    return False
                if stoppable and self._should_stop():
                    raise DeliveryError("stopped while the sender process was connecting") from None
                continue
            if ok:
                return value
            error = DeliveryError(value)
            if raise_failure:
                self._failure = self._failure or error
            raise error

    def _process_alive(self) -> bool:
        # Until the connection ends the child is alive: no system call per input chunk.
        return not self._started or not self._disconnected or self._process.poll() is None

    def _write(self) -> None:
        while (data := self._outbox.get()) is not None:
            try:
                self._conn.send_bytes(data)
            except OSError:
                return
            finally:
                self._outbox.sent(data)

    def _listen(self) -> None:
        try:
            while True:
                kind, *rest = self._conn.recv()
                if kind == "released":
                    kind, rest = self._release_through(rest[0])
                    if kind is None:
                        continue
                if kind == "progress":
                    self._progress = rest[0]
                elif kind == "failed":
                    self._failure = self._failure or DeliveryError(rest[0])
                else:
                    self._replies.put((rest[0], rest[1]))
        except (EOFError, OSError):
            pass
        except BaseException as exc:  # whatever it is, the run must fail, never wait
            message = f"the sender process's listener stopped: {type(exc).__name__}: {exc}"
            self._failure = self._failure or DeliveryError(message[:500])
            self._replies.put((False, message[:500]))
        finally:
            self._disconnected = True

    def _release_through(self, mark: int) -> tuple[Any, list[Any]]:
        """Release `mark` and the marks already waiting behind it at once (one commit and
        one STATE for them all); returns the message that ended the run of releases."""
        following: tuple[Any, list[Any]] = (None, [])
        try:
            while self._conn.poll():
                kind, *rest = self._conn.recv()
                if kind != "released":
                    following = (kind, rest)
                    break
                mark = rest[0]
        finally:  # the connection may end here: what was accepted is still released
            self._on_released(mark)
        return following


def _dumps(message: tuple[Any, ...]) -> bytes:
    from multiprocessing.reduction import ForkingPickler  # noqa: PLC0415

    return bytes(ForkingPickler.dumps(message))
