"""Server-busy: every refused transfer waits at least 4 s before it is sent again."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub
from eventhubs_localhub.faults import Transfer

from tests.core.support import SCHEMA, SENDER_PROCESS, Target, config, row, state_line

pytestmark = pytest.mark.slow  # runs the target as a subprocess

SERVER_BUSY_WAIT = 4.0  # what the service asks for


def retry_delays(transfers: list[Transfer]) -> list[float]:
    """For each refused transfer, the seconds until the hub next saw the same payload."""
    delays = []
    for i, refused in enumerate(transfers):
        if refused.outcome == "accepted":
            continue
        again = next((t for t in transfers[i + 1 :] if t.digest == refused.digest), None)
        assert again is not None, f"refused transfer {refused} was never sent again"
        delays.append(again.at - refused.at)
    return delays


@pytest.mark.parametrize("sender_process", SENDER_PROCESS)
def test_each_refused_transfer_waits_4_s_whichever_partition_sends_it(
    tmp_path: Path, hub: LocalHub, sender_process: bool
) -> None:
    # Twelve profiles over the four partitions; the first six transfers are refused,
    # whichever sender thread makes them.
    messages: list[dict | str] = [SCHEMA]
    messages += [row(f"p{n}", f"r{n}") for n in range(12)]
    messages.append(state_line('{"done": true}'))
    hub.faults.reject_next(6)
    target = Target(tmp_path, config(hub, sender_process=sender_process))
    try:
        target.send(messages)
        target.close_input()
        assert target.wait(90) == 0, target.stderr
    finally:
        target.kill()
    transfers = hub.faults.transfers()
    delays = retry_delays(transfers)
    assert len(delays) == 6, transfers
    assert min(delays) >= SERVER_BUSY_WAIT, f"retried too soon: {sorted(delays)}"
    assert target.states == [b'{"done": true}']
    assert hub.event_count("profiles") == 12
