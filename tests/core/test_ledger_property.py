"""The ledger, as a property: over random interleavings of rows of a few profiles, STATEs,
drains and end of input, with acknowledgements in random order and failures, every STATE
written covers only dealt-with rows, STATEs keep input order, and after a failure nothing
uncovered is written.

The parts under test are the real ones: `Outgoing` (placing each STATE among the events in
input order) and `Checkpoints` (the one owner of commit and STATE). The hub is replaced by a
model that accepts events in the order hypothesis chooses and releases a mark, like
`delivery.sender.Delivery`, once every event submitted before it is accepted. Rows are
grouped per profile as the sink groups them: a profile's pending event keeps its first
row's position. The integration tests (test_state_after_acceptance.py) check the same
promise end to end against the local hub.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from target_azure_eventhubs.checkpoints import Checkpoints
from target_azure_eventhubs.delivery.encoding import Outbound
from target_azure_eventhubs.outgoing import Outgoing
from target_azure_eventhubs.sink import Drained

HUB = "profiles"


class ModelHub:
    """The `Delivery` interface `Outgoing` uses, accepting events when told to."""

    def __init__(self, post: Callable[[int], None]) -> None:
        self.post = post
        self.seq = itertools.count(1)
        self.last_seq = 0
        self.pending: dict[int, Outbound] = {}
        self.accepted: set[int] = set()  # id() of accepted Outbounds
        self.marks: deque[tuple[int, int]] = deque()
        self.failed = False

    def max_event_bytes(self, hub: str) -> int:
        return 1 << 20

    def limits_ready(self, hub: str) -> bool:
        return True

    def submit(self, hub: str, items: Iterable[tuple[str | None, Outbound]]) -> None:
        for _, out in items:
            self.last_seq = next(self.seq)
            self.pending[self.last_seq] = out

    def checkpoint(self, mark: int) -> None:
        self.marks.append((self.last_seq, mark))
        self._release()

    def accept(self, choice: int) -> None:
        if self.failed or not self.pending:
            return
        seq = sorted(self.pending)[choice % len(self.pending)]
        self.accepted.add(id(self.pending.pop(seq)))
        self._release()

    def _release(self) -> None:
        if self.failed:  # a failed delivery releases nothing more
            return
        watermark = min(self.pending) if self.pending else self.last_seq + 1
        while self.marks and self.marks[0][0] < watermark:
            self.post(self.marks.popleft()[1])


@dataclass
class Group:
    first: int  # the position of the profile's first row: where its event goes
    rows: list[int] = field(default_factory=list)


step = st.one_of(
    st.tuples(st.just("row"), st.integers(0, 3)),
    st.tuples(st.just("skip"), st.just(0)),  # a row dead-lettered or skipped
    st.tuples(st.just("state"), st.just(0)),
    st.tuples(st.just("drain"), st.just(0)),
    st.tuples(st.just("ack"), st.integers(0, 50)),
    st.tuples(st.just("fail"), st.just(0)),
)


@settings(max_examples=400, deadline=None)
@given(steps=st.lists(step, max_size=60), final_acks=st.permutations(range(40)))
def test_every_state_written_covers_only_dealt_with_rows(
    steps: list[tuple[str, int]], final_acks: list[int]
) -> None:
    written: list[int] = []
    positions = itertools.count()
    dealt: set[int] = set()  # rows skipped or dead-lettered
    row_event: dict[int, Outbound] = {}
    groups: dict[int, Group] = {}
    states_read: list[int] = []

    def emit(state: bytes) -> None:
        position = int(state)
        accepted = hub.accepted
        uncovered = [
            p
            for p in range(position)
            if p in row_event and id(row_event[p]) not in accepted and p not in dealt
        ]
        assert not uncovered, f"STATE at {position} written before rows {uncovered}"
        assert not written or position > written[-1], "STATEs out of input order"
        written.append(position)

    checkpoints = Checkpoints(emit, None)
    hub = ModelHub(checkpoints.post)
    outgoing = Outgoing(hub, checkpoints, logging.getLogger("ledger"))  # type: ignore[arg-type]

    def drain() -> None:
        events = []
        for profile, group in groups.items():
            out = Outbound(repr(group.rows).encode(), {})
            for position in group.rows:
                row_event[position] = out
            events.append(Drained(group.first, HUB, str(profile), out, None, 0, str(profile)))  # type: ignore[arg-type]
        groups.clear()
        outgoing.events.extend(events)
        outgoing.send(release_states=True)
        checkpoints.apply()

    for kind, value in steps:
        if kind == "row":
            position = next(positions)
            groups.setdefault(value, Group(position)).rows.append(position)
        elif kind == "skip":
            dealt.add(next(positions))
        elif kind == "state":
            position = next(positions)
            states_read.append(position)
            outgoing.states.append((position, str(position).encode()))
        elif kind == "drain":
            drain()
        elif kind == "ack":
            hub.accept(value)
            checkpoints.apply()
        elif kind == "fail":
            hub.failed = True
            before = list(written)
            checkpoints.apply()  # what was released before the failure may still go
            assert all(p in states_read for p in written[len(before) :])
            break
    else:  # end of input: everything is drained, then accepted in some order
        drain()
        for choice in final_acks:
            hub.accept(choice)
            checkpoints.apply()
        while hub.pending:
            hub.accept(0)
            checkpoints.apply()
        if states_read:
            assert written and written[-1] == states_read[-1], "the last STATE was not written"
    assert set(written) <= set(states_read)
