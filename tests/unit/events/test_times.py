"""Times: ISO-8601, epoch seconds and milliseconds, all to UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from target_azure_eventhubs.events import (
    InvalidRecordError,
    to_iso_utc,
)
from tests.unit.events.support import (
    EXPECTED,
    RAW_EMAIL,
    SECONDS,
    event_of,
    members,
    reject,
)

# ---------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-03-03T21:24:39Z", EXPECTED),
        ("2020-03-03T22:24:39+01:00", EXPECTED),
        ("2020-03-03T16:24:39-05:00", EXPECTED),
        ("2020-03-03T21:24:39", EXPECTED),
        ("2020-03-03 21:24:39", EXPECTED),
        (" 2020-03-03T21:24:39.000Z ", EXPECTED),
        ("2020-03-03T21:24:39.123Z", "2020-03-03T21:24:39.123Z"),
        ("2020-03-03T21:24:39.123999+00:00", "2020-03-03T21:24:39.123Z"),
        ("2020-03-03", "2020-03-03T00:00:00Z"),
        (datetime(2020, 3, 3, 21, 24, 39), EXPECTED),
        (datetime(2020, 3, 3, 21, 24, 39, tzinfo=UTC), EXPECTED),
        (datetime(2020, 3, 3, 22, 24, 39, tzinfo=timezone(timedelta(hours=1))), EXPECTED),
        (datetime(2020, 3, 3, 21, 24, 39, 5000), "2020-03-03T21:24:39.005Z"),
        (date(2020, 3, 3), "2020-03-03T00:00:00Z"),
        (SECONDS, EXPECTED),
        (SECONDS * 1000, EXPECTED),
        (SECONDS * 1000 + 123, "2020-03-03T21:24:39.123Z"),
        (float(SECONDS) + 0.25, "2020-03-03T21:24:39.250Z"),
        (Decimal("1583270679.123"), "2020-03-03T21:24:39.123Z"),
        (Decimal(SECONDS * 1000), EXPECTED),
        (str(SECONDS), EXPECTED),
        (str(SECONDS * 1000), EXPECTED),
        ("1583270679.5", "2020-03-03T21:24:39.500Z"),
        (0, "1970-01-01T00:00:00Z"),
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_times(value: Any, expected: str | None) -> None:
    assert to_iso_utc(value) == expected


@pytest.mark.parametrize(
    "garbage",
    [
        "yesterday",
        "2020-13-01",
        "2020-03-03T25:00:00",
        "1e9",
        "12:00",
        True,
        [1],
        {},
        1e30,
        float("nan"),
        Decimal("Infinity"),
    ],
)
def test_garbage_times(garbage: Any) -> None:
    with pytest.raises(InvalidRecordError) as info:
        to_iso_utc(garbage)
    assert "invalid time" in info.value.reason
    record = {
        "email": RAW_EMAIL,
        "segment_id": "s",
        "status": "realized",
        "last_qualification_time": garbage,
    }
    assert "invalid time" in reject(record)


def test_missing_time_is_omitted_never_invented() -> None:
    for record in (
        {"email": "a@example.com", "segment_id": "s", "status": "realized"},
        {
            "email": "a@example.com",
            "segment_id": "s",
            "status": "realized",
            "last_qualification_time": None,
        },
        {"email": "a@example.com", "segments": [{"id": "s", "status": "realized"}]},
    ):
        assert members(event_of(record)) == {"s": {"status": "realized"}}
