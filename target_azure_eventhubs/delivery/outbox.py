"""The target's messages to its sender process, waiting for the writer thread: bounded in
bytes (what is being written counts too), so the reader waits instead of memory growing."""

from __future__ import annotations

import threading
from collections import deque


class Outbox:
    """Pickled messages for the writer thread, bounded in bytes (in flight included)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: deque[bytes | None] = deque()
        self._bytes = 0
        self._cond = threading.Condition()

    def put(self, data: bytes | None, timeout: float | None = None) -> bool:
        """Queue `data` (None ends the writer); False if there was no room within `timeout`."""
        size = len(data) if data is not None else 0
        with self._cond:
            if not self._cond.wait_for(lambda: self._has_room(size), timeout):
                return False
            self._items.append(data)
            self._bytes += size
            self._cond.notify_all()
            return True

    def _has_room(self, size: int) -> bool:
        return size == 0 or self._bytes == 0 or self._bytes + size <= self._limit

    def get(self) -> bytes | None:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items))
            return self._items.popleft()

    def sent(self, data: bytes) -> None:
        with self._cond:
            self._bytes -= len(data)
            self._cond.notify_all()
