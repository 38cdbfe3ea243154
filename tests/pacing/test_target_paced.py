"""The target, paced to the budget the local hub is throttled to: not one server-busy
answer and at least 95% of the budget, measured on the hub's clock; unpaced, the same
throttle answers server-busy; a SIGTERM while sends wait for the budget still ends the run
within shutdown_timeout_seconds."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.core.support import HUB, SCHEMA, Target, config, row, state_line, wait_for
from tests.pacing.support import refused, sustained_rate

pytestmark = pytest.mark.slow  # runs the target as a subprocess

UNITS = 2
LIMIT = UNITS * 1000  # events/s
ROWS = 6000  # three seconds of budget
SHUTDOWN = 2.0


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub(hubs={HUB: 4}) as local:
        local.faults.throttle(LIMIT)  # over the namespace, as the service counts
        yield local


def rows(count: int) -> list[dict | str]:
    return [SCHEMA, *(row(f"p{n}", f"r{n}") for n in range(count))]


def test_paced_to_the_throttle_no_send_meets_server_busy(tmp_path: Path, hub: LocalHub) -> None:
    target = Target(tmp_path, config(hub, throughput_units=UNITS))
    try:
        target.send([*rows(ROWS), state_line('{"done": true}')])
        target.close_input()
        assert target.wait(60) == 0, target.stderr
    finally:
        target.kill()
    journal = hub.faults.transfers()
    assert refused(journal) == [], target.stderr
    assert hub.event_count(HUB) == ROWS
    assert target.states == [b'{"done": true}']
    rate = sustained_rate(journal)
    assert 0.95 * LIMIT <= rate <= 1.25 * LIMIT, rate  # a bucket's worth above, over 3 s
    assert "paced to 2,000 events/s and 2,000,000 bytes/s" in target.stderr


def test_unpaced_the_same_throttle_answers_server_busy(tmp_path: Path, hub: LocalHub) -> None:
    # No retries: the first refusal ends the run, without the 4 s wait the service asks for.
    target = Target(tmp_path, config(hub, max_retries=0))
    try:
        target.send(rows(ROWS))
        target.close_input()
        assert target.wait(60) != 0
    finally:
        target.kill()
    assert refused(hub.faults.transfers())
    assert "throttled" in target.stderr


def test_a_sigterm_while_sends_wait_for_the_budget_ends_the_run_in_time(
    tmp_path: Path, hub: LocalHub
) -> None:
    settings = config(hub, max_events_per_second=20, shutdown_timeout_seconds=SHUTDOWN)
    target = Target(tmp_path, settings)
    try:
        target.send(rows(400))  # 20 s of budget; the input stays open
        wait_for(lambda: hub.event_count(HUB) >= 10, 30, "the first paced sends")
        signalled = target.signal(signal.SIGTERM)
        code = target.wait(SHUTDOWN + 30)
        took = time.monotonic() - signalled
    finally:
        target.kill()
    assert code == 128 + signal.SIGTERM, target.stderr
    assert took < SHUTDOWN + 5.0, f"exited {took:.1f} s after SIGTERM"
    assert hub.event_count(HUB) < 400
