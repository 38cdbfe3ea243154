"""Scenario 4: sustained throttling (server-busy for 10 s, then a 2-throughput-unit limit)."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

from tests.reliability.checks import (
    TargetProcess,
    check_delivery,
    local_hub,
    make_workload,
    target_config,
    wait_until,
)

BUSY_SECONDS = 10
_RETRY = re.compile(r"partition (\S+) failed \(throttled, .*\); retry \d+/\d+ in ([\d.]+) s")
_SUMMARY = re.compile(r"Summary: .* (\d+) retries \((\d+) throttled\)")


def test_sustained_throttling_backs_off_and_finishes(tmp_path: Path) -> None:
    workload = make_workload(400, state_every=25)
    with local_hub() as hub:
        hub.faults.reject_next(10**9)  # every transfer answered com.microsoft:server-busy
        config = target_config(hub.connection_string(), max_retries=8)
        target = TargetProcess(tmp_path, config)
        try:
            target.feed(workload.messages, close=False)
            assert wait_until(lambda: "throttled" in target.stderr, 20), target.stderr[-2000:]
            busy_since = time.monotonic()
            time.sleep(BUSY_SECONDS)  # the behaviour under test: 10 s of server-busy
            assert target.states() == [], "STATE written while every send was refused"
            assert hub.event_count("profiles") == 0
            hub.faults.reject_next(0)
            hub.faults.throttle(2000)  # 2 throughput units
            target.close_input()
            result = target.wait(60)
            busy_for = time.monotonic() - busy_since
        finally:
            target.kill()
        check_delivery(
            "4 server-busy 10 s, then 2 TU",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
            max_duplicates=0,
        )
    assert busy_for >= BUSY_SECONDS  # it did not give up while throttled

    retries: dict[str, list[tuple[float, float]]] = {}
    for at, line in target.stderr_lines:
        if match := _RETRY.search(line):
            retries.setdefault(match.group(1), []).append((at, float(match.group(2))))
    assert retries, result.stderr[-2000:]
    # The announced wait is at least the 4 s the service asks for ...
    assert min(delay for waits in retries.values() for _, delay in waits) >= 4.0
    # ... and it really waited: consecutive throttled failures of one partition are >= 4 s
    # apart (measured from when the warning lines appeared on stderr).
    gaps = [b[0] - a[0] for waits in retries.values() for a, b in itertools.pairwise(waits)]
    assert gaps and min(gaps) >= 3.9, gaps
    summary = _SUMMARY.search(result.stderr)
    assert summary, result.stderr[-2000:]
    total, throttled = int(summary.group(1)), int(summary.group(2))
    throttled_lines = sum(len(w) for w in retries.values())
    assert throttled == throttled_lines, (throttled, throttled_lines)
    assert total >= throttled >= 4
