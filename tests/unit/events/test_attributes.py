"""Attributes at their paths, JSON-safe values, and path collisions."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from target_azure_eventhubs.events import (
    DEFAULT_ATTRIBUTE_FIELDS,
    ConversionSettings,
    encode_event,
)
from tests.unit.events.support import (
    EXPECTED,
    PROFILE_UPDATES,
    RAW_EMAIL,
    event_of,
    reject,
)

# ---------------------------------------------------------------------------- attributes


def test_attribute_paths_and_json_safe_values() -> None:
    s = ConversionSettings(
        allow_events_without_memberships=True,
        attribute_fields={
            **DEFAULT_ATTRIBUTE_FIELDS,
            "score": "loyalty.score",
            "points": "loyalty.points",
            "seen": "activity.lastSeen",
            "prefs": "preferences",
            "nothing": "x.y",
        },
    )
    record = {
        "ecid": "1",
        "first_name": "A",
        "birth_date": date(1980, 1, 31),
        "score": Decimal("12.5"),
        "points": Decimal("100"),
        "seen": datetime(2020, 3, 3, 22, 24, 39, tzinfo=timezone(timedelta(hours=1))),
        "prefs": {"tags": [Decimal("1"), date(2020, 1, 2)], "none": None},
        "nothing": None,
    }
    event = event_of(record, s)
    assert event["person"] == {"name": {"firstName": "A"}, "birthDate": "1980-01-31"}
    assert event["loyalty"] == {"score": 12.5, "points": 100}
    assert type(event["loyalty"]["points"]) is int
    assert event["activity"] == {"lastSeen": EXPECTED}
    assert event["preferences"] == {"tags": [1, "2020-01-02"], "none": None}
    assert "x" not in event
    assert json.loads(encode_event(event)) == event


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (float("inf"), "finite"),
        (Decimal("NaN"), "finite"),
        (2**70, "64-bit"),
        (b"bytes", "bytes"),
        ({1, 2}, "set"),
    ],
)
def test_attribute_values_that_cannot_be_json(value: Any, problem: str) -> None:
    assert problem in reject({"email": RAW_EMAIL, "first_name": value}, PROFILE_UPDATES)


def test_colliding_attribute_paths() -> None:
    s = ConversionSettings(
        allow_events_without_memberships=True,
        attribute_fields={"full_name": "person.name", "first_name": "person.name.firstName"},
    )
    reason = reject({"email": RAW_EMAIL, "full_name": "A B", "first_name": "A"}, s)
    assert "'person.name'" in reason and "'person.name.firstName'" in reason
    # Only one of the two has a value: fine.
    assert event_of({"email": "a@example.com", "full_name": "A B"}, s)["person"] == {"name": "A B"}
    same = ConversionSettings(
        allow_events_without_memberships=True, attribute_fields={"a": "x.y", "b": "x.y"}
    )
    assert "'x.y'" in reject({"email": RAW_EMAIL, "a": 1, "b": 2}, same)


def test_unmapped_attributes_collide_with_mapped_attributes_path() -> None:
    s = ConversionSettings(
        allow_events_without_memberships=True,
        attribute_fields={"tier": "attributes.level"},
        include_unmapped_attributes=True,
    )
    assert "collide" in reject({"email": RAW_EMAIL, "tier": 1, "level": 2}, s)
    assert event_of({"email": "a@example.com", "tier": 1, "x": 2}, s)["attributes"] == {
        "level": 1,
        "x": 2,
    }


def test_unmapped_attributes_only_when_enabled() -> None:
    record = {
        "email": RAW_EMAIL,
        "phone": "555",
        "first_name": "A",
        "tier": "gold",
        "visits": Decimal("3"),
        "empty": None,
        "segment_id": "s",
        "status": "realized",
        "last_qualification_time": 0,
        "segment_name": "S",
        "segments": [],
        "_sdc_extracted_at": datetime(2024, 1, 1),
        "_sdc_table_version": 3,
    }
    plain = event_of(record)
    assert list(plain) == ["person", "segmentMembership", "identityMap"]
    s = ConversionSettings(include_unmapped_attributes=True)
    event = event_of(record, s)
    assert list(event) == ["person", "attributes", "segmentMembership", "identityMap"]
    assert event["attributes"] == {"tier": "gold", "visits": 3}
    assert b"John.Doe" not in encode_event(event)


def test_sdc_and_event_keys_are_config_errors_in_attribute_fields() -> None:
    with pytest.raises(ValueError, match="Singer metadata"):
        ConversionSettings(attribute_fields={"_sdc_batched_at": "meta.batchedAt"})
    with pytest.raises(ValueError, match="overwrite"):
        ConversionSettings(attribute_fields={"x": "identityMap.x"})
    with pytest.raises(ValueError, match="empty path segment"):
        ConversionSettings(attribute_fields={"x": "a..b"})
