"""End-to-end benchmark of target-azure-eventhubs against the local hub.

    python benchmarks/target_bench.py                       # every case, N=200,000
    python benchmarks/target_bench.py --records 20000 --cases sdk_send,target
    python benchmarks/target_bench.py --rss-check           # adds N=100k and N=1M RSS runs
    python benchmarks/target_bench.py --repeat 5 --cases target,cloudevents_binary
                                              # 5 rounds; options judged by their median ratio
                                                            # (progress lines every 5 s)

Cases (each against a fresh `LocalHubProcess`, hub `profiles` with 4 partitions):

- sdk_send            one `EventHubProducerClient` (in a child process) sending the bodies
                      the target would produce, serialized beforehand: create_batch / add /
                      send_batch, no partition key. Timed from client creation to the last
                      send acknowledged.
- sdk_send_keyed      the same bodies through the SDK's own keyed path: the
                      producer in buffered mode, `send_event(partition_key=<profile id>)`
                      per event, flushed at the end: what per-profile keys cost a bare
                      SDK program. Not in the default run (`--cases sdk_send_keyed,target`).
- target              the `target-azure-eventhubs` CLI, stdin from the generated file,
                      default per-profile partitioning. Timed from spawn to exit.
- target_round_robin  the same with `partitioning: round_robin`.
- target_websockets   the `target` case over AMQP over WebSockets (`transport_type:
                      amqp_websockets`, plain ws:// to the hub's --ws-port listener);
                      reported with its ratio to `target` from the same run.
- target_progress     the `target` case with a progress line and Singer metrics every
                      second (`progress_interval_seconds: 1`); reported with its ratio to
                      `target` and the longest gap between two progress lines.
- avro, json_schema   Schema Registry encoding (benchmarks/registry_bench.py): the target
                      against an in-process hub in Entra mode with its registry, `encoding:
                      json` then the encoding, reported with the ratio of the two (not in the
                      default run: `--cases target,avro,json_schema`).
- latency             records trickled into the target's stdin at --latency-rate for
                      --latency-seconds; latency = event's x-opt-enqueued-time (consumer)
                      minus the time the record's line was written to the pipe.

Every target case is verified: exit code 0, the final STATE, the hub's event count per
partition (official SDK `get_partition_properties`, cross-checked with the hub's own
counter), the exact per-partition split for per-profile keys, and a read-back (official
`EventHubConsumerClient`) of the first and last events of each partition (or all of them
with --verify full): distinct message ids, one event per profile, bodies byte-identical to
the expected conversion. Results: a table on stdout and JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import orjson  # noqa: E402
import registry_bench  # noqa: E402

ALL_CASES = (
    "sdk_send",
    "target",
    "target_round_robin",
    "target_websockets",
    "target_progress",
    "latency",
)
PROGRESS_SECONDS = 1  # target_progress: a progress line and Singer metrics every second
# The target's cases: (extra settings, over WebSockets)
TARGET_VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    "target": ({}, False),
    "target_round_robin": ({"partitioning": "round_robin"}, False),
    "target_websockets": ({}, True),
    "target_progress": ({"progress_interval_seconds": PROGRESS_SECONDS}, False),
}
TARGET_CASES = tuple(TARGET_VARIANTS)
# Content options, each measured against `target` in the same run (`--cases
# target,identities_hashed,segment_namespaces,record_metadata,application_properties,
# cloudevents_binary`); not in the default run.
OPTION_VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    # the email and phone identities under custom namespaces marked for hashing, and an
    # identity list field (absent from the rows: its cost is the lookup)
    "identities_hashed": (
        {
            "identity_fields": {"profile_id": "crmId", "email": "Email", "phone": "Phone"},
            "hashed_identity_namespaces": {"Email": "email", "Phone": "phone"},
            "identity_list_field": "identities",
        },
        False,
    ),
    # every row's membership under the namespace its `preferred_channel` names (a handful
    # of values), beside the stream's own
    "segment_namespaces": (
        {
            "segment_namespace_field": "preferred_channel",
            "stream_segment_namespaces": {common.STREAM: "ups"},
        },
        False,
    ),
    "record_metadata": ({"add_record_metadata": True}, False),
    # three typed properties: two fields of the row and a constant
    "application_properties": (
        {
            "application_properties": {
                "tier": {"field": "loyalty_tier"},
                "country": {"field": "country"},
                "source": {"value": "crm"},
            }
        },
        False,
    ),
    # the CloudEvents attributes as application properties; the body is unchanged
    "cloudevents_binary": ({"cloudevents": "binary"}, False),
}
OPTION_COST_MAX = 0.10  # each option: records/s at least 90% of `target`'s
RSS_PROGRESS_SECONDS = 5  # the --rss-check runs: a progress line every 5 s
DEFAULT_OUTPUT = HERE / "results" / "target.json"
FIGURES = {
    "target_vs_sdk_send_min": 1.0,
    "round_robin_vs_target_max": 1.25,
    "rss_growth_max": 1.20,
    "rss_1m_max_mb": 300.0,
    "latency_p99_slack_ms": 250.0,
}


# ----------------------------------------------------------------------------- helpers


def target_command() -> list[str]:
    script = Path(sys.executable).parent / "target-azure-eventhubs"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "target_azure_eventhubs"]


def default_max_latency_ms() -> int:
    from target_azure_eventhubs.target import TargetAzureEventHubs

    return int(TargetAzureEventHubs.config_jsonschema["properties"]["max_latency_ms"]["default"])


def write_config(path: Path, connection_string: str, extra: dict[str, Any] | None = None) -> Path:
    config = {
        "connection_string": connection_string,
        "eventhub_name": common.HUB,
        **common.CONTENT_CONFIG,
        **(extra or {}),
    }
    path.write_text(json.dumps(config, indent=2))
    return path


def expected_bodies(
    input_path: Path, indices: set[int] | None = None, extra: dict[str, Any] | None = None
) -> dict[int, bytes]:
    """Record index -> the event body the product's conversion makes of that record (with
    the case's `extra` settings)."""
    from target_azure_eventhubs.events import (
        ConversionSettings,
        build_event,
        convert_record,
        encode_event,
    )

    config = {**common.CONTENT_CONFIG, **(extra or {})}
    settings = ConversionSettings.from_config(config).for_stream(common.STREAM)
    out: dict[int, bytes] = {}
    for index, record in enumerate(common.iter_records(input_path)):
        if indices is None or index in indices:
            out[index] = encode_event(build_event(convert_record(record, settings), settings))
    return out


