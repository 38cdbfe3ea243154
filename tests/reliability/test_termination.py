"""Scenario 8: SIGTERM in the middle of a drain, and SIGKILL of the target."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.integration.target_runner import Result
from tests.reliability.checks import (
    TargetProcess,
    Workload,
    check_delivery,
    local_hub,
    make_workload,
    target_config,
    wait_until,
)


def _sigterm_while_black_holed(
    tmp_path: Path,
    hub: LocalHub,
    config: dict,
    workload: Workload,
    caplog: pytest.LogCaptureFixture,
) -> tuple[Result, float]:
    """Feed 60 records and let them be accepted, withhold dispositions, feed the rest, SIGTERM
    once a send is in flight; returns the result and the seconds from the signal to the exit.
    """
    first, rest = workload.split(60)
    target = TargetProcess(tmp_path, config)
    try:
        target.write(first)
        assert wait_until(lambda: hub.event_count("profiles") >= 60, 60), target.stderr
        hub.faults.black_hole(True)  # what is sent from now on stays in flight
        target.write(rest)
        assert wait_until(lambda: "black hole: withholding" in caplog.text, 60), target.stderr
        stored_at_signal = hub.event_count("profiles")
        signalled = time.monotonic()
        target.send_signal(signal.SIGTERM)
        result = target.wait(60)
        stopped_after = time.monotonic() - signalled
    finally:
        target.kill()
    assert hub.event_count("profiles") == stored_at_signal
    return result, stopped_after


def test_sigterm_with_sends_in_flight_writes_state_for_accepted_records_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workload = make_workload(300, state_every=10)
    with local_hub() as hub:
        # A small retry budget keeps this test short whatever the shutdown path does.
        config = target_config(
            hub.connection_string(),
            shutdown_timeout_seconds=2,
            send_timeout_seconds=1,
            max_retries=3,
            retry_backoff_max_seconds=0.4,
        )
        result, _ = _sigterm_while_black_holed(tmp_path, hub, config, workload, caplog)
        assert "SIGTERM" in result.stderr
        hub.faults.black_hole(False)
        outcome = check_delivery(
            "8 SIGTERM with sends in flight, re-run",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=False,
            rerun_config=config,
            max_duplicates=0,
        )
    assert "not yet accepted" in result.stderr
    assert outcome.covered < workload.last_record_line


def test_sigterm_exits_within_the_shutdown_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workload = make_workload(300, state_every=10)
    with local_hub() as hub:
        config = target_config(
            hub.connection_string(),
            shutdown_timeout_seconds=2,
            send_timeout_seconds=1,
            max_retries=8,
            retry_backoff_max_seconds=0.5,
        )
        result, stopped_after = _sigterm_while_black_holed(tmp_path, hub, config, workload, caplog)
    assert result.returncode == 128 + signal.SIGTERM
    # shutdown timeout + one in-flight send timeout + process exit
    assert stopped_after < 2 + 1 + 2.5, f"exited {stopped_after:.1f} s after SIGTERM"


def test_sigterm_with_a_healthy_hub_finishes_what_was_read_and_exits_143(tmp_path: Path) -> None:
    workload = make_workload(300, state_every=10)
    with local_hub() as hub:
        config = target_config(hub.connection_string(), shutdown_timeout_seconds=5)
        first, _ = workload.split(60)
        second, _ = workload.split(120)
        target = TargetProcess(tmp_path, config)
        try:
            target.write(first)
            assert wait_until(lambda: hub.event_count("profiles") >= 60, 60), target.stderr
            target.write(second[len(first) :])  # then the signal, the input still open
            target.send_signal(signal.SIGTERM)
            result = target.wait(30)
        finally:
            target.kill()
        outcome = check_delivery(
            "8 SIGTERM, healthy hub, re-run",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=False,
            stopped_early=True,
            rerun_config=config,
        )
    assert outcome.exit_codes[0] == 128 + signal.SIGTERM  # cancelled, even if cleanly
    # Everything the STATE covers arrived, and nothing read after it was silently dropped:
    # the re-run starts right after the last STATE.
    assert outcome.covered < workload.last_record_line


def test_sigkill_of_the_target_loses_nothing_covered_by_state(tmp_path: Path) -> None:
    workload = make_workload(300, state_every=10)
    with local_hub() as hub:
        config = target_config(hub.connection_string())
        first, rest = workload.split(30)
        target = TargetProcess(tmp_path, config)
        try:
            target.write(first)
            # The STATEs of the first part may come as one line (the latest covers the rest).
            assert wait_until(lambda: len(target.states()) >= 1, 60), target.stderr
            target.write(rest[:40])  # killed with these read or being read
            target.proc.kill()
            result = target.wait(30)
        finally:
            target.kill()
        assert result.returncode == -signal.SIGKILL
        check_delivery(
            "8 SIGKILL of the target, re-run",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=False,
            rerun_config=config,
        )
