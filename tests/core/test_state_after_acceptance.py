"""STATE only after acceptance, at the default settings (`group_by_profile` on, the sender
process on and off): a profile whose rows lie on both sides of a STATE."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.core.support import (
    SCHEMA,
    SENDER_PROCESS,
    Target,
    config,
    row,
    segments_in_hub,
    state_line,
    wait_for,
)

pytestmark = pytest.mark.slow  # runs the target as a subprocess


@pytest.mark.parametrize("sender_process", SENDER_PROCESS)
def test_a_state_between_two_rows_of_a_profile_waits_for_its_merged_event(
    tmp_path: Path, hub: LocalHub, sender_process: bool
) -> None:
    target = Target(tmp_path, config(hub, sender_process=sender_process))
    try:
        # A first STATE, written once its row is accepted, ends the start-up period.
        target.send([SCHEMA, row("warm", "r0"), state_line('{"at": 0}')])
        wait_for(lambda: target.states == [b'{"at": 0}'], 30, "the first STATE")
        # Every transfer is now refused as server-busy: nothing can be accepted.
        hub.faults.reject_next(10**9)
        # Profile a's rows on both sides of STATE 1, in one write: they are merged.
        target.send(
            [row("a", "r1"), state_line('{"at": 1}'), row("a", "r2"), state_line('{"at": 2}')]
        )
        # Refused, then refused again after the server-busy backoff: by then a STATE
        # released without waiting for the event would long have been written.
        wait_for(
            lambda: sum(t.outcome != "accepted" for t in hub.faults.transfers()) >= 2,
            30,
            "the merged event to be sent, refused, and sent again",
        )
        refused = [t for t in hub.faults.transfers() if t.outcome != "accepted"]
        assert [t.events for t in refused[:2]] == [1, 1]  # profile a's two rows, merged
        assert target.states == [b'{"at": 0}'], "a STATE was written before its events"
        assert segments_in_hub(hub) == {"r0"}
        hub.faults.reject_next(0)
        target.close_input()
        assert target.wait(60) == 0, target.stderr
    finally:
        target.kill()
    assert target.states == [b'{"at": 0}', b'{"at": 2}']
    assert segments_in_hub(hub) == {"r0", "r1", "r2"}
    assert hub.event_count("profiles") == 2  # r1 and r2 went as one event


@pytest.mark.parametrize("sender_process", SENDER_PROCESS)
def test_every_state_is_covered_by_what_the_hub_holds_when_it_appears(
    tmp_path: Path, hub: LocalHub, sender_process: bool
) -> None:
    """Interleaved profiles and STATEs, fed in small writes; at each STATE line, the hub
    already holds every row read before it."""
    messages: list[dict | str] = [SCHEMA]
    rows_before: dict[bytes, set[str]] = {}
    seen: set[str] = set()
    for n in range(120):
        segment = f"r{n}"
        messages.append(row(f"p{n % 9}", segment))
        seen.add(segment)
        if n % 7 == 6:
            value = f'{{"n": {n}}}'.encode()
            messages.append(state_line(value.decode()))
            rows_before[value] = set(seen)
    target = Target(tmp_path, config(hub, sender_process=sender_process))
    checked: list[bytes] = []
    try:
        for start in range(0, len(messages), 5):
            target.send(messages[start : start + 5])
            for state in target.states[len(checked) :]:
                # Checked as soon as the line is seen: the hub cannot lose what it holds, so
                # a row missing now was missing when the STATE was written.
                missing = rows_before[state] - segments_in_hub(hub)
                assert not missing, f"STATE {state!r} written before rows {sorted(missing)}"
                checked.append(state)
        target.close_input()
        assert target.wait(60) == 0, target.stderr
    finally:
        target.kill()
    states = target.states
    assert states[-1] == b'{"n": 118}'
    order = list(rows_before)
    assert [order.index(s) for s in states] == sorted(order.index(s) for s in states)
    assert segments_in_hub(hub) == {f"r{n}" for n in range(120)}
