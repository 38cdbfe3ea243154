"""Smoke test of benchmarks/target_bench.py: every code path end to end on a small input.

Checks what was measured is correct (every case present, the hub holding exactly the
expected events, distinct message ids, bodies as converted); never asserts on timings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target_bench():
    sys.path.insert(0, str(BENCH_DIR))
    try:
        import target_bench

        yield target_bench
    finally:
        sys.path.remove(str(BENCH_DIR))


def test_benchmark_runs_every_case_and_verifies_the_hub(target_bench, tmp_path, capsys):
    records = 2000
    output = tmp_path / "target.json"
    target_bench.main(
        [
            "--records",
            str(records),
            "--latency-seconds",
            "3",
            "--latency-rate",
            "200",
            "--latency-warmup",
            "1",
            "--verify",
            "full",
            "--output",
            str(output),
            "--workdir",
            str(tmp_path / "work"),
        ]
    )
    results = json.loads(output.read_text())
    assert set(results["cases"]) == set(target_bench.ALL_CASES)

    for name in ("sdk_send", *target_bench.TARGET_CASES):
        case = results["cases"][name]
        assert case["verify"]["ok"], (name, case["verify"]["problems"])
        assert case["verify"]["events_in_hub"] == records
        assert sum(case["verify"]["per_partition"].values()) == records
        assert case["records_per_s"] > 0
        assert case["cpu_seconds"] > 0
        assert case["max_rss_mb"] > 0

    for name in target_bench.TARGET_CASES:
        verify = results["cases"][name]["verify"]
        assert verify["hub_counter"] == records
        assert verify["events_read_back"] == records  # --verify full
        assert verify["distinct_message_ids_read"] == records
        assert verify["bodies_compared"] > 0
        assert results["cases"][name]["states_written"] >= 1
    for name in ("target", "target_websockets"):
        per_profile = results["cases"][name]["verify"]
        assert per_profile["per_partition"] == per_profile["expected_per_partition"]
    # The WebSocket case really went over the WebSocket listener.
    assert results["cases"]["target_websockets"]["config"]["transport_type"] == "amqp_websockets"
    assert results["cases"]["target"]["one_record_run"]["ok"]

    latency = results["cases"]["latency"]
    assert latency["verify"]["ok"], latency["verify"]["problems"]
    assert latency["records"] == 600
    assert latency["verify"]["events_in_hub"] == 600
    assert latency["max_latency_ms"] == 1000
    for key in ("p50_ms", "p99_ms", "all_p50_ms", "all_p99_ms"):
        assert latency[key] == latency[key]  # not NaN: every record was matched

    assert "target_websockets / target (records/s)" in {f["figure"] for f in results["figures"]}
    out = capsys.readouterr().out
    assert "records/s" in out and "vs target" in out


def test_generated_input_is_deterministic_with_one_event_per_record(tmp_path):
    sys.path.insert(0, str(BENCH_DIR))
    try:
        import common
    finally:
        sys.path.remove(str(BENCH_DIR))
    a, b = tmp_path / "a.singer", tmp_path / "b.singer"
    common.write_input(a, 2500)
    common.write_input(b, 2500)
    assert a.read_bytes() == b.read_bytes()
    lines = [json.loads(line) for line in a.read_bytes().splitlines()]
    kinds = [m["type"] for m in lines]
    assert kinds.count("RECORD") == 2500
    assert kinds.count("STATE") == 3  # after 1000, 2000 and the last record
    ids = [m["record"]["profile_id"] for m in lines if m["type"] == "RECORD"]
    assert len(set(ids)) == len(ids)  # one row per profile: events == records


def test_change_tracking_benchmark_verifies_every_round(tmp_path, capsys):
    """benchmarks/changes_bench.py on a small input, both stores, one round (CI's time
    budget; the rounds repeat the same code): every case holds exactly the events its kind
    of run must send."""
    from tests.postgres import find_server_bin

    stores = "sqlite,postgresql" if find_server_bin() else "sqlite"
    sys.path.insert(0, str(BENCH_DIR))
    try:
        import changes_bench

        output = tmp_path / "changes.json"
        args = ["--profiles", "600", "--repeat", "1", "--stores", stores]
        changes_bench.main([*args, "--output", str(output), "--workdir", str(tmp_path / "w")])
    finally:
        sys.path.remove(str(BENCH_DIR))
    results = json.loads(output.read_text())
    cases = results["cases"]
    expected = {"off": 600, "first": 600, "identical": 0, "changed": 6 + 6}  # 1% joined, gone
    assert set(cases) == {"off"} | {
        f"{store}_{kind}" for store in stores.split(",") for kind in expected if kind != "off"
    }
    for name, case in cases.items():
        assert case["problems"] == [], (name, case["problems"])
        assert case["events_in_hub"] == expected[name.rpartition("_")[2]]
        assert len(case["runs_seconds"]) == 1
        assert case["seconds"] in case["runs_seconds"]
        assert case["vs_off"] > 0
        # The PostgreSQL server's CPU per run, for its cases only.
        if name.startswith("postgresql_"):
            assert len(case["server_cpu_runs"]) == 1
            assert all(seconds >= 0 for seconds in case["server_cpu_runs"])
        else:
            assert "server_cpu_seconds" not in case
    assert "median of 1 round(s)" in capsys.readouterr().out
