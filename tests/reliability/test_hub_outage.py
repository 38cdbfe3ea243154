"""Scenarios 1 and 2: the hub process is SIGKILLed mid-run (durable --data-dir)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.reliability.checks import (
    TargetProcess,
    assert_clear_error,
    check_delivery,
    hub_process,
    make_workload,
    stored_count,
    target_config,
    wait_until,
)


def test_hub_killed_and_back_within_the_retry_budget(tmp_path: Path) -> None:
    workload = make_workload(300, state_every=20)
    with hub_process(tmp_path / "data") as hub:
        # Retry budget: 0.5+1+2+3+3+3+3 s (jittered down to half) covers ~10 s.
        config = target_config(
            hub.connection_string(),
            max_retries=7,
            retry_backoff_seconds=0.5,
            retry_backoff_max_seconds=3,
        )
        target = TargetProcess(tmp_path, config)
        try:
            target.feed(workload.messages, chunk=10, delay=0.12)
            assert wait_until(lambda: stored_count(hub) >= 60, 20), target.stderr
            hub.kill()
            killed_at = time.monotonic()
            time.sleep(2)
            hub.restart()
            result = target.wait(60)
        finally:
            target.kill()
        outcome = check_delivery(
            "1 hub SIGKILL, back after 2 s",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
            max_duplicates=40,
        )
    assert "retry" in result.stderr  # it did notice the outage
    # It kept going through the outage: finished after the hub came back.
    assert result.seconds > 2 and time.monotonic() - killed_at > 2
    assert outcome.records_in_hub == 300


def test_hub_down_past_the_retry_budget_fails_then_rerun_fills_the_gap(tmp_path: Path) -> None:
    workload = make_workload(300, state_every=20)
    with hub_process(tmp_path / "data") as hub:
        config = target_config(
            hub.connection_string(),
            max_retries=2,
            retry_backoff_seconds=0.2,
            retry_backoff_max_seconds=0.5,
        )
        target = TargetProcess(tmp_path, config)
        try:
            target.feed(workload.messages, chunk=10, delay=0.12)
            assert wait_until(lambda: stored_count(hub) >= 60, 20), target.stderr
            hub.kill()
            result = target.wait(60)
        finally:
            target.kill()
        assert_clear_error(result)
        error = result.stderr.lower()
        assert "gave up after 2 retries" in error, result.stderr[-2000:]
        assert "event hub 'profiles'" in error
        assert result.seconds < 30
        hub.restart()
        outcome = check_delivery(
            "2 hub down past retry budget, re-run",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=False,
            rerun_config=config,
            max_duplicates=40,
        )
    assert outcome.covered < workload.last_record_line
    assert outcome.exit_codes[0] != 0 and outcome.exit_codes[-1] == 0
