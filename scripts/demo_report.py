"""Read the demo's events back from the event hub and report what arrived.

Run by scripts/demo.sh with the project venv's python:

    python scripts/demo_report.py --connection-string "$CONN" --eventhub profiles \
        --sample-dir sample_data --state-file .demo/state.json

Reads every partition from the start (starting_position "-1") with the official
`azure.eventhub.EventHubConsumerClient`, until each partition's last enqueued event is in.
Every event is matched to a sample profile by its `identityMap.crmId` (the demo maps the
profiles' `profile_id` to that namespace). Prints events per partition, one event, the STATE
Meltano stored, a check line and, last, one machine-readable line:

    DEMO RESULT: profiles=N events=N missing=0 unexpected=0

Exit status 0 only when every sample profile arrived exactly once and nothing else did.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from azure.eventhub import EventHubConsumerClient


def sample_profiles(sample_dir: Path) -> set[str]:
    """Distinct `profile_id`s of every record in the demo's input files."""
    ids: set[str] = set()
    for path in sorted(sample_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    ids.add(json.loads(line)["profile_id"])
    return ids


def read_all(conn_str: str, eventhub: str, consumer_group: str, timeout: float) -> dict:
    """{partition_id: [event body dict, ...]} for everything in the hub right now."""
    client = EventHubConsumerClient.from_connection_string(
        conn_str, consumer_group=consumer_group, eventhub_name=eventhub
    )
    with client:
        targets: dict[str, int] = {}
        for pid in client.get_partition_ids():
            props = client.get_partition_properties(pid)
            targets[pid] = -1 if props["is_empty"] else props["last_enqueued_sequence_number"]
        received: dict[str, list[dict]] = {pid: [] for pid in targets}
        reached = {pid for pid, last in targets.items() if last < 0}
        done = threading.Event()
        lock = threading.Lock()

        def on_event_batch(context: Any, events: list) -> None:
            pid = context.partition_id
            with lock:
                for event in events:
                    received[pid].append(json.loads(event.body_as_str()))
                    if event.sequence_number >= targets[pid]:
                        reached.add(pid)
                if len(reached) == len(targets):
                    done.set()

        if len(reached) == len(targets):
            return received
        worker = threading.Thread(
            target=client.receive_batch,
            kwargs={
                "on_event_batch": on_event_batch,
                "starting_position": "-1",
                "max_wait_time": 1,
                "max_batch_size": 300,
            },
            daemon=True,
        )
        worker.start()
        if not done.wait(timeout):
            print(f"warning: stopped reading after {timeout:.0f} s; partitions not read to "
                  f"the end: {sorted(set(targets) - reached)}", file=sys.stderr)
        with lock:
            result = {pid: list(events) for pid, events in received.items()}
    return result


def crm_id(event: dict) -> str | None:
    ids = (event.get("identityMap") or {}).get("crmId") or []
    return ids[0].get("id") if ids else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connection-string", required=True)
    parser.add_argument("--eventhub", default="profiles")
    parser.add_argument("--consumer-group", default="$Default")
    parser.add_argument("--sample-dir", type=Path, default=Path("sample_data"))
    parser.add_argument("--state-file", type=Path, help="output of `meltano state get`")
    parser.add_argument("--state-id", default="", help="the state id, for the report")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    expected = sample_profiles(args.sample_dir)
    started = time.monotonic()
    by_partition = read_all(args.connection_string, args.eventhub, args.consumer_group,
                            args.timeout)
    events = [e for pid in sorted(by_partition, key=int) for e in by_partition[pid]]
    seen = Counter(crm_id(e) for e in events)

    print(f"== Events read back from event hub '{args.eventhub}' "
          f"({time.monotonic() - started:.1f} s, consumer group {args.consumer_group})")
    for pid in sorted(by_partition, key=int):
        print(f"   partition {pid}: {len(by_partition[pid])} events")
    print(f"   total: {len(events)} events")

    print("\n== One event (the first with several memberships)")
    sample = next(
        (e for e in events if len((e.get("segmentMembership") or {}).get("ups", {})) > 1),
        events[0] if events else None,
    )
    print(json.dumps(sample, indent=2, ensure_ascii=False) if sample else "   (no events)")

    print(f"\n== Where the STATE went: meltano state get {args.state_id or '<state id>'}")
    if args.state_file and args.state_file.exists():
        text = args.state_file.read_text(encoding="utf-8").strip()
        try:
            print(json.dumps(json.loads(text), indent=2))
        except json.JSONDecodeError:
            print(text or "   (empty)")
    else:
        print("   (no state file given)")

    missing = expected - set(seen)
    unexpected = sum(n for pid, n in seen.items() if pid not in expected)
    unexpected += sum(n - 1 for pid, n in seen.items() if pid in expected and n > 1)
    ok = not missing and not unexpected and len(events) == len(expected)
    print("\n== Check")
    print(f"   {len(expected)} distinct profiles in {args.sample_dir}/*.jsonl, "
          f"{len(events)} events arrived, {len(seen.keys() & expected)} profiles matched: "
          + ("OK" if ok else "MISMATCH"))
    if missing:
        print(f"   missing ({len(missing)}): {', '.join(sorted(missing)[:10])}"
              + (" ..." if len(missing) > 10 else ""))
    if unexpected:
        extra = [f"{pid} x{n}" for pid, n in seen.items()
                 if pid not in expected or n > 1]
        print(f"   unexpected ({unexpected}): {', '.join(sorted(map(str, extra))[:10])}")
    print(f"DEMO RESULT: profiles={len(expected)} events={len(events)} "
          f"missing={len(missing)} unexpected={unexpected}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
