"""The sender process: a `Delivery` serving the target's `DeliveryProcess` (see there for
the protocol), run as `python -m target_azure_eventhubs.delivery.child FD` by `launcher`.

It imports only what sending needs, not singer-sdk, so that it starts while the target
loads; with ("preconnect", config) first, it connects meanwhile (`_EarlyConnection`).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from target_azure_eventhubs.delivery import tracing
from target_azure_eventhubs.delivery.connection import ConnectionSpec, connection_from_config
from target_azure_eventhubs.delivery.encoding import Outbound
from target_azure_eventhubs.delivery.policy import DeliveryOptions, options_from_config
from target_azure_eventhubs.delivery.sender import Delivery
from target_azure_eventhubs.errors import DeliveryError

_LOG_FORMAT = "%(asctime)s | %(levelname)-8s | %(name)-30s | %(message)s"
_TARGET_LOGGER = "target-azure-eventhubs"


def main(conn: Connection) -> None:
    # The parent owns stdout (Singer messages) and signals (its shutdown decides).
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Until the target sends its level: the same environment variables singer-sdk reads.
    env_level = os.environ.get("TARGET_AZURE_EVENTHUBS_LOGLEVEL") or os.environ.get("LOGLEVEL")
    logging.basicConfig(level=(env_level or "INFO").upper(), format=_LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("azure").setLevel(logging.WARNING)
    tracing.setup(None)  # the parent's variables; the parent warns about them
    from target_azure_eventhubs.runtime import tune_garbage_collector  # noqa: PLC0415

    tune_garbage_collector()
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:  # sender threads and this loop both write to the connection
            conn.send(message)

    def on_released(mark: int) -> None:
        send(("released", mark))

    try:
        message = conn.recv()
        early = None
        if message[0] == "preconnect":
            early = _EarlyConnection(message[1], on_released)
            message = conn.recv()
        _, config, options, logger_name, level = message
    except (EOFError, OSError):
        return
    logging.getLogger().setLevel(level)
    logger = logging.getLogger(logger_name)
    spec = connection_from_config(config)
    delivery = early.adopt(spec, options, logger) if early is not None else None
    if delivery is None:
        delivery = Delivery(spec, options, on_released, logger)
    _serve(conn, delivery, send)


class _EarlyConnection:
    """Connects to the default hub with the command line's settings, in a thread, while
    the target process loads; kept only if the validated settings agree."""

    def __init__(self, config: dict[str, Any], on_released: Callable[[int], None]) -> None:
        self.spec: ConnectionSpec | None = None
        self.options: DeliveryOptions | None = None
        self._on_released = on_released
        self._delivery: Delivery | None = None
        self._abandoned = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._connect, name="early-connect", daemon=True)
        try:
            spec, options = connection_from_config(config), options_from_config(config)
        except Exception:  # the target validates the settings and says what is wrong
            return
        if spec.credential is None and spec.default_eventhub:
            self.spec, self.options = spec, options
            self._thread.start()

    def _connect(self) -> None:
        assert self.spec is not None and self.options is not None
        logger = logging.getLogger(_TARGET_LOGGER)
        delivery = Delivery(self.spec, self.options, self._on_released, logger)
        try:
            delivery.open_hub(str(self.spec.default_eventhub))
        except Exception:  # the target connects again and reports it
            delivery.close(timeout=1.0)
            return
        with self._lock:
            if not self._abandoned:
                self._delivery = delivery
                return
        delivery.close(timeout=1.0)

    def adopt(
        self, spec: ConnectionSpec, options: DeliveryOptions, logger: logging.Logger
    ) -> Delivery | None:
        """The early delivery if it was made for `spec` and `options`; else None."""
        if self.spec is None:
            return None
        if spec != self.spec or options != self.options:
            logger.debug("Settings differ from the command line's: connecting again")
            with self._lock:  # not waiting for it: it may be stuck on a wrong address
                self._abandoned = True
                delivery, self._delivery = self._delivery, None
            if delivery is not None:
                delivery.close(timeout=1.0)
            return None
        self._thread.join()  # what connecting now would wait for anyway
        if self._delivery is None:
            return None
        logger.debug("Sending over the connection opened while the target loaded")
        self._delivery.logger = logger
        return self._delivery


def _report_progress(
    delivery: Delivery, send: Callable[[tuple[Any, ...]], None], stop: threading.Event
) -> None:
    while not stop.wait(delivery.options.report_seconds):
        try:
            send(("progress", delivery.progress()))
        except OSError:  # the parent is gone
            return


def _serve(conn: Connection, delivery: Delivery, send: Callable[[tuple[Any, ...]], None]) -> None:
    stop = threading.Event()
    if delivery.options.report_seconds:
        threading.Thread(
            target=_report_progress, args=(delivery, send, stop), name="progress", daemon=True
        ).start()
    try:
        _serve_requests(conn, delivery, send)
    finally:
        stop.set()


def _serve_requests(
    conn: Connection, delivery: Delivery, send: Callable[[tuple[Any, ...]], None]
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
                hub = args[0]
                delivery.open_hub(hub)
                send(("reply", True, (delivery.partition_ids(hub), delivery.max_event_bytes(hub))))
            elif kind == "submit":
                items = ((item[0], Outbound(*item[1:])) for item in args[1])
                delivery.submit(args[0], items)
            elif kind == "checkpoint":
                delivery.checkpoint(args[0])
            elif kind == "flush":
                send(("reply", True, delivery.flush(args[0])))
            elif kind == "pending":
                send(("reply", True, delivery.pending_events()))
            elif kind == "trace":
                delivery.trace_under(args[0])
            elif kind == "close":
                delivery.close(args[0])
                tracing.flush(timeout=5.0)  # before the parent stops waiting for this process
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


if __name__ == "__main__":
    main(Connection(int(sys.argv[1])))
