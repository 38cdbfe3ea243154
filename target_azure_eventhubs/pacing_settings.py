"""The throughput budget's settings (read by `delivery.pacing.pace_from_config`).

Apart from `delivery/pacing.py` because they need singer-sdk, which the sender process,
importing only what sending needs, must not load.
"""

from __future__ import annotations

from singer_sdk import typing as th

PACING_SETTINGS = th.PropertiesList(
    th.Property(
        "throughput_units",
        th.NumberType(exclusive_minimum=0, maximum=1000),
        description="The namespace's throughput units (Standard tier): pace sends to 1000 "
        "events/s and 1 MB/s (10^6 bytes) per unit, over all its hubs and partitions, so that "
        "the service need not answer server-busy. Off by default.",
    ),
    th.Property(
        "max_events_per_second",
        th.NumberType(exclusive_minimum=0, maximum=100_000_000),
        description="Pace sends to this many events/s over the namespace; with "
        "throughput_units, a lower figure than its own (other publishers share the units).",
    ),
    th.Property(
        "max_bytes_per_second",
        th.IntegerType(minimum=1024, maximum=100_000_000_000),
        description="Pace sends to this many bytes/s (batches as sent, properties "
        "included) over the namespace; with throughput_units, a lower figure than its own.",
    ),
)