def crm_index(body: bytes) -> int:
    """The record index an event came from (its crmId identity is the profile id)."""
    event = orjson.loads(body)
    return int(event["identityMap"]["crmId"][0]["id"].rsplit("-", 1)[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def progress_lines(stderr_path: Path, started_at: float) -> dict[str, Any]:
    """The progress lines a run logged: how many, the first one's time from the process
    start (which includes the start itself), and the longest wait between two."""
    times = []
    for line in stderr_path.read_text(errors="replace").splitlines():
        if "| Progress: " in line:
            stamp = time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
            times.append(time.mktime(stamp) + int(line[20:23]) / 1000)
    waits = [b - a for a, b in itertools.pairwise(times)]
    return {
        "lines": len(times),
        "first_after_seconds": times[0] - started_at if times else None,
        "longest_wait_seconds": max(waits) if waits else None,
    }


def git_info() -> dict[str, Any]:
    def run(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=False
            ).stdout
        except OSError:
            return ""

    status = run("status", "--porcelain", "--", "target_azure_eventhubs")
    dirty = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": run("rev-parse", "HEAD").strip(), "product_files_modified": dirty}


def product_digest() -> str:
    """SHA-256 over the product's source files: tells whether they changed during a run."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((HERE.parent / "target_azure_eventhubs").rglob("*.py")):
        digest.update(str(path.relative_to(HERE.parent)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = (
        "target-azure-eventhubs",
        "azure-eventhub",
        "singer-sdk",
        "orjson",
        "msgspec",
        "fastjsonschema",
    )
    return {name: version(name) for name in names}


# --------------------------------------------------------------------------- verification


def verify_hub(
    hub: Any,
    input_path: Path,
    records: int,
    per_profile: bool,
    mode: str,
    sample_per_partition: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the hub holds after a target run; `ok` is False with `problems` otherwise."""
    conn = hub.connection_string()
    problems: list[str] = []
    contents = common.hub_contents(conn)
    hub_counter = int(hub.control(f"count {common.HUB}").split()[1])
    if contents.total != records:
        problems.append(f"hub holds {contents.total} events, expected {records}")
    if hub_counter != contents.total:
        problems.append(f"hub counter says {hub_counter}, partition properties {contents.total}")
    expected_split = None
    if per_profile:
        from target_azure_eventhubs.delivery.partitioning import partition_for_key

        split = [0] * common.PARTITIONS
        for i in range(records):
            split[partition_for_key(common.profile_id(i), common.PARTITIONS)] += 1
        expected_split = {str(p): n for p, n in enumerate(split)}
        if contents.per_partition != expected_split:
            problems.append(
                f"per-partition counts {contents.per_partition} differ from the per-profile "
                f"key split {expected_split}"
            )

    # Read back (official consumer): all events, or the head and tail of each partition.
    started = time.perf_counter()
    if mode == "full":
        events = common.read_events(
            conn, {p: (0, n - 1) for p, n in contents.per_partition.items()}
        )
    else:
        heads = {p: min(n, sample_per_partition) for p, n in contents.per_partition.items()}
        events = common.read_events(conn, {p: (0, n - 1) for p, n in heads.items()})
        tails = {
            p: (max(heads[p], n - sample_per_partition), n - 1)
            for p, n in contents.per_partition.items()
        }
        events += common.read_events(conn, tails)
    read_seconds = time.perf_counter() - started
    seen_ids: set[str] = set()
    seen_profiles: dict[int, str] = {}
    for event in events:
        key = f"{event.partition_id}/{event.sequence_number}"
        if not event.message_id:
            problems.append(f"event {key} has no message id")
        elif event.message_id in seen_ids:
            problems.append(f"duplicate message id at {key}")
        seen_ids.add(event.message_id or "")
        index = crm_index(event.body)
        if index in seen_profiles:
            problems.append(f"profile {index} sent twice ({seen_profiles[index]} and {key})")
        seen_profiles[index] = key
        if not 0 <= index < records:
            problems.append(f"event {key} is for unknown profile {index}")
        elif per_profile:
            from target_azure_eventhubs.delivery.partitioning import partition_for_key

            want = str(partition_for_key(common.profile_id(index), common.PARTITIONS))
            if want != event.partition_id:
                problems.append(f"profile {index} on partition {event.partition_id}, want {want}")
    if mode == "full" and len(seen_profiles) != records:
        problems.append(f"read back {len(seen_profiles)} distinct profiles of {records}")
    # Byte-exact bodies for up to 2000 of the events read.
    check = sorted(seen_profiles)[:: max(1, len(seen_profiles) // 2000)]
    expected = expected_bodies(input_path, set(check), extra)
    by_index = {crm_index(e.body): e.body for e in events}
    mismatched = [i for i in check if by_index[i] != expected.get(i)]
    if mismatched:
        problems.append(
            f"{len(mismatched)} of {len(check)} bodies differ from the expected "
            f"conversion (first: record {mismatched[0]})"
        )
    return {
        "ok": not problems,
        "problems": problems[:20],
        "events_in_hub": contents.total,
        "hub_counter": hub_counter,
        "per_partition": contents.per_partition,
        "expected_per_partition": expected_split,
        "read_back_mode": mode,
        "events_read_back": len(events),
        "distinct_message_ids_read": len(seen_ids),
        "bodies_compared": len(check),
        "read_back_seconds": round(read_seconds, 2),
        "last_enqueued_ms": contents.last_enqueued_ms,
    }


def run_sdk_send(work: Path, input_path: Path, records: int, keyed: bool = False) -> dict[str, Any]:
    name = "sdk_send_keyed" if keyed else "sdk_send"
    hub = common.start_hub()
    try:
        hub_cpu0 = common.proc_cpu_seconds(hub.pid)
        child = common.run_child(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--sdk-send-worker",
                "--input",
                str(input_path),
                "--connection-string",
                hub.connection_string(),
                *(["--keyed"] if keyed else []),
            ],
            subprocess.DEVNULL,
            work / f"{name}.stderr",
        )
        hub_cpu = common.proc_cpu_seconds(hub.pid) - hub_cpu0
        if child.returncode != 0:
            raise RuntimeError(f"{name} worker failed; see {work / f'{name}.stderr'}")
        inner = json.loads(child.stdout_lines[-1])
        contents = common.hub_contents(hub.connection_string())
    finally:
        common.stop_hub(hub)
    problems = []
    if contents.total != records:
        problems.append(f"hub holds {contents.total} events, expected {records}")
    return {
        "records": records,
        "seconds": inner["seconds"],
        "records_per_s": records / inner["seconds"],
        "cpu_seconds": inner["cpu_seconds"],  # process CPU during the timed section
        "max_rss_mb": child.max_rss_mb,  # includes all bodies held in memory
        "process_wall_seconds": child.wall_seconds,
        "process_cpu_seconds": child.cpu_seconds,
        "hub_cpu_seconds": hub_cpu,
        "batches": inner["batches"],
        "mean_body_bytes": inner["mean_body_bytes"],
        "verify": {
            "ok": not problems,
            "problems": problems,
            "events_in_hub": contents.total,
            "per_partition": contents.per_partition,
        },
    }


def sdk_send_worker(input_path: Path, connection_string: str, keyed: bool = False) -> None:
    """Child process of `sdk_send` (and `sdk_send_keyed`): prints one JSON line."""
    import logging

    from azure.eventhub import EventData, EventHubProducerClient

    logging.getLogger("azure").setLevel(logging.WARNING)
    bodies = list(expected_bodies(input_path).values())
    if keyed:
        keys = [str(r["profile_id"]) for r in common.iter_records(input_path)]
        keyed_send_worker(bodies, keys, connection_string)
        return
    cpu0 = time.process_time()
    start = time.perf_counter()
    client = EventHubProducerClient.from_connection_string(
        connection_string, eventhub_name=common.HUB
    )
    batches = 0
    with client:
        batch = client.create_batch()
        for body in bodies:
            try:
                batch.add(EventData(body))
            except ValueError:
                client.send_batch(batch)
                batches += 1
                batch = client.create_batch()
                batch.add(EventData(body))
        if len(batch):
            client.send_batch(batch)
            batches += 1
        seconds = time.perf_counter() - start  # last send acknowledged (before close)
        cpu = time.process_time() - cpu0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "batches": batches,
                "events": len(bodies),
                "mean_body_bytes": sum(map(len, bodies)) / max(1, len(bodies)),
            }
        ),
        flush=True,
    )


