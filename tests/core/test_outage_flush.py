"""The end-of-input flush outlasts an outage: while the sender process is busy taking in
events it cannot send (its buffer full), the target's flush keeps asking, and finishes
once the hub accepts again, with every event and the last STATE."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.core.support import SCHEMA, Target, config, row, segments_in_hub, state_line, wait_for

pytestmark = pytest.mark.slow  # runs the target as a subprocess


def test_a_flush_that_waits_through_an_outage_then_completes(tmp_path: Path, hub: LocalHub) -> None:
    count = 12_000  # a few MB of events: more than the 1 MB buffer and the hand-over queue
    messages: list[dict | str] = [SCHEMA]
    messages += [row(f"p{n}", f"r{n}") for n in range(count)]
    messages.append(state_line('{"done": true}'))
    hub.faults.reject_next(10**9)  # server-busy for every transfer: nothing is accepted
    target = Target(tmp_path, config(hub, max_buffered_mb=1))
    try:
        target.send(messages)
        target.close_input()
        # Refused, and refused again after the 4 s backoff: the flush has been waiting
        # (and its answers timing out) for a while.
        wait_for(
            lambda: sum(t.outcome != "accepted" for t in hub.faults.transfers()) >= 8,
            60,
            "several refused transfers",
        )
        assert target.states == []
        hub.faults.reject_next(0)
        assert target.wait(120) == 0, target.stderr
    finally:
        target.kill()
    assert target.states == [b'{"done": true}']
    assert hub.event_count("profiles") == count
    assert segments_in_hub(hub) == {f"r{n}" for n in range(count)}
