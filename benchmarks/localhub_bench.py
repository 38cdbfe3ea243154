"""Throughput of the local hub: events/s accepted and events per CPU-second of the hub.

The hub runs in a subprocess (``LocalHubProcess``) so its CPU time is measured on its own
(/proc/<pid>/stat). Producer processes build their 1 MB ``EventDataBatch`` objects BEFORE the
timed window and resend them, so the SDK's batch-building cost does not limit the hub.

    python benchmarks/localhub_bench.py --producers 4 --seconds 10 --event-size 500

Prints a table and writes benchmarks/results/localhub.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventhubs_localhub import LocalHubProcess

RESULTS = Path(__file__).parent / "results" / "localhub.json"


def hub_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 (1-based) of the whole line.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def producer(conn: str, partition: str, event_size: int, batches: int, start, stop, out) -> None:
    from azure.eventhub import EventData, EventHubProducerClient

    client = EventHubProducerClient.from_connection_string(conn)
    with client:
        prepared = []
        for _ in range(batches):
            batch = client.create_batch(partition_id=partition)
            payload = b"x" * event_size
            while True:
                try:
                    batch.add(EventData(payload))
                except ValueError:
                    break
            prepared.append(batch)
        client.send_batch(prepared[0])  # warm up: connect, CBS, attach
        start.wait()
        sent = 0
        i = 0
        while not stop.is_set():
            batch = prepared[i % len(prepared)]
            client.send_batch(batch)
            sent += len(batch)
            i += 1
        out.put((sent, len(prepared[0]), prepared[0].size_in_bytes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--producers", type=int, default=4)
    # The hub keeps every event in memory (~250k events/s): keep runs short.
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--event-size", type=int, default=500)
    parser.add_argument("--batches", type=int, default=4, help="pre-built batches per producer")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    with LocalHubProcess(hubs={"bench": 4}, extra_args=["--log-level", "WARNING"]) as hub:
        conn = hub.connection_string("bench")
        start, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
        workers = [
            ctx.Process(
                target=producer,
                args=(conn, str(i % 4), args.event_size, args.batches, start, stop, out),
            )
            for i in range(args.producers)
        ]
        for worker in workers:
            worker.start()
        # Wait for every producer to be warmed up (each sent one batch).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _warm(hub, args.producers):
            time.sleep(0.2)
        count_before = int(hub.control("count bench").split()[1])
        cpu_before = hub_cpu_seconds(hub.pid)
        t0 = time.monotonic()
        start.set()
        time.sleep(args.seconds)
        stop.set()
        results = [out.get(timeout=60) for _ in workers]
        elapsed = time.monotonic() - t0
        cpu = hub_cpu_seconds(hub.pid) - cpu_before
        count_after = int(hub.control("count bench").split()[1])
        for worker in workers:
            worker.join(30)
    accepted = count_after - count_before
    report = {
        "producers": args.producers,
        "event_size_bytes": args.event_size,
        "events_per_batch": results[0][1],
        "batch_size_bytes": results[0][2],
        "seconds": round(elapsed, 2),
        "events_accepted": accepted,
        "events_per_second": round(accepted / elapsed),
        "hub_cpu_seconds": round(cpu, 3),
        "events_per_hub_cpu_second": round(accepted / cpu) if cpu else None,
        "hub_cpu_utilisation": round(cpu / elapsed, 3),
    }
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS}")
    return 0


def _warm(hub: LocalHubProcess, producers: int) -> bool:
    """Every producer's warm-up batch is stored (one batch per producer at least)."""
    counts = [int(hub.control(f"count bench {p}").split()[1]) for p in range(4)]
    expected = [0] * 4
    for i in range(producers):
        expected[i % 4] += 1
    return all(c >= 1 for c, e in zip(counts, expected, strict=True) if e)


if __name__ == "__main__":
    raise SystemExit(main())
