"""Checkpoints: marks placed between submitted events, and what is done when delivery
releases one (every event submitted before it was accepted by Event Hubs).

A mark covers the events submitted before it. On release, the change-tracking decisions
of those events are committed to the change store first, then the latest STATE read
before the mark is written to stdout. A failed commit stops both for good: no STATE is
written after it, and the run fails.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from target_azure_eventhubs.changes.tracker import Change, ChangeTracker
from target_azure_eventhubs.errors import TargetError


class Checkpoints:
    def __init__(
        self, emit_state: Callable[[dict[str, Any]], None], tracker: ChangeTracker | None
    ) -> None:
        self._emit_state = emit_state
        self._tracker = tracker
        self._marks = itertools.count(1)
        self._states: deque[tuple[int, dict[str, Any]]] = deque()
        self._changes: list[Change] = []  # of events submitted since the last mark
        self._lock = threading.Lock()
        self.failure: TargetError | None = None

    def note(self, changes: Iterable[Change | None]) -> None:
        """The changes of events just submitted (main thread)."""
        self._changes.extend(change for change in changes if change is not None)

    def place(self, state: dict[str, Any] | None) -> int | None:
        """A mark covering everything submitted so far, for `state` and the changes noted;
        None when there is nothing to place."""
        if state is None and not self._changes:
            return None
        mark = next(self._marks)
        if self._tracker is not None:
            self._tracker.register(mark, self._changes)
        self._changes = []
        if state is not None:  # deque appends are atomic: no wait behind a release
            self._states.append((mark, state))
        return mark

    def release(self, mark: int) -> None:
        """Delivery released `mark` (a delivery thread): commit, then write the STATE."""
        with self._lock:
            if self.failure is not None:
                return
            try:
                if self._tracker is not None:
                    self._tracker.commit_through(mark)
            except TargetError as error:
                self.failure = error
                return
            state = None
            while self._states and self._states[0][0] <= mark:
                state = self._states.popleft()[1]
            if state is not None:
                self._emit_state(state)

    def raise_if_failed(self) -> None:
        if self.failure is not None:
            raise self.failure
