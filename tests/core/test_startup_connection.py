"""Connecting at start: a namespace that cannot be reached yet is asked again with the
backoff a send gets, and a run that cannot connect at all ends with one line naming the
namespace and the cause, having sent nothing and written no STATE."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.core.support import (
    HUB,
    SCHEMA,
    SENDER_PROCESS,
    Target,
    row,
    segments_in_hub,
    state_line,
    wait_for,
)
from tests.proxy import free_port

pytestmark = pytest.mark.slow  # runs the target as a subprocess

MESSAGES: list[dict | str] = [SCHEMA, row("p1", "s1"), row("p2", "s2"), state_line('{"n": 1}')]


def closed_port_config(port: int, **extra: object) -> dict[str, object]:
    key = "SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=localhub-development-key"
    return {
        "connection_string": f"Endpoint=sb://127.0.0.1:{port};{key};UseDevelopmentEmulator=true",
        "eventhub_name": HUB,
        "retry_backoff_seconds": 0.5,
        "retry_backoff_max_seconds": 1,
        **extra,
    }


@pytest.mark.parametrize("sender_process", SENDER_PROCESS)
def test_a_hub_that_comes_up_during_the_retries_gets_the_run(
    tmp_path: Path, sender_process: bool
) -> None:
    port = free_port()
    target = Target(tmp_path, closed_port_config(port, sender_process=sender_process))
    try:
        target.send(MESSAGES)
        target.close_input()
        wait_for(lambda: "retry 1/8" in target.stderr, 30, "a first connection retry")
        with LocalHub(hubs={HUB: 4}, port=port) as hub:
            assert target.wait(60) == 0, target.stderr
            assert segments_in_hub(hub) == {"s1", "s2"}
    finally:
        target.kill()
    assert target.states == [b'{"n": 1}']
    assert "Connecting to event hub 'profiles' in namespace '127.0.0.1'" in target.stderr


def test_a_namespace_never_reached_fails_after_the_retries_in_one_line(tmp_path: Path) -> None:
    target = Target(tmp_path, closed_port_config(free_port(), max_retries=2))
    target.send(MESSAGES)
    target.close_input()
    assert target.wait(60) == 1
    errors = [line for line in target.err if "| ERROR" in line]
    assert len(errors) == 1, target.stderr
    assert "Cannot send to event hub 'profiles' in namespace '127.0.0.1'" in errors[0]
    assert "Connection refused" in errors[0]
    assert "gave up connecting after 2 retries" in errors[0]
    assert "Traceback" not in target.stderr
    assert target.states == []


def test_a_termination_signal_ends_the_connection_retries(tmp_path: Path) -> None:
    target = Target(tmp_path, closed_port_config(free_port(), shutdown_timeout_seconds=2))
    try:
        target.send(MESSAGES)
        wait_for(lambda: "retry 1/8" in target.stderr, 30, "a first connection retry")
        target.signal(signal.SIGTERM)
        # The connection is opened while the target still loads: a signal before its
        # handlers are in place ends it as SIGTERM does by default. Either way, promptly.
        assert target.wait(15) in (128 + signal.SIGTERM, -signal.SIGTERM), target.stderr
    finally:
        target.kill()
    assert target.states == []
