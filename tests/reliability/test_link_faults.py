"""Scenarios 3, 5 and 7: connections closed, links detached, dispositions withheld, tokens
expiring — all while a run is in progress."""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

import pytest

from tests.reliability.checks import (
    TargetProcess,
    check_delivery,
    feed_with_faults,
    local_hub,
    make_workload,
    resent_events,
    target_config,
    wait_until,
)


def test_connections_closed_and_links_detached_during_a_run(tmp_path: Path) -> None:
    workload = make_workload(300, state_every=20)
    with local_hub() as hub:
        target = TargetProcess(tmp_path, target_config(hub.connection_string()))
        try:
            faults = [hub.faults.close_connections, hub.faults.detach_links] * 5
            feed_with_faults(target, workload, faults, lambda: hub.event_count("profiles"))
            result = target.wait(60)
        finally:
            target.kill()
        check_delivery(
            "3 connections closed x5, links detached x5",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
            # Each event sent again can be one duplicate (its acknowledgement was lost).
            max_duplicates=resent_events(result.stderr),
        )
    summary = re.search(r"Summary: .* (\d+) retries", result.stderr)
    assert summary and int(summary.group(1)) >= 1, result.stderr[-2000:]


def test_withheld_dispositions_time_out_are_retried_and_hold_back_state(tmp_path: Path) -> None:
    workload = make_workload(100, state_every=20)
    with local_hub() as hub:
        hub.faults.black_hole(True)
        config = target_config(
            hub.connection_string(),
            send_timeout_seconds=1,
            max_retries=20,
            retry_backoff_seconds=0.1,
            retry_backoff_max_seconds=0.2,
        )
        target = TargetProcess(tmp_path, config)
        try:
            target.feed(workload.messages, close=False)
            # Two rounds of timed-out sends on every partition.
            assert wait_until(lambda: target.stderr.count("retry 2/20") >= 4, 20), target.stderr[
                -2000:
            ]
            assert target.states() == [], "STATE written while the hub accepted nothing"
            assert hub.event_count("profiles") == 0
            timeouts = [(t, line) for t, line in target.stderr_lines if "timed out" in line]
            hub.faults.black_hole(False)
            assert wait_until(lambda: bool(target.states()), 20), target.stderr[-2000:]
            target.close_input()
            result = target.wait(60)
        finally:
            target.kill()
        check_delivery(
            "5 dispositions withheld (black hole)",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
            max_duplicates=100,
        )
    # Each retry waited for the send timeout: per partition, consecutive retry warnings are
    # at least ~send_timeout_seconds apart.
    per_partition: dict[str, list[float]] = {}
    for t, line in timeouts:
        match = re.search(r"partition (\S+) failed", line)
        if match:
            per_partition.setdefault(match.group(1), []).append(t)
    gaps = [b - a for times in per_partition.values() for a, b in itertools.pairwise(times)]
    assert gaps and min(gaps) >= 0.9, gaps


def test_tokens_expiring_during_a_long_run_are_refreshed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventhubs_localhub")
    workload = make_workload(200, state_every=20)
    with local_hub() as hub:
        hub.faults.token_lifetime(0.5)
        target = TargetProcess(tmp_path, target_config(hub.connection_string()))
        try:
            # Five parts of the input, each after the hub cut a link for an expired token:
            # the tokens expire several times during the run.
            def next_expiry() -> None:
                seen = caplog.text.count("expired; detaching link")
                assert wait_until(
                    lambda: caplog.text.count("expired; detaching link") > seen, 20
                ), caplog.text[-2000:]

            feed_with_faults(
                target, workload, [next_expiry] * 4, lambda: hub.event_count("profiles")
            )
            result = target.wait(60)
        finally:
            target.kill()
        expired = caplog.text.count("expired; detaching link")
        check_delivery(
            "7 token lifetime 0.5 s",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
            max_duplicates=resent_events(result.stderr),
        )
    # The hub really cut links for expired tokens, several times, and the run went on.
    assert expired >= 2, caplog.text[-2000:]
    assert result.returncode == 0
