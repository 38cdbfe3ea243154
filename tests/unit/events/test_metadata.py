"""singer-sdk's `_sdc_*` record metadata as typed application properties (events.metadata)."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_azure_eventhubs.delivery.encoding import encode_message, epoch_ms
from target_azure_eventhubs.events import InvalidRecordError
from target_azure_eventhubs.events.metadata import (
    SDC_PROPERTIES,
    event_metadata,
    from_ms,
    row_metadata,
)
from target_azure_eventhubs.events.properties import parse_application_properties

TIMEZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=9, minutes=30))]
)
MESSAGE = {"type": "RECORD", "time_extracted": "2024-03-29T22:32:49.123456+02:00", "version": 7}


def test_the_names_are_singer_sdks() -> None:
    from singer_sdk.sinks.core import Sink

    schema: dict = {"properties": {}}

    class Probe:
        pass

    probe = Probe()
    probe.schema = schema  # type: ignore[attr-defined]
    Sink._add_sdc_metadata_to_schema(probe)  # type: ignore[arg-type]
    assert set(schema["properties"]) == set(SDC_PROPERTIES)


def test_a_row_with_every_value() -> None:
    before = time.time_ns() // 1_000_000
    meta = row_metadata({"_sdc_deleted_at": "2024-04-01T00:00:00Z"}, MESSAGE)
    after = time.time_ns() // 1_000_000
    assert list(meta) == [
        "_sdc_extracted_at",
        "_sdc_received_at",
        "_sdc_deleted_at",
        "_sdc_sequence",
        "_sdc_table_version",
    ]
    assert meta["_sdc_extracted_at"] == datetime(2024, 3, 29, 20, 32, 49, 123000, tzinfo=UTC)
    assert meta["_sdc_deleted_at"] == datetime(2024, 4, 1, tzinfo=UTC)
    assert meta["_sdc_table_version"] == 7
    sequence = meta["_sdc_sequence"]
    assert type(sequence) is int and before <= sequence <= after
    assert epoch_ms(meta["_sdc_received_at"]) == sequence  # type: ignore[arg-type]


def test_nulls_are_left_out() -> None:
    meta = row_metadata({"_sdc_deleted_at": None}, {"time_extracted": None, "version": None})
    assert list(meta) == ["_sdc_received_at", "_sdc_sequence"]
    assert list(row_metadata({}, None)) == ["_sdc_received_at", "_sdc_sequence"]


@pytest.mark.parametrize(
    ("record", "message", "reason"),
    [
        ({}, {"time_extracted": "yesterday"}, "_sdc_extracted_at (time_extracted) is not an ISO"),
        ({"_sdc_deleted_at": "soon"}, {}, "_sdc_deleted_at (the record's field) is not an ISO"),
        ({}, {"version": [1]}, "_sdc_table_version (version) is a list"),
        ({}, {"version": 2**64}, "_sdc_table_version (version) is an integer outside"),
    ],
)
def test_bad_values_make_the_record_invalid(record: dict, message: dict, reason: str) -> None:
    with pytest.raises(InvalidRecordError) as info:
        row_metadata(record, message)
    assert reason in info.value.reason


def test_an_event_carries_its_rows_metadata_and_the_batchs_in_sdk_order() -> None:
    row = row_metadata({}, MESSAGE)
    batched = from_ms(1_711_744_369_999)
    meta = event_metadata(row, batched, 1_711_744_000_000)
    assert list(meta) == [n for n in SDC_PROPERTIES if n != "_sdc_deleted_at"]
    assert meta["_sdc_batched_at"] == batched
    assert meta["_sdc_sync_started_at"] == 1_711_744_000_000
    assert list(event_metadata(None, batched, 1)) == ["_sdc_batched_at", "_sdc_sync_started_at"]


def test_events_of_one_row_map_and_batch_get_equal_maps_and_keep_their_own_order() -> None:
    """The map is remembered per row map and batch time: the next event gets the same
    values, added after its own properties, and a new batch time is not the old one's."""
    row = row_metadata({}, MESSAGE)
    batched, later = from_ms(1_711_744_369_999), from_ms(1_711_744_370_500)
    first = event_metadata(row, batched, 7, into={"stream": "s", "segment_ids": "a"})
    second = event_metadata(row, batched, 7, into={"stream": "s", "segment_ids": "b"})
    assert list(first)[:2] == ["stream", "segment_ids"]
    assert {k: v for k, v in second.items() if k.startswith("_sdc_")} == {
        k: v for k, v in first.items() if k.startswith("_sdc_")
    }
    assert second["segment_ids"] == "b"
    alone = event_metadata(row, batched, 7)
    alone["_sdc_sequence"] = -1  # a copy: the remembered map stays as it was
    assert event_metadata(row, batched, 7)["_sdc_sequence"] == first["_sdc_sequence"]
    assert event_metadata(row, later, 7)["_sdc_batched_at"] == later
    assert event_metadata(row, batched, 8)["_sdc_sync_started_at"] == 8


@given(st.integers(min_value=0, max_value=253_402_300_799_999))
def test_from_ms_is_exact_for_amqp_timestamps(ms: int) -> None:
    assert epoch_ms(from_ms(ms)) == ms


def test_sdc_names_are_reserved_for_application_properties() -> None:
    with pytest.raises(ValueError, match="names starting with '_sdc_' are reserved"):
        parse_application_properties({"_SDC_sequence": {"field": "x"}})


_SDK_EPOCH_TIMES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.none() | TIMEZONES
)


def sdk_epoch_ms(value: datetime) -> int:
    """azure-eventhub's own conversion (`_pyamqp._encode`, timestamps)."""
    return int(calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond / 1000)


@given(_SDK_EPOCH_TIMES.map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)))
def test_epoch_ms_is_the_sdks_for_whole_milliseconds(moment: datetime) -> None:
    assert epoch_ms(moment) == sdk_epoch_ms(moment)


@given(_SDK_EPOCH_TIMES)
def test_epoch_ms_floors_finer_times_where_the_sdk_rounds_its_float(moment: datetime) -> None:
    naive_utc = moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    micros = (naive_utc - datetime(1970, 1, 1)) // timedelta(microseconds=1)
    assert epoch_ms(moment) == micros // 1000
    assert abs(epoch_ms(moment) - sdk_epoch_ms(moment)) <= 1


def test_a_zone_without_an_offset_counts_as_utc_as_for_the_sdk() -> None:
    class Unknown(tzinfo):
        def utcoffset(self, dt: datetime | None) -> None:
            return None

    moment = datetime(2024, 3, 29, 20, 32, 49, 123000, tzinfo=Unknown())
    assert epoch_ms(moment) == sdk_epoch_ms(moment) == epoch_ms(moment.replace(tzinfo=None))


def test_two_instants_a_dst_fold_apart_stay_apart() -> None:
    zone = ZoneInfo("America/New_York")
    first = datetime(2024, 11, 3, 1, 30, tzinfo=zone)
    second = first.replace(fold=1)
    assert first == second  # same zone: compared by wall time
    assert epoch_ms(second) - epoch_ms(first) == 3_600_000
    encoded = [encode_message(b"{}", {"t": when}) for when in (first, second, first, second)]
    assert encoded[0] != encoded[1] and encoded[:2] == encoded[2:]


def test_an_invalid_extraction_time_is_refused_every_time() -> None:
    for _ in range(2):  # parsed times are kept; refusals are not
        with pytest.raises(InvalidRecordError, match="_sdc_extracted_at"):
            row_metadata({}, {"time_extracted": "not a time"})
