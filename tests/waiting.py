"""Waiting on a condition instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """True as soon as ``predicate()`` is, False if it is still false after ``timeout`` s.

    The short sleep between polls is the poll's interval, not a synchronisation: the result
    depends only on the condition.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
