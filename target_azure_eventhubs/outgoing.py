"""Drained events of every stream on their way to delivery: submitted in input order, each
STATE placed right after the records read before it, oversized events refused first."""

from __future__ import annotations

import bisect
import itertools
import logging
import operator
import time

from target_azure_eventhubs.checkpoints import Checkpoints
from target_azure_eventhubs.delivery.choice import AnyDelivery
from target_azure_eventhubs.delivery.encoding import event_fits
from target_azure_eventhubs.errors import InvalidRecordFailure
from target_azure_eventhubs.sink import Drained

_MAX_DEFERRED_EVENTS = 20_000  # see may_defer
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)


class Outgoing:
    def __init__(
        self,
        delivery: AnyDelivery,
        checkpoints: Checkpoints,
        logger: logging.Logger,
    ) -> None:
        self.delivery = delivery
        self.checkpoints = checkpoints
        self.logger = logger
        self.events: list[Drained] = []
        self.states: list[tuple[int, bytes]] = []  # (input position, raw STATE) unplaced
        # While a complete snapshot is open, its STATEs (read at or after this input
        # position) wait until it is complete and its exits are accepted: a snapshot that
        # is refused, or cut short, moves no bookmark.
        self.hold_from: int | None = None
        self._ready_hubs: set[str] = set()  # hubs whose limits delivery knows

    def send(self, *, release_states: bool) -> None:
        """Submit the drained events in input order, placing each STATE where it was read
        (with `release_states`; otherwise STATEs wait for a later call)."""
        events, self.events = sorted(self.events, key=_first), []
        events = self._refuse_oversized(events)
        states = self._releasable() if release_states else []
        self.states = self.states[len(states) :]
        start = 0
        for order, state in states:
            end = bisect.bisect_left(events, order, lo=start, key=_first)
            self._submit(events[start:end])
            start = end
            self._place_checkpoint(state)
        self._submit(events[start:])
        self._place_checkpoint(None)

    def _releasable(self) -> list[tuple[int, bytes]]:
        if self.hold_from is None:
            return self.states
        return self.states[: bisect.bisect_left(self.states, self.hold_from, key=_first)]

    def has_releasable_states(self) -> bool:
        return bool(self._releasable())

    def may_defer(self, oldest_pending: float, max_latency: float, hubs: set[str]) -> bool:
        """Whether drained events may wait here while the sender process still connects.

        Reading goes on meanwhile; the wait is short (half of max_latency_ms, a bounded
        number of events).
        """
        if not self.events or len(self.events) >= _MAX_DEFERRED_EVENTS:
            return False
        if time.monotonic() - oldest_pending >= max_latency / 2:
            return False
        hubs = hubs - self._ready_hubs
        self._ready_hubs.update(hub for hub in hubs if self.delivery.limits_ready(hub))
        if hubs <= self._ready_hubs:
            return False
        self.logger.debug(
            "Holding %d drained events while the sender process connects", len(self.events)
        )
        return True

    def _place_checkpoint(self, state: bytes | None) -> None:
        """STATE and change-store commits happen once the events before this are accepted."""
        mark = self.checkpoints.place(state)
        if mark is not None:
            self.delivery.checkpoint(mark)

    def _refuse_oversized(self, events: list[Drained]) -> list[Drained]:
        """The events that fit in a message of their hub; `on_invalid_record` for the rest."""
        limits = {hub: self.delivery.max_event_bytes(hub) for hub in {e.hub for e in events}}
        fitting = [e for e in events if event_fits(e.out, limits[e.hub])]
        if len(fitting) < len(events):
            try:
                for event in events:
                    if not event_fits(event.out, limits[event.hub]):
                        event.sink.refuse_oversized(event, limits[event.hub])
            except InvalidRecordFailure:
                self._submit(fitting)  # valid events go; no STATE follows
                raise
        return fitting

    def _submit(self, events: list[Drained]) -> None:
        for hub, group in itertools.groupby(events, key=_second):
            self.delivery.submit(hub, ((e.partition_key, e.out) for e in group))
        self.checkpoints.note(e.change for e in events)
