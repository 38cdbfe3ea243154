"""Process-wide settings shared by the target's process and its sender process."""

from __future__ import annotations

import gc


def tune_garbage_collector() -> None:
    """Collect rarely: each record allocates many short-lived, acyclic objects, and the
    default thresholds spent a fifth of the reading thread's time in the collector."""
    gc.freeze()  # what is loaded by now (modules, settings) lives for the whole run
    gc.set_threshold(200_000, 50, 100)
