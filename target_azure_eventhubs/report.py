"""What a run tells its operator: progress lines and Singer metrics while it runs, the
summary at its end, and what a dry run would have sent."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from target_azure_eventhubs.changes.tracker import ChangeTracker, Counts
from target_azure_eventhubs.delivery.dry_run import DryRunDelivery
from target_azure_eventhubs.delivery.policy import DeliveryStats

METRICS = logging.getLogger("singer_sdk.metrics")  # singer-sdk's METRIC lines
_MB = 1024 * 1024


def metric(name: str, value: float, **tags: Any) -> None:
    """One Singer metric line, in singer-sdk's format."""
    kind = "timer" if isinstance(value, float) else "counter"
    point = {"type": kind, "metric": name, "value": value, "tags": tags}
    METRICS.info("METRIC: %s", orjson.dumps(point).decode())


@dataclass
class RunState:
    """What the target counts itself (the main thread writes, the reporter reads)."""

    started: float = field(default_factory=time.monotonic)
    records_read: int = 0
    per_stream: Counter[str] = field(default_factory=Counter)


class Reporter:
    """Progress lines every `interval` seconds from a thread of its own (a blocked reader
    still reports), and counters as Singer metrics: events and bytes accepted per event
    hub, retries, throttled sends, change-tracking counts per stream."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float,
        run: RunState,
        progress: Callable[[], DeliveryStats],
        tracker: ChangeTracker | None,
        *,
        dry_run: bool = False,
    ) -> None:
        self.logger = logger
        self.dry_run = dry_run
        self.interval = interval
        self.run = run
        self._progress = progress
        self._tracker = tracker
        self._stop = threading.Event()
        self._last = (run.started, 0)  # (when, records read) at the last line
        self._sent = DeliveryStats()  # what the metrics have counted so far
        self._counted: dict[str, Counts] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """The last metrics (call when delivery is closed: its final counts are in)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.emit_metrics()

    def _loop(self) -> None:
        # On a fixed schedule: the time spent logging does not push the next line back.
        due = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            self.log_progress()
            self.emit_metrics()
            due += self.interval
            if due <= time.monotonic():  # far behind (a stalled machine): no burst of lines
                due = time.monotonic() + self.interval

    def log_progress(self) -> None:
        now, records = time.monotonic(), self.run.records_read
        then, before = self._last
        self._last = (now, records)
        stats = self._progress()
        rate = (records - before) / (now - then) if now > then else 0.0
        line = f"Progress: {records:,} records read ({rate:,.0f}/s), "
        if self.dry_run:
            line += f"{stats.events_sent:,} events would be sent"
        else:
            line += (
                f"{stats.events_sent:,} events accepted, {stats.in_flight:,} in flight, "
                f"{stats.bytes_sent / _MB:,.1f} MB sent, {stats.retries} retries "
                f"({stats.throttled} throttled), oldest unaccepted "
                f"{stats.oldest_unacknowledged:.1f} s"
            )
        if self._tracker is not None:
            totals = _total(dict(self._tracker.counts).values())
            line += (
                f"; changes: {totals.realized:,} realized, {totals.existing:,} existing, "
                f"{totals.exited:,} exited, {totals.unchanged:,} unchanged"
            )
        self.logger.info("%s", line)

    def emit_metrics(self) -> None:
        with self._lock:  # the thread and stop() may both get here
            self._emit_change_metrics()
            if self.dry_run:
                return  # nothing was accepted
            stats = self._progress()
            for hub, (events, size) in stats.per_hub.items():
                events_before, size_before = self._sent.per_hub.get(hub, (0, 0))
                if events > events_before:
                    metric("events_accepted", events - events_before, eventhub=hub)
                    metric("bytes_accepted", size - size_before, eventhub=hub)
            if stats.retries > self._sent.retries:
                metric("send_retries", stats.retries - self._sent.retries)
            if stats.throttled > self._sent.throttled:
                metric("throttled_sends", stats.throttled - self._sent.throttled)
            self._sent = stats

    def _emit_change_metrics(self) -> None:
        if self._tracker is None:
            return
        for stream, counts in dict(self._tracker.counts).items():
            before = self._counted.get(stream, Counts())
            for status in ("realized", "existing", "exited"):
                delta = getattr(counts, status) - getattr(before, status)
                if delta:
                    metric("memberships", delta, stream=stream, status=status)
            if counts.unchanged > before.unchanged:
                metric("profiles_unchanged", counts.unchanged - before.unchanged, stream=stream)
            self._counted[stream] = Counts(**{k: getattr(counts, k) for k in Counts.__slots__})


