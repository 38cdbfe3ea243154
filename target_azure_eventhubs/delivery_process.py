"""Delivery in a child process, so sending and record processing use both cores.

Python threads share one interpreter lock: the SDK's senders and the record pipeline slow
each other down (measured: ~25k records/s processing alone, ~9k/s with in-process
senders). `DeliveryProcess` offers the `Delivery` interface but runs the real `Delivery` in
a child process; events cross a pipe already encoded, so the pipe costs a memory copy.

Protocol (pickled tuples on one duplex pipe):
- parent -> child: ("open", hub), ("submit", hub, items), ("checkpoint", state),
  ("flush", timeout), ("pending",), ("close", timeout)
- child -> parent: ("reply", ok, value) for open/flush/pending/close, and at any time
  ("state", state) when a STATE may be written, ("failed", message) on a failure.
The child ignores SIGINT/SIGTERM (the parent decides how to stop) and exits when the
parent goes away.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from target_azure_eventhubs.delivery import Delivery, DeliveryOptions, DeliveryStats, Outbound
from target_azure_eventhubs.errors import DeliveryError

_POLL = 0.1
_LOG_FORMAT = "%(asctime)s | %(levelname)-8s | %(name)-30s | %(message)s"


class DeliveryProcess:
    """The `Delivery` interface, served by a `Delivery` running in a child process."""

    def __init__(
        self,
        config: Mapping[str, Any],
        options: DeliveryOptions,
        emit_state: Callable[[dict[str, Any]], None],
        logger: logging.Logger,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.options = options
        self.stats = DeliveryStats()
        self.logger = logger
        self._emit_state = emit_state
        self._should_stop = should_stop
        self._failure: DeliveryError | None = None
        self._replies: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._hubs: dict[str, tuple[list[str], int]] = {}
        self._closed = False
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_child_main,
            args=(child_conn, dict(config), options, logger.name, logger.getEffectiveLevel()),
            name="eventhubs-delivery",
            daemon=True,
        )
        self._process.start()
        child_conn.close()
        # The child ignores SIGTERM, so multiprocessing's own exit handler could wait for it
        # forever if close() was never called (an embedding program that did not finish).
        self._finalizer = weakref.finalize(self, _kill, self._process)
        for target, name in ((self._listen, "delivery-listener"), (self._write, "delivery-writer")):
            threading.Thread(target=target, name=name, daemon=True).start()

    # The Delivery interface --------------------------------------------------------------

    def open_hub(self, hub: str) -> None:
        if hub not in self._hubs:
            self._hubs[hub] = self._request(("open", hub))

    def partition_ids(self, hub: str) -> list[str]:
        self.open_hub(hub)
        return self._hubs[hub][0]

    def max_event_bytes(self, hub: str) -> int:
        self.open_hub(hub)
        return self._hubs[hub][1]

    def submit(self, hub: str, items: Iterable[tuple[str | None, Outbound]]) -> None:
        self.open_hub(hub)
        payload = [(key, out.encoded) for key, out in items]
        if payload:
            self._post(("submit", hub, payload))

    def checkpoint(self, state: dict[str, Any]) -> None:
        self.raise_if_failed()
        self._post(("checkpoint", state))

    def flush(self, timeout: float | None = None) -> bool:
        return bool(self._request(("flush", timeout)))

    def pending_events(self) -> int:
        if self._failure is not None or not self._process.is_alive():
            return -1
        return int(self._request(("pending",)))

    @property
    def failure(self) -> DeliveryError | None:
        return self._failure

    def raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if not self._process.is_alive() and not self._closed:
            self._failure = DeliveryError(
                f"the delivery process stopped unexpectedly (exit code {self._process.exitcode})"
            )
            raise self._failure

    def close(self, timeout: float = 10.0) -> None:
        if self._closed:
            return
        try:
            # Even after a failure: the child must stop its senders and exit.
            stats = self._request(("close", timeout), raise_failure=False, after_failure=True)
            if isinstance(stats, DeliveryStats):
                self.stats = stats
        except DeliveryError:
            pass  # the child is gone: its statistics are lost, nothing else is
        self._closed = True
        self._outbox.put(None)
        self._process.join(2.0)
        self._finalizer()

    # Plumbing ----------------------------------------------------------------------------

    def _post(self, message: tuple[Any, ...], after_failure: bool = False) -> None:
        """Queue a message for the writer thread; waits (stoppably) when the child is busy."""
        data = _dumps(message)
        while True:
            if not after_failure:
                self.raise_if_failed()
            elif not self._process.is_alive():
                raise DeliveryError("the delivery process has exited")
            try:
                self._outbox.put(data, timeout=_POLL)
                return
            except queue.Full:
                if self._should_stop() and message[0] == "submit":
                    msg = "stopped while waiting to hand events to the sender"
                    raise DeliveryError(msg) from None

    def _request(
        self, message: tuple[Any, ...], raise_failure: bool = True, after_failure: bool = False
    ) -> Any:
        self._post(message, after_failure)
        while True:
            try:
                ok, value = self._replies.get(timeout=_POLL)
            except queue.Empty:
                if not self._process.is_alive():
                    raise DeliveryError(
                        "the delivery process stopped unexpectedly "
                        f"(exit code {self._process.exitcode})"
                    ) from None
                continue
            if ok:
                return value
            error = DeliveryError(value)
            if raise_failure:
                self._failure = self._failure or error
            raise error

    def _write(self) -> None:
        while (data := self._outbox.get()) is not None:
            try:
                self._conn.send_bytes(data)
            except OSError:
                return

    def _listen(self) -> None:
        try:
            while True:
                kind, *rest = self._conn.recv()
                if kind == "state":
                    self._emit_state(rest[0])
                elif kind == "failed":
                    self._failure = self._failure or DeliveryError(rest[0])
                else:
                    self._replies.put((rest[0], rest[1]))
        except (EOFError, OSError):
            return


def _kill(process: multiprocessing.process.BaseProcess) -> None:
    if process.is_alive():
        process.kill()
        process.join(1.0)


def _dumps(message: tuple[Any, ...]) -> bytes:
    from multiprocessing.reduction import ForkingPickler  # noqa: PLC0415

    return bytes(ForkingPickler.dumps(message))


def _child_main(
    conn: Connection,
    config: dict[str, Any],
    options: DeliveryOptions,
    logger_name: str,
    level: int,
) -> None:
    # The parent owns stdout (Singer messages) and signals (its shutdown decides).
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=level, format=_LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("azure").setLevel(logging.WARNING)
    logger = logging.getLogger(logger_name)
    from target_azure_eventhubs.connection import connection_from_config  # noqa: PLC0415
    from target_azure_eventhubs.runtime import tune_garbage_collector  # noqa: PLC0415

    tune_garbage_collector()

    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:  # sender threads and this loop both write to the pipe
            conn.send(message)

    spec = connection_from_config(config)
    delivery = Delivery(spec, options, lambda state: send(("state", state)), logger)
    # Connect while the parent reads its first lines: the first record then waits for
    # nothing, and a refused key is already known.
    early_errors: dict[str, str] = {}
    if spec.default_eventhub:
        try:
            delivery.open_hub(spec.default_eventhub)
        except DeliveryError as error:
            early_errors[spec.default_eventhub] = str(error)
    _serve(conn, delivery, send, early_errors)


def _serve(
    conn: Connection,
    delivery: Delivery,
    send: Callable[[tuple[Any, ...]], None],
    early_errors: dict[str, str],
) -> None:
    reported = False
    while True:
        try:
            kind, *args = conn.recv()
        except (EOFError, OSError):  # the parent is gone: nothing will read a STATE now
            delivery.close(timeout=1.0)
            return
        try:
            if kind == "open":
                if args[0] in early_errors:
                    raise DeliveryError(early_errors.pop(args[0]))
                hub = args[0]
                delivery.open_hub(hub)
                send(("reply", True, (delivery.partition_ids(hub), delivery.max_event_bytes(hub))))
            elif kind == "submit":
                delivery.submit(args[0], ((key, Outbound(encoded)) for key, encoded in args[1]))
            elif kind == "checkpoint":
                delivery.checkpoint(args[0])
            elif kind == "flush":
                send(("reply", True, delivery.flush(args[0])))
            elif kind == "pending":
                send(("reply", True, delivery.pending_events()))
            elif kind == "close":
                delivery.close(args[0])
                send(("reply", True, delivery.stats))
                return
        except DeliveryError as error:
            if kind in {"open", "flush", "pending"}:
                send(("reply", False, str(error)))
            elif not reported:
                send(("failed", str(error)))
                reported = True
        if not reported and delivery.failure is not None:
            send(("failed", str(delivery.failure)))
            reported = True
