"""Checkpoints: the one owner of "accepted -> committed -> STATE".

A mark is placed between submitted events; it covers every event submitted before it.
Delivery, from whatever thread or process learns of an acknowledgement, only *posts* that
a mark was released (`post`). The target's main thread, and no other, applies the posted
releases (`apply`), in mark order:

1. the change-tracking decisions of the events the mark covers are committed to the store;
2. then the latest STATE placed at or before the mark is written to stdout, byte for byte
   as the tap sent it.

A failed commit, or a stdout that can no longer be written, stops both for good: nothing is
written after it, and the run fails. Releases posted after a failure are never applied.
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
from collections import deque
from collections.abc import Callable, Iterable

from target_azure_eventhubs.changes.tracker import Change, ChangeTracker
from target_azure_eventhubs.errors import TargetError


class OutputClosed(TargetError):
    """stdout was closed by the reader (EPIPE): no STATE can reach it any more."""


class Checkpoints:
    def __init__(self, emit_state: Callable[[bytes], None], tracker: ChangeTracker | None) -> None:
        self._emit_state = emit_state
        self._tracker = tracker
        self._marks = itertools.count(1)
        self._states: deque[tuple[int, bytes]] = deque()  # (mark, raw STATE value)
        self._changes: list[Change] = []  # of events submitted since the last mark
        self._posted: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._applied = 0  # the highest mark applied
        self.failure: TargetError | None = None
        self.states_written = 0

    # Main thread: placing marks -------------------------------------------------------

    def note(self, changes: Iterable[Change | None]) -> None:
        """The changes of events just submitted."""
        self._changes.extend(change for change in changes if change is not None)

    def place(self, state: bytes | None) -> int | None:
        """A mark covering everything submitted so far, for `state` and the changes noted;
        None when there is nothing to place."""
        if state is None and not self._changes:
            return None
        mark = next(self._marks)
        if self._tracker is not None:
            self._tracker.register(mark, self._changes)
        self._changes = []
        if state is not None:
            self._states.append((mark, state))
        return mark

    # Any thread: acknowledgements -----------------------------------------------------

    def post(self, mark: int) -> None:
        """Delivery released `mark`: every event submitted before it was accepted. Safe from
        any thread; nothing is committed or written here (see `apply`)."""
        self._posted.put(mark)

    # Main thread: the effects, in order -----------------------------------------------

    def apply(self) -> None:
        """Commit and write what the releases posted so far allow; raises on failure."""
        self.raise_if_failed()
        mark = self._applied
        while True:
            try:
                mark = max(mark, self._posted.get_nowait())
            except queue.Empty:
                break
        if mark <= self._applied:
            return
        try:
            if self._tracker is not None:
                self._tracker.commit_through(mark)
            state = None
            while self._states and self._states[0][0] <= mark:
                state = self._states.popleft()[1]
            self._applied = mark
            if state is not None:
                self._write(state)
        except TargetError as error:
            self.failure = error
            raise

    def _write(self, state: bytes) -> None:
        try:
            self._emit_state(state)
        except BrokenPipeError:
            raise OutputClosed(
                "stdout was closed by the program reading it (broken pipe): no STATE can be "
                "written, so the run stops; re-run from the last STATE it received"
            ) from None
        self.states_written += 1

    def raise_if_failed(self) -> None:
        if self.failure is not None:
            raise self.failure


def write_state_line(state: bytes) -> None:
    """Write one STATE line to stdout, as the tap's bytes; a closed stdout raises
    BrokenPipeError, after pointing stdout at /dev/null so that the interpreter's own
    flush at exit does not fail a second time."""
    out = sys.stdout
    try:
        out.flush()
        binary = getattr(out, "buffer", None)
        if binary is None:  # a text stream of a test harness
            out.write(state.decode() + "\n")
        else:
            binary.write(state + b"\n")
        out.flush()
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        raise