def keyed_send_worker(bodies: list[bytes], keys: list[str], connection_string: str) -> None:
    """`sdk_send_keyed`: the SDK's buffered mode, one partition key per profile."""
    from azure.eventhub import EventData, EventHubProducerClient

    failed: list[Exception] = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    client = EventHubProducerClient.from_connection_string(
        connection_string,
        eventhub_name=common.HUB,
        buffered_mode=True,
        on_success=lambda events, pid: None,
        on_error=lambda events, pid, error: failed.append(error),
    )
    with client:
        for body, key in zip(bodies, keys, strict=True):
            client.send_event(EventData(body), partition_key=key)
        client.flush()
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    if failed:
        raise RuntimeError(f"{len(failed)} buffered sends failed: {failed[0]}")
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "batches": 0,
                "events": len(bodies),
                "mean_body_bytes": sum(map(len, bodies)) / max(1, len(bodies)),
            }
        ),
        flush=True,
    )


def run_target(
    work: Path,
    input_path: Path,
    records: int,
    name: str,
    extra_config: dict[str, Any] | None,
    verify_mode: str,
    sample_per_partition: int,
    websockets: bool = False,
) -> dict[str, Any]:
    hub = common.start_hub(websockets=websockets)
    try:
        if websockets:  # the listener's port is known once the hub runs
            extra_config = {**(extra_config or {}), **hub.ws_settings()}
        config = write_config(work / f"{name}.config.json", hub.connection_string(), extra_config)
        hub_cpu0 = common.proc_cpu_seconds(hub.pid)
        with input_path.open("rb") as stdin:
            child = common.run_child(
                [*target_command(), "--config", str(config)], stdin, work / f"{name}.stderr"
            )
        hub_cpu = common.proc_cpu_seconds(hub.pid) - hub_cpu0
        per_profile = (extra_config or {}).get("partitioning", "per_profile") == "per_profile"
        verify = verify_hub(
            hub, input_path, records, per_profile, verify_mode, sample_per_partition, extra_config
        )
    finally:
        common.stop_hub(hub)
    progress = progress_lines(work / f"{name}.stderr", child.started_at)
    states = [orjson.loads(line) for line in child.stdout_lines if line.strip()]
    want_state = {"bookmarks": {common.STREAM: {"row": records}}}
    if child.returncode != 0:
        verify["ok"] = False
        verify["problems"].append(f"target exited {child.returncode}; see {name}.stderr")
    if not states or states[-1] != want_state:
        verify["ok"] = False
        verify["problems"].append(f"last STATE {states[-1] if states else None}, want {want_state}")
    last_ms = verify.get("last_enqueued_ms")
    return {
        "records": records,
        "seconds": child.wall_seconds,
        "records_per_s": records / child.wall_seconds,
        "cpu_seconds": child.cpu_seconds,
        "user_seconds": child.user_seconds,
        "system_seconds": child.system_seconds,
        "max_rss_mb": child.max_rss_mb,
        "hub_cpu_seconds": hub_cpu,
        # From spawn to the hub enqueuing the last event (excludes closing the clients).
        "seconds_to_last_enqueued": (last_ms / 1000 - child.started_at) if last_ms else None,
        "states_written": len(states),
        "progress": progress,
        "config": extra_config or {},
        "verify": verify,
    }


