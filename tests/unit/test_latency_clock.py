"""max_latency_ms counts, for the first records, from when the command started."""

from __future__ import annotations

import time

import pytest

from target_azure_eventhubs import runtime
from target_azure_eventhubs.target import TargetAzureEventHubs

CONFIG = {
    "connection_string": (
        "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=v;"
        "UseDevelopmentEmulator=true"
    ),
    "eventhub_name": "profiles",
    "sender_process": False,  # nothing here connects: only the clock is looked at
}


def test_first_record_counts_from_the_command_start() -> None:
    # Input may have waited on stdin while the command loaded, so the first record's wait
    # starts at the command's start; later records' waits start when they are read.
    target = TargetAzureEventHubs(config={**CONFIG, "max_latency_ms": 1000})
    before = time.monotonic()
    target._first_record_clock = before - 0.1  # the command started 0.1 s ago
    assert target._pending_since() == before - 0.1
    assert target._pending_since() >= before  # later records: when read


def test_first_records_keep_half_of_max_latency_to_be_grouped() -> None:
    target = TargetAzureEventHubs(config={**CONFIG, "max_latency_ms": 1000})
    before = time.monotonic()
    target._first_record_clock = before - 60  # a slow tap: the first record came much later
    first = target._pending_since()
    assert before - 0.5 <= first <= time.monotonic() - 0.5


def test_without_a_command_start_records_count_from_when_they_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "_started", None)
    target = TargetAzureEventHubs(config=CONFIG)
    before = time.monotonic()
    assert target._pending_since() >= before
