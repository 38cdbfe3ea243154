"""What a run tells its operator: the summary at its end."""

from __future__ import annotations

import logging

from target_azure_eventhubs.changes.tracker import ChangeTracker
from target_azure_eventhubs.delivery.policy import DeliveryStats


def log_summary(
    logger: logging.Logger,
    *,
    records_read: int,
    seconds: float,
    stats: DeliveryStats,
    invalid: int,
    tracker: ChangeTracker | None,
) -> None:
    partitions = ", ".join(f"{k}: {v}" for k, v in sorted(stats.per_partition.items()))
    logger.info(
        "Summary: %d records read, %d events sent (per partition {%s}), %d retries "
        "(%d throttled), %d invalid, %.1f s, %.0f records/s",
        records_read,
        stats.events_sent,
        partitions,
        stats.retries,
        stats.throttled,
        invalid,
        seconds,
        records_read / seconds if seconds else 0.0,
    )
    if tracker is None:
        return
    baseline = " (recorded without sending: baseline)" if tracker.options.baseline else ""
    for stream, counts in sorted(tracker.counts.items()):
        logger.info(
            "Changes in stream '%s': %d events (memberships: %d realized, %d existing, "
            "%d exited), %d profiles unchanged%s",
            stream,
            counts.events,
            counts.realized,
            counts.existing,
            counts.exited,
            counts.unchanged,
            baseline,
        )
