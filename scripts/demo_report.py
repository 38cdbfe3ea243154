"""Read the demo's events back from the event hub and report what arrived.

Run by scripts/demo.sh with the project venv's python:

    python scripts/demo_report.py --connection-string "$CONN" --eventhub profiles \
        --sample-dir sample_data --state-file .demo/state.json

Reads every partition from the start with the official `EventHubConsumerClient`
(`target_azure_eventhubs.testing.read_all`), until each partition's last enqueued event is in.
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
import time
from collections import Counter
from pathlib import Path

from target_azure_eventhubs.testing import partition_ends, read_all


def sample_profiles(sample_dir: Path) -> set[str]:
    """Distinct `profile_id`s of every record in the demo's input files."""
    ids: set[str] = set()
    for path in sorted(sample_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    ids.add(json.loads(line)["profile_id"])
    return ids


def read_bodies(conn_str: str, eventhub: str, consumer_group: str, timeout: float) -> dict:
    """{partition_id: [event body dict, ...]} for everything in the hub right now."""
    by_partition: dict[str, list[dict]] = {
        pid: [] for pid in partition_ends(conn_str, eventhub, consumer_group)
    }
    try:
        events = read_all(conn_str, eventhub, timeout, consumer_group)
    except TimeoutError as exc:
        print(f"warning: stopped reading after {timeout:.0f} s: {exc}", file=sys.stderr)
        return by_partition
    for event in events:
        by_partition[event.partition_id].append(json.loads(event.body))
    return by_partition


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
    by_partition = read_bodies(
        args.connection_string, args.eventhub, args.consumer_group, args.timeout
    )
    events = [e for pid in sorted(by_partition, key=int) for e in by_partition[pid]]
    seen = Counter(crm_id(e) for e in events)

    print(
        f"== Events read back from event hub '{args.eventhub}' "
        f"({time.monotonic() - started:.1f} s, consumer group {args.consumer_group})"
    )
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
    print(
        f"   {len(expected)} distinct profiles in {args.sample_dir}/*.jsonl, "
        f"{len(events)} events arrived, {len(seen.keys() & expected)} profiles matched: "
        + ("OK" if ok else "MISMATCH")
    )
    if missing:
        print(
            f"   missing ({len(missing)}): {', '.join(sorted(missing)[:10])}"
            + (" ..." if len(missing) > 10 else "")
        )
    if unexpected:
        extra = [f"{pid} x{n}" for pid, n in seen.items() if pid not in expected or n > 1]
        print(f"   unexpected ({unexpected}): {', '.join(sorted(map(str, extra))[:10])}")
    print(
        f"DEMO RESULT: profiles={len(expected)} events={len(events)} "
        f"missing={len(missing)} unexpected={unexpected}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
