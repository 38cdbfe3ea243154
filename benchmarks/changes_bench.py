"""Change tracking against tracking off, on the same generated input, in one run.

    python benchmarks/changes_bench.py                 # 100,000 profiles x 3 memberships
    python benchmarks/changes_bench.py --rss-check     # and peak RSS at 1,000,000 profiles
    python benchmarks/changes_bench.py --stores sqlite # skip the PostgreSQL store
    python benchmarks/changes_bench.py --repeat 1      # one round instead of three

The input is a "current members" table: one row per (profile, audience), a profile's rows
adjacent, a STATE every 1000 rows. Every case runs the target's command against a fresh
local hub (4 partitions) and reports records/s as a ratio to `off` measured in this run:

| case | input | store |
|---|---|---|
| `off` | snapshot A | change tracking off |
| `<store>_first` | snapshot A | a new store: every membership is sent as realized |
| `<store>_identical` | snapshot A again | nothing to send |
| `<store>_changed` | snapshot B: 1% of profiles join one more audience, 1% are gone | the same store |

with `snapshot_end: end_of_input`, for the SQLite store and a PostgreSQL server started
here. The whole sequence runs `--repeat` times (3 by default), each round on new stores;
each case reports its median time, so that one noisy run does not decide a ratio.
PostgreSQL cases also report the CPU time the server's backends spent on the run (the
postmaster's reaped children, read from /proc): the server shares the target's CPUs. Each
case checks what the hub holds (in every round): `first` every profile once with all its
memberships realized; `identical` nothing; `changed` exactly one event per joined profile
(the new audience realized) and per gone profile (all its memberships exited).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common
import orjson
import target_bench

from target_azure_eventhubs.testing import profiles, read_all

AUDIENCES = [profiles.segment_id(random.Random(n)) for n in range(12)]
MEMBERSHIPS = 3
SCHEMA: dict[str, Any] = {
    "type": "SCHEMA",
    "stream": common.STREAM,
    "schema": {
        "type": "object",
        "properties": {
            name: {"type": ["string", "null"]}
            for name in (
                [
                    "email",
                    "first_name",
                    "last_name",
                    "city",
                    "country",
                    "loyalty_tier",
                    "segment_id",
                    "status",
                ]
            )
        }
        | {"profile_id": {"type": "string"}},
    },
    "key_properties": ["profile_id"],
}
GOAL = {"first": 0.7, "identical": 1.0, "changed": 0.9}
# Every case, tracking off too: drains only when a batch of whole profiles is full (3,333
# profiles), never mid-profile on a timer, so that event counts are exact.
SETTINGS = {"max_latency_ms": 60_000, "batch_size_rows": 9_999}
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "changes.json"


def write_snapshot(path: Path, profiles_count: int, changed: bool) -> dict[str, Any]:
    """Snapshot A (or B) as Singer lines in `path`; returns the rows and what B changes."""
    rng = random.Random(20261201)
    joined: set[str] = set()
    rows = 0
    with path.open("wb") as out:
        out.write(orjson.dumps(SCHEMA) + b"\n")
        for i in range(profiles_count):
            pid = common.profile_id(i)
            members = profiles.member_rows(i, rng, pid, AUDIENCES, MEMBERSHIPS)
            if changed and i % 100 == 1:  # gone
                continue
            if changed and i % 100 == 2:  # joins one more audience
                extra = next(a for a in AUDIENCES if a not in {m["segment_id"] for m in members})
                members.append({**members[0], "segment_id": extra})
                joined.add(pid)
            for row in members:
                message = {"type": "RECORD", "stream": common.STREAM, "record": row}
                out.write(orjson.dumps(message) + b"\n")
            rows += len(members)
            if (i + 1) % (common.STATE_EVERY // MEMBERSHIPS) == 0:  # between two profiles
                state = {"bookmarks": {common.STREAM: {"row": rows}}}
                out.write(orjson.dumps({"type": "STATE", "value": state}) + b"\n")
        state = {"bookmarks": {common.STREAM: {"row": rows, "done": True}}}
        out.write(orjson.dumps({"type": "STATE", "value": state}) + b"\n")
    gone = (
        {common.profile_id(i) for i in range(profiles_count) if i % 100 == 1} if changed else set()
    )
    return {"records": rows, "joined": joined, "gone": gone}


def run_case(work: Path, name: str, input_path: Path, extra: dict[str, Any]) -> dict[str, Any]:
    hub = common.start_hub()
    try:
        config = target_bench.write_config(
            work / f"{name}.config.json", hub.connection_string(), extra
        )
        with input_path.open("rb") as stdin:
            child = common.run_child(
                [*target_bench.target_command(), "--config", str(config)],
                stdin,
                work / f"{name}.stderr",
            )
        count = common.hub_contents(hub.connection_string()).total
        events = read_all(hub.connection_string(), common.HUB, 300) if count <= 20_000 else []
    finally:
        common.stop_hub(hub)
    return {
        "seconds": child.wall_seconds,
        "cpu_seconds": child.cpu_seconds,
        "max_rss_mb": child.max_rss_mb,
        "returncode": child.returncode,
        "events_in_hub": count,
        "events": events,
        "last_state": orjson.loads(child.stdout_lines[-1]) if child.stdout_lines else None,
    }


def check(
    kind: str, result: dict[str, Any], truth: dict[str, Any], profiles_count: int
) -> list[str]:
    """What the hub should hold after each kind of run."""
    problems = []
    if result["returncode"] != 0:
        problems.append(f"exit code {result['returncode']}")
    if not (result["last_state"] or {}).get("bookmarks", {}).get(common.STREAM, {}).get("done"):
        problems.append(f"last STATE {result['last_state']}")
    statuses: Counter[str] = Counter()
    per_profile: dict[str, Counter[str]] = {}
    for event in result["events"]:
        body = json.loads(event.body)
        pid = body["identityMap"]["crmId"][0]["id"]
        seen = Counter(m["status"] for m in body["segmentMembership"]["ups"].values())
        per_profile.setdefault(pid, Counter()).update(seen)
        statuses.update(seen)
    expected = {
        "off": profiles_count,
        "first": profiles_count,
        "identical": 0,
        "changed": len(truth["joined"]) + len(truth["gone"]),
    }[kind]
    if result["events_in_hub"] != expected:
        problems.append(f"hub holds {result['events_in_hub']} events, expected {expected}")
    if kind == "changed":
        want = {pid: Counter(realized=1, existing=MEMBERSHIPS) for pid in truth["joined"]} | {
            pid: Counter(exited=MEMBERSHIPS) for pid in truth["gone"]
        }
        if per_profile != want:
            wrong = sorted(set(per_profile) ^ set(want))[:5]
            problems.append(f"changed run: events differ from the changes (e.g. {wrong})")
    if (
        kind == "first"
        and result["events"]
        and statuses != Counter(realized=profiles_count * MEMBERSHIPS)
    ):
        problems.append(f"first run statuses {dict(statuses)}")
    return problems


def run_store(
    work: Path,
    store: str,
    url: str,
    inputs: dict[str, Path],
    truth: dict,
    n: int,
    server: Any = None,
) -> dict[str, Any]:
    """One round of first, identical and changed runs on a new store; with the PostgreSQL
    `server`, the CPU time its backends spent on each run too."""
    extra = {
        **SETTINGS,
        "change_tracking": True,
        "snapshot_end": "end_of_input",
        "change_store": url,
    }
    cases: dict[str, Any] = {}
    for kind, snap in (("first", "a"), ("identical", "a"), ("changed", "b")):
        name = f"{store}_{kind}"
        print(f"[changes] {name} ...", file=sys.stderr, flush=True)
        before = server_cpu_seconds(server) if server else 0.0
        result = run_case(work, name, inputs[snap], extra)
        if server:
            sessions_ended(url)
            result["server_cpu_seconds"] = server_cpu_seconds(server) - before
        result["records"] = truth[snap]["records"]
        result["problems"] = check(kind, result, truth["b"], n)
        result["goal"] = GOAL[kind]
        cases[name] = result
    return cases


def postgres_server() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.postgres import PostgresServer, find_server_bin

    bin_dir = find_server_bin()
    if bin_dir is None:
        raise SystemExit(
            "PostgreSQL server binaries not found: run scripts/install_test_services.sh"
        )
    return PostgresServer(bin_dir).start()


def sessions_ended(url: str, timeout: float = 10) -> None:
    """Wait until the target's sessions on `url` have ended (their backends reaped)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:  # one session: its own CPU is small
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'target-azure-eventhubs'"
            ).fetchone()
            if not row or not row[0]:
                return
            time.sleep(0.05)


