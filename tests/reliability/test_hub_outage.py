"""Scenarios 1 and 2: the hub process is SIGKILLed mid-run (durable --data-dir)."""

from __future__ import annotations

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
        first, rest = workload.split(60)
        target = TargetProcess(tmp_path, config)
        try:
            target.write(first)
            assert wait_until(lambda: stored_count(hub) >= 60, 60), target.stderr
            hub.kill()
            target.write(rest)  # read while the hub is down
            target.close_input()
            # The hub stays down until the target has failed a send and is retrying.
            assert wait_until(lambda: "; retry " in target.stderr, 30), target.stderr[-3000:]
            hub.restart()
            result = target.wait(60)
        finally:
            target.kill()
        outcome = check_delivery(
            "1 hub SIGKILL, back once the target retries",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
            max_duplicates=40,
        )
    # It kept going through the outage: the records after the 60th, read while the hub was
    # down, all arrived once it was back.
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
        first, rest = workload.split(60)
        target = TargetProcess(tmp_path, config)
        try:
            target.write(first)
            assert wait_until(lambda: stored_count(hub) >= 60, 60), target.stderr
            hub.kill()
            target.write(rest)  # never accepted: the hub stays down
            target.close_input()
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