def _total(counts: Iterator[Counts] | Any) -> Counts:
    total = Counts()
    for one in counts:
        for name in Counts.__slots__:
            setattr(total, name, getattr(total, name) + getattr(one, name))
    return total


def log_summary(
    logger: logging.Logger,
    *,
    run: RunState,
    stats: DeliveryStats,
    invalid: int,
    tracker: ChangeTracker | None,
    stopped: str | None,
    dry_run: bool = False,
) -> None:
    seconds = time.monotonic() - run.started
    records = run.records_read
    if dry_run:
        stats = DeliveryStats()  # nothing was sent: the dry-run lines say what would be
    partitions = ", ".join(f"{k}: {v}" for k, v in sorted(stats.per_partition.items()))
    logger.info(
        "Summary: %d records read, %d events sent (per partition {%s}), %d retries "
        "(%d throttled), %d invalid, %.1f s, %.0f records/s; %s",
        records,
        stats.events_sent,
        partitions,
        stats.retries,
        stats.throttled,
        invalid,
        seconds,
        records / seconds if seconds else 0.0,
        f"stopped: {stopped}" if stopped else "completed",
    )
    if tracker is None:
        return
    baseline = " (recorded without sending: baseline)" if tracker.options.baseline else ""
    for stream, counts in sorted(tracker.counts.items()):
        logger.info(
            "Changes in stream '%s': %d events (memberships: %d realized, %d existing, "
            "%d exited), %d profiles unchanged%s%s",
            stream,
            counts.events,
            counts.realized,
            counts.existing,
            counts.exited,
            counts.unchanged,
            only_exits(counts.only_exits),
            baseline,
        )


def only_exits(profiles: int) -> str:
    """The profiles a run had nothing to tell of, when there are any."""
    if not profiles:
        return ""
    return f", {profiles} profiles not sent (their input only exits memberships never delivered)"


def log_dry_run(
    logger: logging.Logger,
    delivery: DryRunDelivery,
    run: RunState,
    invalid: Counter[str],
    tracker: ChangeTracker | None,
) -> None:
    """Per stream, what a run would have sent; the first events on stderr."""
    streams = sorted(set(run.per_stream) | set(delivery.per_stream) | set(invalid))
    for stream in streams:
        would = delivery.per_stream.get(stream, Counter())
        counts = tracker.counts_for(stream) if tracker is not None else Counts()
        logger.info(
            "Dry run, stream '%s': %d records read, %d events would be sent (memberships: "
            "%d realized, %d existing, %d exited), %d profiles unchanged%s, %d invalid records",
            stream,
            run.per_stream.get(stream, 0),
            would["events"],
            would["realized"],
            would["existing"],
            would["exited"],
            counts.unchanged,
            only_exits(counts.only_exits),
            invalid.get(stream, 0),
        )
    for index, body in enumerate(delivery.samples, start=1):
        pretty = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
        logger.info("Dry run, event %d of %d shown:\n%s", index, len(delivery.samples), pretty)
    logger.info("Dry run: nothing was sent, no store was changed, no STATE was written")


def stop_reason(error: Exception) -> str:
    """Why a run stopped early, in the summary's words."""
    from target_azure_eventhubs import errors  # noqa: PLC0415

    reasons = (
        (errors.InvalidRecordFailure, "an invalid record (on_invalid_record is fail)"),
        (errors.SnapshotGuardError, "max_exit_fraction (the snapshot would exit too much)"),
        (errors.ChangeStoreError, "the change store failed"),
        (errors.DeliveryError, "Event Hubs did not accept events"),
        (errors.ConfigurationError, "a configuration error"),
        (errors.InputError, "broken input"),
    )
    return next((why for kind, why in reasons if isinstance(error, kind)), "an error")