def server_cpu_seconds(server: Any) -> float:
    """CPU time of the server's ended backends: the postmaster's reaped children (Linux
    `/proc`)."""
    pid = (Path(server.root) / "data" / "postmaster.pid").read_text().split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def postgres_url(server: Any, database: str) -> str:
    """A new, empty database on `server`: a store with no history."""
    import psycopg

    admin = f"postgresql://{server.user}:{server.password}@127.0.0.1:{server.port}"
    with psycopg.connect(f"{admin}/{server.database}", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    return f"{admin}/{database}"


def median_case(runs: list[dict[str, Any]], off_per_s: float) -> dict[str, Any]:
    """The run of median time, with every run's time and every run's problems."""
    ordered = sorted(runs, key=lambda run: run["seconds"])
    case = dict(ordered[len(ordered) // 2])
    case["runs_seconds"] = [run["seconds"] for run in runs]
    case["problems"] = [p for run in runs for p in run.get("problems", [])]
    if "server_cpu_seconds" in case:
        case["server_cpu_runs"] = [run["server_cpu_seconds"] for run in runs]
    case["records_per_s"] = case["records"] / case["seconds"]
    case["vs_off"] = case["records_per_s"] / off_per_s
    return case


def rss_check(work: Path, profiles_count: int) -> dict[str, Any]:
    path = work / "rss.singer"
    truth = write_snapshot(path, profiles_count, changed=False)
    extra = {
        **SETTINGS,
        "change_tracking": True,
        "snapshot_end": "end_of_input",
        "change_store": f"sqlite:///{work / 'rss.sqlite'}",
    }
    first = run_case(work, "rss_first", path, extra)
    again = run_case(work, "rss_identical", path, extra)
    return {
        "profiles": profiles_count,
        "records": truth["records"],
        "first": {k: first[k] for k in ("seconds", "max_rss_mb", "events_in_hub", "returncode")},
        "identical": {
            k: again[k] for k in ("seconds", "max_rss_mb", "events_in_hub", "returncode")
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--profiles", type=int, default=100_000)
    p.add_argument("--stores", default="sqlite,postgresql")
    p.add_argument("--repeat", type=int, default=3, help="rounds; each case's median counts")
    p.add_argument("--rss-check", action="store_true")
    p.add_argument("--rss-profiles", type=int, default=1_000_000)
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.add_argument("--workdir", type=Path)
    args = p.parse_args(argv)
    work = args.workdir or Path(__import__("tempfile").mkdtemp(prefix="changes-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    n = args.profiles
    inputs, truth = {}, {}
    for snap, changed in (("a", False), ("b", True)):
        inputs[snap] = work / f"snapshot-{snap}.singer"
        truth[snap] = write_snapshot(inputs[snap], n, changed)
    print(f"[changes] {n:,} profiles, {truth['a']['records']:,} rows", file=sys.stderr)
    stores = args.stores.split(",")
    server = postgres_server() if "postgresql" in stores else None
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for round_ in range(args.repeat):
            off = run_case(work, "off", inputs["a"], SETTINGS)
            off["records"] = truth["a"]["records"]
            off["problems"] = check("off", off | {"events": []}, truth["b"], n)
            runs.setdefault("off", []).append(off)
            for store in stores:
                if store == "sqlite":
                    url = f"sqlite:///{work / f'changes-{round_}.sqlite'}"
                else:
                    url = postgres_url(server, f"changes_{round_}")
                pg = server if store == "postgresql" else None
                for name, case in run_store(work, store, url, inputs, truth, n, pg).items():
                    runs.setdefault(name, []).append(case)
    finally:
        if server is not None:
            server.stop()
    off_per_s = truth["a"]["records"] / statistics.median(r["seconds"] for r in runs["off"])
    cases = {name: median_case(found, off_per_s) for name, found in runs.items()}
    rss = rss_check(work, args.rss_profiles) if args.rss_check else None
    report(cases, rss, n, truth, args.repeat)
    for case in cases.values():
        case.pop("events", None)
    result = {
        "profiles": n,
        "records": truth["a"]["records"],
        "repeat": args.repeat,
        "cases": cases,
        "rss": rss,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str))
    print(f"JSON: {args.output}")
    return result


def report(
    cases: dict[str, Any], rss: dict[str, Any] | None, n: int, truth: dict, repeat: int
) -> None:
    print(
        f"\nN = {n:,} profiles x {MEMBERSHIPS} memberships = {truth['a']['records']:,} rows; "
        f"snapshot B: {len(truth['b']['joined']):,} joined, {len(truth['b']['gone']):,} gone; "
        f"median of {repeat} round(s)"
    )
    print(
        f"{'case':22}{'seconds':>9}{'records/s':>11}{'vs off':>8}{'goal':>7}{'events':>8}"
        f"{'peak RSS MB':>12}{'server CPU s':>13}  verified"
    )
    for name, c in cases.items():
        goal = c.get("goal")
        server = f"{c['server_cpu_seconds']:.2f}" if "server_cpu_seconds" in c else ""
        print(
            f"{name:22}{c['seconds']:9.2f}{c['records_per_s']:11,.0f}"
            f"{c.get('vs_off', 1.0):8.2f}{'' if goal is None else f'>={goal}':>7}"
            f"{c['events_in_hub']:8,}{c['max_rss_mb']:12.1f}"
            f"{server:>13}  " + ("yes" if not c["problems"] else "NO: " + "; ".join(c["problems"]))
        )
    if rss:
        print(
            f"RSS check, {rss['profiles']:,} profiles ({rss['records']:,} rows), SQLite: first run "
            f"{rss['first']['max_rss_mb']:.1f} MB in {rss['first']['seconds']:.1f} s "
            f"({rss['first']['events_in_hub']:,} events), identical run "
            f"{rss['identical']['max_rss_mb']:.1f} MB in {rss['identical']['seconds']:.1f} s "
            f"({rss['identical']['events_in_hub']} events)"
        )


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"[changes] {time.monotonic() - started:.0f} s", file=sys.stderr)
