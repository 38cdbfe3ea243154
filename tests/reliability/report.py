"""Render the reliability suite's per-scenario JSON lines as a Markdown table.

RELIABILITY_REPORT=/tmp/rel.jsonl python -m pytest tests/reliability
python -m tests.reliability.report /tmp/rel.jsonl
"""

from __future__ import annotations

import json
import sys


def render(lines: list[str]) -> str:
    rows = [json.loads(line) for line in lines if line.strip()]
    out = [
        "| scenario | records sent | records in hub | duplicates | exit code(s) | seconds |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        codes = " → ".join(str(c) for c in row["exit_codes"])
        out.append(
            f"| {row['scenario']} | {row['records_sent']} | {row['records_in_hub']} | "
            f"{row['duplicates']} | {codes} | {row['seconds']:.1f} |"
        )
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        print(render(handle.readlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
