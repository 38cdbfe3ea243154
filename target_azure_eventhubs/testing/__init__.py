"""Helpers for testing pipelines that use this target: read back what an event hub holds
with the official consumer, and generate realistic, deterministic customer profiles.

Used by this project's tests, benchmarks and demo; usable in a data team's own CI against
the local hub (`azure-eventhubs-localhub`), the emulator or a real namespace.
"""

from __future__ import annotations

from target_azure_eventhubs.testing.readback import (
    PartitionEnd,
    ReadEvent,
    partition_ends,
    read_all,
    read_ranges,
)

__all__ = ["PartitionEnd", "ReadEvent", "partition_ends", "read_all", "read_ranges"]