def run_fixed_cost(work: Path) -> dict[str, Any]:
    """The target on one record: interpreter start, imports, connect, warm-up, close."""
    path = work / "one.singer"
    common.write_input(path, 1)
    hub = common.start_hub()
    try:
        config = write_config(work / "one.config.json", hub.connection_string())
        with path.open("rb") as stdin:
            child = common.run_child(
                [*target_command(), "--config", str(config)], stdin, work / "one.stderr"
            )
        count = common.hub_contents(hub.connection_string()).total
    finally:
        common.stop_hub(hub)
    return {
        "seconds": child.wall_seconds,
        "cpu_seconds": child.cpu_seconds,
        "max_rss_mb": child.max_rss_mb,
        "ok": child.returncode == 0 and count == 1,
    }


def run_latency(work: Path, seconds: float, rate: float, warmup: float) -> dict[str, Any]:
    """Trickle records into the target; latency = enqueued time - write time, per record."""
    records = int(seconds * rate)
    lines = list(common.singer_lines(records, seed=7))
    written_at: dict[int, float] = {}
    hub = common.start_hub()

    def feed(pipe: Any) -> None:
        fd = pipe.fileno()
        start = time.monotonic()
        sent = 0
        try:
            for index, line in lines:
                if index is not None:
                    due = start + sent / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                if index is not None:
                    written_at[index] = time.time()
                    sent += 1
        finally:
            pipe.close()

    try:
        config = write_config(work / "latency.config.json", hub.connection_string())
        child = common.run_child(
            [*target_command(), "--config", str(config)],
            None,
            work / "latency.stderr",
            feed=feed,
        )
        contents = common.hub_contents(hub.connection_string())
        events = common.read_events(
            hub.connection_string(), {p: (0, n - 1) for p, n in contents.per_partition.items()}
        )
    finally:
        common.stop_hub(hub)
    problems = []
    if child.returncode != 0:
        problems.append(f"target exited {child.returncode}; see latency.stderr")
    if contents.total != records:
        problems.append(f"hub holds {contents.total} events, expected {records}")
    latencies: dict[int, float] = {}
    ids = set()
    for event in events:
        index = crm_index(event.body)
        if index in latencies:
            problems.append(f"profile {index} sent twice")
        ids.add(event.message_id)
        latencies[index] = event.enqueued_ms - written_at[index] * 1000
    if len(ids) != len(events):
        problems.append("duplicate message ids")
    first_write = min(written_at.values()) if written_at else 0.0
    steady = [ms for i, ms in latencies.items() if written_at[i] - first_write >= warmup]
    every = list(latencies.values())
    return {
        "records": records,
        "rate_per_s": rate,
        "seconds": seconds,
        "max_latency_ms": default_max_latency_ms(),
        "warmup_seconds": warmup,
        "p50_ms": percentile(steady, 50),
        "p99_ms": percentile(steady, 99),
        "max_ms": max(steady) if steady else float("nan"),
        "all_p50_ms": percentile(every, 50),
        "all_p99_ms": percentile(every, 99),
        "all_max_ms": max(every) if every else float("nan"),
        "mean_ms": statistics.fmean(steady) if steady else float("nan"),
        "cpu_seconds": child.cpu_seconds,
        "max_rss_mb": child.max_rss_mb,
        "verify": {
            "ok": not problems,
            "problems": problems[:20],
            "events_in_hub": contents.total,
            "per_partition": contents.per_partition,
        },
    }


