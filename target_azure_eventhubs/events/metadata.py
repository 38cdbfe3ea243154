"""singer-sdk's record metadata (`add_record_metadata`) as application properties.

The same `_sdc_*` values singer-sdk 0.54 writes into a record (`Sink._add_sdc_metadata_to_
record`), typed as the rest of the application properties (`events.properties`): the
`date-time` ones as AMQP timestamps, the integers as longs. They never enter the body.
A null value leaves its property out.

- Per row: `_sdc_extracted_at` (the RECORD message's `time_extracted`), `_sdc_received_at`
  (when the target read the row), `_sdc_deleted_at` (the row's own field, from taps that
  mark deletions), `_sdc_sequence` (milliseconds since the epoch when the row was read, as
  singer-sdk sets it) and `_sdc_table_version` (the message's `version`).
- Per event: `_sdc_batched_at` (when the sink's batch holding the event was drained for
  sending) and `_sdc_sync_started_at` (when the target started, epoch milliseconds as a
  long: singer-sdk types it `integer`).
- An event grouped from several rows carries the latest row's metadata, as it carries the
  latest row's attributes and statuses.
"""

from __future__ import annotations

import time
import typing as t
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from target_azure_eventhubs.events.errors import InvalidRecordError
from target_azure_eventhubs.events.properties import LONG, TIMESTAMP, PropertyValue, typed_value

# In the order singer-sdk adds them to a record.
SDC_PROPERTIES = (
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_deleted_at",
    "_sdc_sequence",
    "_sdc_table_version",
    "_sdc_sync_started_at",
)


def _typed(name: str, value: Any, kind: str, origin: str) -> PropertyValue | None:
    try:
        return typed_value(value, kind)
    except InvalidRecordError as exc:
        raise InvalidRecordError(f"record metadata {name} ({origin}) {exc.reason}") from None


@lru_cache(maxsize=1024)
def _extracted_at(text: str) -> PropertyValue | None:
    # A tap stamps many records with the same `time_extracted`: parsed once per value.
    return _typed("_sdc_extracted_at", text, TIMESTAMP, "time_extracted")


def from_ms(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime (exactly: no float rounding)."""
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)


# The last row's metadata: rows read within one millisecond with the same message fields
# share it (one dict, whose values also travel to the sender process once per chunk).
_last: tuple[tuple[Any, ...], dict[str, PropertyValue]] = ((), {})


def batch_time() -> datetime:
    """Now, at milliseconds: the `_sdc_batched_at` of the events of a drain."""
    return from_ms(time.time_ns() // 1_000_000)


def row_metadata(
    record: Mapping[str, Any], message: Mapping[str, Any] | None
) -> dict[str, PropertyValue]:
    """The per-row `_sdc_*` properties of one RECORD (see the module's rules). Rows with
    the same values share the returned dict: it must not be changed."""
    global _last  # noqa: PLW0603  (a one-entry cache)
    ms = time.time_ns() // 1_000_000
    raw_extracted = raw_version = None
    if message is not None:
        raw_extracted, raw_version = message.get("time_extracted"), message.get("version")
    deleted = record.get("_sdc_deleted_at")
    key = (ms, raw_extracted, raw_version, type(raw_version))
    if deleted is None and _last[0] == key:
        return _last[1]
    out: dict[str, PropertyValue] = {}
    if raw_extracted is not None:
        if type(raw_extracted) is str:
            extracted = _extracted_at(raw_extracted)
        else:
            extracted = _typed("_sdc_extracted_at", raw_extracted, TIMESTAMP, "time_extracted")
        out["_sdc_extracted_at"] = t.cast(PropertyValue, extracted)
    out["_sdc_received_at"] = from_ms(ms)
    if deleted is not None:
        deleted = _typed("_sdc_deleted_at", deleted, TIMESTAMP, "the record's field")
        out["_sdc_deleted_at"] = t.cast(PropertyValue, deleted)
    out["_sdc_sequence"] = ms
    if raw_version is not None:
        version = _typed("_sdc_table_version", raw_version, LONG, "version")
        out["_sdc_table_version"] = t.cast(PropertyValue, version)
    if deleted is None:
        _last = (key, out)
    return out


# The last event's `_sdc_*` map, by its inputs: the rows read within one millisecond share
# their row map (row_metadata), and a drain's events their batch time, so most events of a
# drain add the same map (one dict update each).
_last_event: tuple[object, datetime | None, int, dict[str, PropertyValue]] = (None, None, 0, {})


def event_metadata(
    row: Mapping[str, PropertyValue] | None,
    batched_at: datetime,
    sync_started_ms: int,
    into: dict[str, PropertyValue] | None = None,
) -> dict[str, PropertyValue]:
    """An event's `_sdc_*` properties in singer-sdk's order: its row's, and the batch's;
    added to `into` (its other properties) when given."""
    global _last_event  # noqa: PLW0603  (a one-entry cache)
    last_row, last_batched, last_started, last_out = _last_event
    if row is last_row and batched_at is last_batched and sync_started_ms == last_started:
        if into is None:
            return dict(last_out)
        into.update(last_out)
        return into
    built = _event_metadata(row, batched_at, sync_started_ms)
    if row is not None:  # a row map is shared and never changed (row_metadata)
        _last_event = (row, batched_at, sync_started_ms, built)
    if into is None:
        return dict(built)
    into.update(built)
    return into


def _event_metadata(
    row: Mapping[str, PropertyValue] | None, batched_at: datetime, sync_started_ms: int
) -> dict[str, PropertyValue]:
    out: dict[str, PropertyValue] = {}
    if row:
        for name, value in row.items():  # in singer-sdk's order (row_metadata)
            out[name] = value
            if name == "_sdc_received_at":  # always there: singer-sdk's batched_at follows
                out["_sdc_batched_at"] = batched_at
    if "_sdc_batched_at" not in out:
        out["_sdc_batched_at"] = batched_at
    out["_sdc_sync_started_at"] = sync_started_ms
    return out
