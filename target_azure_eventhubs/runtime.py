"""Process-wide settings shared by the target's process and its sender process."""

from __future__ import annotations

import gc
import time

_started: float | None = None


def mark_start() -> None:
    """Note when the command started (monotonic clock), before its slow imports."""
    global _started  # noqa: PLW0603  (one start per process)
    if _started is None:
        _started = time.monotonic()


def started() -> float | None:
    """When the command started, if `mark_start` was called."""
    return _started


def tune_garbage_collector() -> None:
    """Collect rarely: each record allocates many short-lived, acyclic objects, and the
    default thresholds spent a fifth of the reading thread's time in the collector."""
    gc.freeze()  # what is loaded by now (modules, settings) lives for the whole run
    gc.set_threshold(200_000, 50, 100)
