"""The reliability scenarios over AMQP over WebSockets: the hub killed and restarted,
connections dropped (through an HTTP proxy), sustained throttling, and a black hole.
Each ends with `check_delivery` on what the official consumer reads back."""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ws_support import clear_proxy_environment, peers
from tests.proxy import BIND_ADDRESS, TinyProxy
from tests.reliability.checks import (
    TargetProcess,
    check_delivery,
    hub_process,
    local_hub,
    make_workload,
    resent_events,
    stored_count,
    target_config,
    wait_until,
)

_SECOND_RETRY = re.compile(r"failed \(throttled, .*\); retry 2/")
_THROTTLED = re.compile(r"partition (\S+) failed \(throttled, .*\); retry \d+/\d+ in ([\d.]+) s")


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxy_environment(monkeypatch)


def test_ws_hub_killed_and_restarted_within_the_retry_budget(tmp_path: Path) -> None:
    workload = make_workload(200, state_every=20)
    with hub_process(tmp_path / "data", ws_port=0) as hub:
        config = target_config(
            hub.connection_string(),
            **hub.ws_settings(),
            max_retries=7,
            retry_backoff_seconds=0.5,
            retry_backoff_max_seconds=3,
        )
        first, rest = workload.split(40)
        target = TargetProcess(tmp_path, config)
        try:
            target.write(first)
            assert wait_until(lambda: stored_count(hub) >= 40, 60), target.stderr
            hub.kill()
            target.write(rest)  # read while the hub is down
            target.close_input()
            # The hub stays down until the target has failed a send and is retrying.
            assert wait_until(lambda: "; retry " in target.stderr, 30), target.stderr[-3000:]
            hub.restart()  # same ports, same data dir
            result = target.wait(60)
        finally:
            target.kill()
        outcome = check_delivery(
            "ws: hub SIGKILL, back once the target retries",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
            max_duplicates=40,
        )
    assert "over WebSockets" in result.stderr and "retry" in result.stderr
    assert outcome.records_in_hub == 200


def test_ws_connections_dropped_through_a_proxy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Connections closed and links detached, each while a part of the input is pending; the
    target reconnects through the proxy after each and delivers everything at least once.

    Each fault is injected once the events of the previous part are in the hub, so the six
    faults happen, in order, whatever the machine's speed; the duplicates are bounded by the
    events the target itself reported sending again."""
    caplog.set_level(logging.INFO, logger="eventhubs_localhub")
    faults = ["close_connections", "detach_links"] * 3
    per_part = 30
    workload = make_workload(per_part * (len(faults) + 1), state_every=15)
    schema, *body = workload.messages
    # Part i: the records of lines up to the end of the part, with their STATE messages.
    bounds = [per_part * (i + 1) for i in range(len(faults) + 1)]
    parts: list[list[Any]] = [[schema]]
    records = 0
    for message in body:
        parts[-1].append(message)
        if isinstance(message, dict) and message.get("type") == "RECORD":
            records += 1
        elif records in bounds and records != bounds[-1] and len(parts) <= len(faults):
            parts.append([])
    assert len(parts) == len(faults) + 1
    with local_hub(ws_port=0) as hub, TinyProxy(tmp_path) as proxy:
        config = target_config(
            hub.connection_string(),
            **hub.ws_settings(),
            http_proxy_host="127.0.0.1",
            http_proxy_port=proxy.port,
        )
        target = TargetProcess(tmp_path, config)
        try:
            for part, fault, stored in zip(parts, faults, bounds, strict=False):
                target.write(part)
                getattr(hub.faults, fault)()  # strikes while the part is pending or in flight
                assert wait_until(lambda n=stored: hub.event_count("profiles") >= n, 30), (
                    f"after {fault}: {hub.event_count('profiles')} of {stored} events stored\n"
                    + target.stderr[-3000:]
                )
            target.write(parts[-1])
            target.close_input()
            result = target.wait(60)
        finally:
            target.kill()
        during_run = caplog.text
        resent = resent_events(result.stderr)
        check_delivery(
            "ws via proxy: connections closed x3, links detached x3",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
            max_duplicates=resent,
        )
    summary = re.search(r"Summary: .* (\d+) retries", result.stderr)
    assert summary and int(summary.group(1)) >= 1, result.stderr[-2000:]
    # It reconnected through the proxy every time: the hub saw only the proxy's side, on the
    # first connection and on one after each of the 3 closes at least.
    ws_peers = peers(during_run, "websocket")
    assert len(ws_peers) >= 4 and set(ws_peers) == {BIND_ADDRESS}, ws_peers


def test_ws_sustained_throttling_backs_off_and_finishes(tmp_path: Path) -> None:
    workload = make_workload(200, state_every=25)
    with local_hub(ws_port=0) as hub:
        hub.faults.reject_next(10**9)  # every transfer answered com.microsoft:server-busy
        target = TargetProcess(
            tmp_path, target_config(hub.connection_string(), **hub.ws_settings())
        )
        try:
            target.feed(workload.messages, close=False)
            assert wait_until(lambda: "throttled" in target.stderr, 60), target.stderr[-2000:]
            # Refused until a partition is at its second throttled retry (4 s at least apart).
            assert wait_until(lambda: _SECOND_RETRY.search(target.stderr) is not None, 30), (
                target.stderr[-2000:]
            )
            assert target.states() == [], "STATE written while every send was refused"
            assert hub.event_count("profiles") == 0
            hub.faults.reject_next(0)
            hub.faults.throttle(2000)
            target.close_input()
            result = target.wait(60)
        finally:
            target.kill()
        check_delivery(
            "ws: server-busy until a second retry, then 2 TU",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
        )
    waits: dict[str, list[tuple[float, float]]] = {}
    for at, line in target.stderr_lines:
        if match := _THROTTLED.search(line):
            waits.setdefault(match.group(1), []).append((at, float(match.group(2))))
    assert waits and min(d for w in waits.values() for _, d in w) >= 4.0, result.stderr[-2000:]
    gaps = [b[0] - a[0] for w in waits.values() for a, b in itertools.pairwise(w)]
    assert gaps and min(gaps) >= 3.9, gaps


def test_ws_black_hole_holds_state_back_until_acknowledged(tmp_path: Path) -> None:
    workload = make_workload(80, state_every=20)
    with local_hub(ws_port=0) as hub:
        hub.faults.black_hole(True)
        config = target_config(
            hub.connection_string(),
            **hub.ws_settings(),
            send_timeout_seconds=1,
            max_retries=20,
            retry_backoff_seconds=0.1,
            retry_backoff_max_seconds=0.2,
        )
        target = TargetProcess(tmp_path, config)
        try:
            target.feed(workload.messages, close=False)
            assert wait_until(lambda: target.stderr.count("retry 2/20") >= 2, 60), target.stderr[
                -2000:
            ]
            assert target.states() == [], "STATE written while the hub accepted nothing"
            assert hub.event_count("profiles") == 0
            hub.faults.black_hole(False)
            assert wait_until(lambda: bool(target.states()), 60), target.stderr[-2000:]
            target.close_input()
            result = target.wait(60)
        finally:
            target.kill()
        check_delivery(
            "ws: dispositions withheld (black hole)",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
            max_duplicates=80,
        )
    summary = re.search(r"Summary: .* (\d+) retries", result.stderr)
    assert summary and int(summary.group(1)) >= 2, result.stderr[-2000:]
