"""How a run ends: termination signals, the shutdown bound, and the exit code.

A signal never writes anything itself: it asks the run to stop reading, and starts the
clock of `shutdown_timeout_seconds`. Every wait after it (sends in flight, the final flush,
closing the sender process) takes what is left of that bound, so the run ends within it
plus the time to close. A signalled run exits 128 + the signal, even when everything it
read was accepted: the pipeline was cancelled, and must not report success.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Shutdown:
    def __init__(self, timeout: float, logger: logging.Logger) -> None:
        self.timeout = timeout  # shutdown_timeout_seconds
        self.logger = logger
        self.signal: int | None = None  # the termination signal received, if any
        self._deadline: float | None = None

    @property
    def requested(self) -> bool:
        """Whether a signal asked the run to stop."""
        return self.signal is not None

    def install(self) -> None:
        """Take SIGINT and SIGTERM over from singer-sdk, whose handler drains and exits 0."""
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                signal.signal(signum, self._on_signal)

    def start_clock(self) -> None:
        """Bound what is left of the run (a signal, or saving records after an error)."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self.timeout

    def remaining(self) -> float | None:
        """Seconds left before the run must end; None while it is unbounded."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def close_timeout(self, failed: bool) -> float:
        """How long closing may wait for sends in flight: after an error or a signal, what
        is left of the bound (nothing more will be written for them anyway)."""
        remaining = self.remaining()
        if remaining is not None:
            return max(1.0, remaining)
        return min(10.0, self.timeout) if failed else 10.0

    def exit_code(self, code: int) -> int:
        if self.signal is None:
            return code
        if code == 0:
            self.logger.warning(
                "Stopped on %s: every event read was accepted and its STATE written; exit "
                "code %d (the run did not read its whole input)",
                signal.Signals(self.signal).name,
                128 + self.signal,
            )
        return 128 + self.signal

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:  # a second signal: stop now, writing nothing more
            self.logger.error("Second termination signal: exiting without waiting for sends")
            os._exit(128 + signum)
        self.signal = signum
        self._deadline = time.monotonic() + self.timeout
        self.logger.warning(
            "Received %s: stopping; sends of what was read may take up to %s s "
            "(shutdown_timeout_seconds), then only the STATE they cover is written",
            signal.Signals(signum).name,
            self.timeout,
        )