def run_rss_check(work: Path, sizes: tuple[int, ...], verify_mode: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        path = work / f"rss_{n}.singer"
        common.write_input(path, n)
        print(f"[rss-check] target at N={n:,} ...", file=sys.stderr, flush=True)
        progress = {"progress_interval_seconds": RSS_PROGRESS_SECONDS}
        result = run_target(work, path, n, f"rss_{n}", progress, verify_mode, 1000)
        path.unlink()
        out[str(n)] = result
    small, large = (out[str(n)]["max_rss_mb"] for n in sizes[:2])
    out["ratio"] = large / small
    return out


# ---------------------------------------------------------------------------------- report


def figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    cases = results["cases"]
    rows = []

    def add(name: str, value: float | None, goal: str, met: bool | None) -> None:
        rows.append({"figure": name, "value": value, "goal": goal, "met": met})

    if "target" in cases and "sdk_send" in cases:
        ratio = cases["target"]["records_per_s"] / cases["sdk_send"]["records_per_s"]
        add(
            "target / sdk_send (records/s)",
            ratio,
            ">= 1.0",
            ratio >= FIGURES["target_vs_sdk_send_min"],
        )
    if "target" in cases and "sdk_send_keyed" in cases:
        ratio = cases["target"]["records_per_s"] / cases["sdk_send_keyed"]["records_per_s"]
        add("target / sdk_send_keyed (records/s)", ratio, ">= 2.0", ratio >= 2.0)
    if "target" in cases and "target_round_robin" in cases:
        # Time ratio: how much slower round robin is than per-profile keys.
        ratio = cases["target_round_robin"]["seconds"] / cases["target"]["seconds"]
        add(
            "target_round_robin / target (time)",
            ratio,
            "<= 1.25",
            ratio <= FIGURES["round_robin_vs_target_max"],
        )
    if "target" in cases and "target_websockets" in cases:
        ratio = cases["target_websockets"]["records_per_s"] / cases["target"]["records_per_s"]
        add("target_websockets / target (records/s)", ratio, "-", None)
    if "target" in cases and "target_progress" in cases:
        ratio = cases["target_progress"]["records_per_s"] / cases["target"]["records_per_s"]
        add("target_progress / target (records/s)", ratio, ">= 0.9", ratio >= 0.9)
        wait = cases["target_progress"]["progress"]["longest_wait_seconds"]
        limit = PROGRESS_SECONDS * 1.1
        add(
            "target_progress: longest wait for a line s",
            wait,
            f"<= {limit:g}",
            _within(wait, limit),
        )
    rounds = results.get("rounds") or [cases]
    for name in OPTION_VARIANTS:
        if "target" in cases and name in cases:
            ratios = [r[name]["records_per_s"] / r["target"]["records_per_s"] for r in rounds]
            ratio = statistics.median(ratios)
            goal = 1 - OPTION_COST_MAX
            label = f"{name} / target (records/s" + (
                f", median of {len(ratios)} rounds)" if len(ratios) > 1 else ")"
            )
            add(label, ratio, f">= {goal:g}", ratio >= goal)
    for name in registry_bench.CASES:
        if name in cases:
            ratio = cases[name]["vs_json_records_per_s"]
            add(f"{name} / json, same hub (records/s)", ratio, "reported", None)
    if "latency" in cases:
        lat = cases["latency"]
        limit = lat["max_latency_ms"] + FIGURES["latency_p99_slack_ms"]
        add(
            f"latency p99 ms (after {lat['warmup_seconds']:g} s warm-up)",
            lat["p99_ms"],
            f"<= {limit:g}",
            lat["p99_ms"] <= limit,
        )
        add(
            "latency p99 ms (all records)",
            lat["all_p99_ms"],
            f"<= {limit:g}",
            lat["all_p99_ms"] <= limit,
        )
    rss = results.get("rss_check")
    if rss:
        keys = [k for k in rss if k.isdigit()]
        add(
            f"peak RSS N={int(keys[1]):,} / N={int(keys[0]):,}",
            rss["ratio"],
            "<= 1.20",
            rss["ratio"] <= FIGURES["rss_growth_max"],
        )
        big = rss[keys[1]]["max_rss_mb"]
        add(f"peak RSS MB at N={int(keys[1]):,}", big, "< 300", big < FIGURES["rss_1m_max_mb"])
        wait = rss[keys[1]]["progress"]["longest_wait_seconds"]
        limit = RSS_PROGRESS_SECONDS * 1.1
        add(
            f"N={int(keys[1]):,}: longest wait for a progress line s",
            wait,
            f"<= {limit:g}",
            _within(wait, limit),
        )
    return rows


def _within(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def print_table(results: dict[str, Any]) -> None:
    cases = results["cases"]
    base = cases.get("sdk_send", {}).get("records_per_s")
    print()
    print(
        (
            f"N = {results['records']:,} records/events; body ~{results['mean_body_bytes']:.0f} B; "
            if "mean_body_bytes" in results
            else ""
        )
        + f"{results['cpus']} CPUs; "
        f"commit {results['git']['commit'][:10]}"
        + (" + uncommitted product changes" if results["git"]["product_files_modified"] else "")
        + f"; product digest {results['product_digest_start']}"
    )
    loads = [results["loadavg_1min_start"]] + [
        c.get("loadavg_1min_before", 0.0) for c in cases.values()
    ]
    if max(loads) > 0.5:
        print(
            f"WARNING: other load on this machine during the run (1-min load average up to "
            f"{max(loads):.2f} before a case); figures are noisy"
        )
    if results.get("product_changed_during_run"):
        print(
            "WARNING: the product's source files changed during this run; cases measured "
            "different code"
        )
    target_base = cases.get("target", {}).get("records_per_s")
    header = (
        f"{'case':<20} {'seconds':>8} {'records/s':>10} {'vs sdk_send':>11} {'vs target':>9} "
        f"{'CPU s':>7} {'peak RSS MB':>11} {'hub CPU s':>9}  verified"
    )
    print(header)
    print("-" * len(header))
    for name in ("sdk_send", "sdk_send_keyed", *TARGET_CASES, *OPTION_VARIANTS):
        if name not in cases:
            continue
        c = cases[name]
        ratio = f"{c['records_per_s'] / base:.2f}" if base else "-"
        vs_target = f"{c['records_per_s'] / target_base:.2f}" if target_base else "-"
        ok = "yes" if c["verify"]["ok"] else "NO: " + "; ".join(c["verify"]["problems"][:2])
        print(
            f"{name:<20} {c['seconds']:>8.2f} {c['records_per_s']:>10,.0f} {ratio:>11} "
            f"{vs_target:>9} {c['cpu_seconds']:>7.2f} {c['max_rss_mb']:>11.1f} "
            f"{c['hub_cpu_seconds']:>9.2f}  {ok}"
        )
    for name in registry_bench.CASES:
        if name in cases:
            registry_bench.print_pair(name, cases[name])
    if "target" in cases:
        one = cases["target"]["one_record_run"]
        print(
            f"(fixed cost: the target on a 1-record input takes {one['seconds']:.2f} s wall, "
            f"{one['cpu_seconds']:.2f} s CPU; sdk_send's time excludes process start)"
        )
    if "latency" in cases:
        lat = cases["latency"]
        ok = "yes" if lat["verify"]["ok"] else "NO: " + "; ".join(lat["verify"]["problems"][:2])
        print(
            f"\nlatency: {lat['records']:,} records at {lat['rate_per_s']:g}/s for "
            f"{lat['seconds']:g} s, max_latency_ms={lat['max_latency_ms']} (default)"
        )
        print(
            f"  after {lat['warmup_seconds']:g} s warm-up: p50 {lat['p50_ms']:.0f} ms, "
            f"p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms"
        )
        print(
            f"  all records:         p50 {lat['all_p50_ms']:.0f} ms, "
            f"p99 {lat['all_p99_ms']:.0f} ms, max {lat['all_max_ms']:.0f} ms;"
            f" CPU {lat['cpu_seconds']:.2f} s; verified {ok}"
        )
    rss = results.get("rss_check")
    if rss:
        keys = [k for k in rss if k.isdigit()]
        print("\nRSS check (target, per-profile):")
        for k in keys:
            c = rss[k]
            ok = "yes" if c["verify"]["ok"] else "NO: " + "; ".join(c["verify"]["problems"][:2])
            lines = c["progress"]
            print(
                f"  N={int(k):>9,}: peak RSS {c['max_rss_mb']:.1f} MB, "
                f"{c['records_per_s']:,.0f} records/s, {lines['lines']} progress lines "
                f"(longest wait {lines['longest_wait_seconds'] or 0:.2f} s), verified {ok}"
            )
        print(f"  ratio {rss['ratio']:.3f}")
    if results["figures"]:
        print("\nFigures (informational; this benchmark measures, it does not enforce):")
        for f in results["figures"]:
            met = {True: "met", False: "NOT met", None: "-"}[f["met"]]
            value = "-" if f["value"] is None else f"{f['value']:.3f}"
            print(f"  {f['figure']:<50} {value:>9}  goal {f['goal']:<8} {met}")
    print(f"\nJSON: {results['output']}")


# ------------------------------------------------------------------------------------ main


def run_cases(
    results: dict[str, Any],
    cases: list[str],
    args: argparse.Namespace,
    work: Path,
    input_path: Path,
    first_round: bool = True,
) -> None:
    """One round: each case in turn, into `results["cases"]`."""
    for case in cases:
        print(f"[bench] {case} ...", file=sys.stderr, flush=True)
        load_before = os.getloadavg()[0]
        if case in ("sdk_send", "sdk_send_keyed"):
            result = run_sdk_send(work, input_path, args.records, case == "sdk_send_keyed")
        elif case in TARGET_VARIANTS or case in OPTION_VARIANTS:
            extra, websockets = {**TARGET_VARIANTS, **OPTION_VARIANTS}[case]
            result = run_target(
                work,
                input_path,
                args.records,
                case,
                extra or None,
                args.verify,
                args.sample_per_partition,
                websockets=websockets,
            )
            if case == "target" and first_round:
                result["one_record_run"] = run_fixed_cost(work)
        elif case in registry_bench.CASES:
            pair = registry_bench.run_encodings(
                work, input_path, args.records, [case], target_command()
            )
            result = {**pair[case], "json": pair["json"]}
            result["vs_json_records_per_s"] = (
                pair[case]["records_per_s"] / pair["json"]["records_per_s"]
            )
        else:
            result = run_latency(work, args.latency_seconds, args.latency_rate, args.latency_warmup)
        result["loadavg_1min_before"] = load_before
        results["cases"][case] = result
        print(f"[bench] {case}: done", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument(
        "--cases",
        default=",".join(ALL_CASES),
        help=f"comma list of {', '.join(ALL_CASES)} (the default), "
        f"or the options measured against target: {', '.join(OPTION_VARIANTS)}",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of the cases, one after the other; each option's figure is the median "
        "of its rounds' ratios to target (one round's ratio moves by up to 0.2 on a shared "
        "2-core machine)",
    )
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument("--latency-rate", type=float, default=200.0, help="records per second")
    p.add_argument(
        "--latency-warmup",
        type=float,
        default=2.0,
        help="seconds of trickle excluded from p50/p99 (all-record figures are reported too)",
    )
    p.add_argument(
        "--rss-check",
        action="store_true",
        help="also run the target at --rss-sizes and compare peak RSS",
    )
    p.add_argument("--rss-sizes", default="100000,1000000")
    p.add_argument(
        "--verify",
        choices=("sample", "full"),
        default="sample",
        help="read back the head and tail of each partition, or everything",
    )
    p.add_argument("--sample-per-partition", type=int, default=1000)
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.add_argument(
        "--workdir",
        type=Path,
        help="keep the input, configs and stderr logs here (default: a temp dir)",
    )
    p.add_argument("--sdk-send-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--keyed", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--connection-string", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.sdk_send_worker:
        sdk_send_worker(args.input, args.connection_string, args.keyed)
        return {}
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(ALL_CASES) - set(OPTION_VARIANTS) - set(registry_bench.CASES)
    unknown -= {"sdk_send_keyed"}
    if unknown:
        raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        work = args.workdir
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="target-bench-")
        work = Path(cleanup.name)
    results: dict[str, Any] = {
        "records": args.records,
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "versions": versions(),
        "git": git_info(),
        "product_digest_start": product_digest(),
        "partitions": common.PARTITIONS,
        "state_every": common.STATE_EVERY,
        "loadavg_1min_start": os.getloadavg()[0],
        "cases": {},
        "output": str(args.output),
    }
    try:
        input_path = work / "input.singer"
        if any(c != "latency" for c in cases):
            t0 = time.perf_counter()
            size = common.write_input(input_path, args.records)
            results["input_bytes"] = size
            print(
                f"[bench] input: {args.records:,} records, {size / 1e6:.1f} MB in "
                f"{time.perf_counter() - t0:.1f} s ({input_path})",
                file=sys.stderr,
                flush=True,
            )
            sample = expected_bodies(input_path, set(range(min(1000, args.records))))
            results["mean_body_bytes"] = sum(map(len, sample.values())) / max(1, len(sample))
        rounds: list[dict[str, Any]] = []
        for round_ in range(max(1, args.repeat)):
            if round_:
                print(f"[bench] round {round_ + 1} of {args.repeat}", file=sys.stderr, flush=True)
                results["cases"] = {}
            run_cases(results, cases, args, work, input_path, first_round=not round_)
            rounds.append(results["cases"])
        if len(rounds) > 1:  # every round's figures; `cases` holds the first round's
            results["rounds"] = rounds
            results["cases"] = rounds[0]
        if args.rss_check:
            sizes = tuple(int(s) for s in args.rss_sizes.split(","))
            results["rss_check"] = run_rss_check(work, sizes, "sample")
        results["figures"] = figures(results)
        results["product_digest_end"] = product_digest()
        results["product_changed_during_run"] = (
            results["product_digest_end"] != results["product_digest_start"]
        )
    finally:
        if cleanup is not None:
            cleanup.cleanup()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str))
    print_table(results)
    return results


if __name__ == "__main__":
    main()
