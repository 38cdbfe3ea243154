"""Bounded, honest shutdown at the default settings: SIGTERM and SIGINT at any moment end
the run within shutdown_timeout_seconds plus 5 s, exit 128 + the signal, and write only
STATE whose events were accepted; a closed stdout ends the run at once; the sender process
dies with its parent."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.changes.support import alive
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

SHUTDOWN = 2.0  # shutdown_timeout_seconds in these tests
BOUND = SHUTDOWN + 5.0  # what the promise allows from the signal to the exit


def rows_and_states(count: int, every: int = 10) -> tuple[list[dict | str], dict[bytes, set[str]]]:
    """`count` rows of distinct profiles, a STATE after every `every`; for each STATE, the
    rows before it."""
    messages: list[dict | str] = [SCHEMA]
    covers: dict[bytes, set[str]] = {}
    for n in range(count):
        messages.append(row(f"p{n}", f"r{n}"))
        if n % every == every - 1:
            value = f'{{"n": {n}}}'
            messages.append(state_line(value))
            covers[value.encode()] = {f"r{m}" for m in range(n + 1)}
    return messages, covers


def assert_states_covered(target: Target, hub: LocalHub, covers: dict[bytes, set[str]]) -> None:
    in_hub = segments_in_hub(hub)
    for state in target.states:
        missing = covers[state] - in_hub
        assert not missing, f"STATE {state!r} written, but rows {sorted(missing)[:5]} not in hub"


def run_until_signalled(target: Target, signum: int) -> tuple[int, float]:
    signalled = target.signal(signum)
    code = target.wait(BOUND + 30)
    return code, time.monotonic() - signalled


@pytest.mark.parametrize("sender_process", SENDER_PROCESS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_stream_exits_128_plus_the_signal(
    tmp_path: Path, hub: LocalHub, sender_process: bool, signum: int
) -> None:
    messages, covers = rows_and_states(60)
    settings = config(hub, sender_process=sender_process, shutdown_timeout_seconds=SHUTDOWN)
    target = Target(tmp_path, settings)
    try:
        target.send(messages[:34])  # up to STATE 29; the input stays open: mid-stream
        wait_for(lambda: target.states[-1:] == [b'{"n": 29}'], 30, "STATE 29")
        code, took = run_until_signalled(target, signum)
    finally:
        target.kill()
    assert code == 128 + signum, target.stderr
    assert took < BOUND, f"exited {took:.1f} s after the signal"
    assert_states_covered(target, hub, covers)
    assert target.states[-1] == b'{"n": 29}'  # every row read was accepted, and its STATE
    assert signal.Signals(signum).name in target.stderr


@pytest.mark.parametrize("sender_process", SENDER_PROCESS)
def test_sigterm_during_the_end_of_input_flush_keeps_the_bound(
    tmp_path: Path, hub: LocalHub, sender_process: bool
) -> None:
    """The input has ended and the hub refuses everything as server-busy: the final flush
    would wait for the whole retry budget; SIGTERM cuts it to the shutdown bound."""
    messages, covers = rows_and_states(40)
    settings = config(hub, sender_process=sender_process, shutdown_timeout_seconds=SHUTDOWN)
    target = Target(tmp_path, settings)
    try:
        hub.faults.reject_next(10**9)
        target.send(messages)
        target.close_input()
        wait_for(lambda: "throttled" in target.stderr, 30, "a refused send")
        code, took = run_until_signalled(target, signal.SIGTERM)
    finally:
        target.kill()
    assert code == 128 + signal.SIGTERM, target.stderr
    assert took < BOUND, f"exited {took:.1f} s after SIGTERM"
    assert target.states == []
    assert hub.event_count("profiles") == 0
    assert_states_covered(target, hub, covers)
    assert "not yet accepted" in target.stderr
    assert "Traceback" not in target.stderr


@pytest.mark.parametrize("sender_process", SENDER_PROCESS)
def test_sigterm_against_a_black_holed_hub_keeps_the_bound(
    tmp_path: Path, hub: LocalHub, sender_process: bool
) -> None:
    """Transfers get no answer at all (send_timeout_seconds at its default, 30 s)."""
    messages, covers = rows_and_states(60)
    settings = config(hub, sender_process=sender_process, shutdown_timeout_seconds=SHUTDOWN)
    target = Target(tmp_path, settings)
    try:
        target.send(messages[:12])
        wait_for(lambda: target.states == [b'{"n": 9}'], 30, "the first STATE")
        hub.faults.black_hole(True)
        target.send(messages[12:])
        wait_for(lambda: hub.event_count("profiles") == 10, 5, "the first ten events")
        code, took = run_until_signalled(target, signal.SIGTERM)
    finally:
        target.kill()
    assert code == 128 + signal.SIGTERM, target.stderr
    assert took < BOUND, f"exited {took:.1f} s after SIGTERM"
    assert_states_covered(target, hub, covers)


@pytest.mark.parametrize("sender_process", SENDER_PROCESS)
def test_a_closed_stdout_ends_the_run_at_once_with_one_clear_line(
    tmp_path: Path, hub: LocalHub, sender_process: bool
) -> None:
    messages, _ = rows_and_states(30)
    target = Target(tmp_path, config(hub, sender_process=sender_process), read_stdout=False)
    try:
        assert target.proc.stdout is not None
        target.proc.stdout.close()  # the reader of the STATE lines is gone
        target.send(messages)  # the input stays open: only the broken pipe can end the run
        code = target.wait(30)
    finally:
        target.kill()
    assert code == 1, target.stderr
    assert "broken pipe" in target.stderr
    assert "Traceback" not in target.stderr
    assert "Exception ignored" not in target.stderr


def test_the_sender_process_dies_with_its_parent_even_when_blocked(
    tmp_path: Path, hub: LocalHub
) -> None:
    messages, _ = rows_and_states(30)
    target = Target(tmp_path, config(hub))
    try:
        target.send(messages[:12])
        wait_for(lambda: target.states == [b'{"n": 9}'], 30, "the first STATE")
        children = target.children()
        assert len(children) == 1, children
        hub.faults.black_hole(True)  # the sender process now waits on sends
        target.send(messages[12:])
        wait_for(lambda: hub.faults.black_holed, 5, "the black hole")
        target.proc.kill()
        target.proc.wait()
        killed = time.monotonic()
        wait_for(lambda: not alive(children[0]), 5, "the sender process to exit")
        assert time.monotonic() - killed < 5
    finally:
        target.kill()


def test_a_sender_process_that_dies_fails_the_run_in_bounded_time(
    tmp_path: Path, hub: LocalHub
) -> None:
    messages, covers = rows_and_states(60)
    target = Target(tmp_path, config(hub))
    try:
        target.send(messages[:12])
        wait_for(lambda: target.states == [b'{"n": 9}'], 30, "the first STATE")
        (child,) = target.children()
        subprocess.run(["kill", "-9", str(child)], check=True)
        target.send(messages[12:])
        code = target.wait(30)
    finally:
        target.kill()
    assert code == 1, target.stderr
    assert "delivery process" in target.stderr or "sender process" in target.stderr
    assert "Traceback" not in target.stderr
    assert_states_covered(target, hub, covers)
