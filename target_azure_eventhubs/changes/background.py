"""Store calls that need not hold up the reading thread, run in order on one thread.

A batch's stored digests are asked for before its profiles are compared, and read while
they are; its seen rows are written while the next batch is read. The store's round trips
(a PostgreSQL server, SQLite's own work) then overlap the target's Python work instead of
adding to it. A failed call fails the next call that waits (`settle`, or the next batch).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from target_azure_eventhubs.changes.store import ChangeStore, RowsDigest, Seen, Stored


class Background:
    def __init__(self, store: ChangeStore) -> None:
        self._store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="change-store")
        self._writes: deque[Future[None]] = deque()

    def digests(self, stream: str, keys: Sequence[str]) -> Future[dict[str, Stored]]:
        """The stored digests of `keys`, once the writes asked for before are done."""
        self.raise_failed()
        return self._thread.submit(self._store.digests, stream, keys)

    def mark_seen(self, stream: str, seen: Sequence[Seen]) -> None:
        if seen:
            self.raise_failed()
            self._writes.append(self._thread.submit(self._store.mark_seen, stream, seen))

    def note_rows(self, stream: str, rows: Sequence[RowsDigest]) -> None:
        if rows:
            self.raise_failed()
            self._writes.append(self._thread.submit(self._store.note_rows, stream, rows))

    def raise_failed(self) -> None:
        """Raise the error of a write that failed; forget the ones that succeeded."""
        while self._writes and self._writes[0].done():
            self._writes.popleft().result()

    def settle(self) -> None:
        """Wait for every write asked for; raise the first that failed."""
        while self._writes:
            self._writes.popleft().result()

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)
