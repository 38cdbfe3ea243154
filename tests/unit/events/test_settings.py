"""ConversionSettings: segment names and the catalog, and reading the target config."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from target_azure_eventhubs.events import (
    DEFAULT_IDENTITY_FIELDS,
    ConversionSettings,
)
from tests.unit.events.support import (
    DEFAULT,
    RAW_EMAIL,
    event_of,
    members,
)

# ---------------------------------------------------------------------------- names, catalog

CATALOG: dict[str, dict[str, Any]] = {
    "s1": {
        "name": "Catalog One",
        "createdAt": "2020-01-01T00:00:00Z",
        "updatedAt": 1577923200000,
        "mappingCreatedAt": 1577923200,
        "mappingUpdatedAt": datetime(2020, 1, 3, tzinfo=UTC),
    },
    "s2": {"name": "Catalog Two"},
}


def test_names_and_timestamps_from_catalog_and_rows() -> None:
    s = ConversionSettings(
        segment_catalog=CATALOG, include_segment_names=True, include_segment_timestamps=True
    )
    record = {
        "email": "a@example.com",
        "segments": [
            {"id": "s1", "status": "realized"},
            {"id": "s2", "status": "exited", "name": "Row Two"},
            {"id": "s3", "status": "existing"},
        ],
    }
    assert members(event_of(record, s)) == {
        "s1": {
            "status": "realized",
            "name": "Catalog One",
            "createdAt": 1577836800000,
            "updatedAt": 1577923200000,
            "mappingCreatedAt": 1577923200000,
            "mappingUpdatedAt": 1578009600000,
        },
        "s2": {"status": "exited", "name": "Row Two"},
        "s3": {"status": "existing"},
    }
    plain = dataclasses.replace(s, include_segment_names=False, include_segment_timestamps=False)
    assert members(event_of(record, plain))["s1"] == {"status": "realized"}
    names_only = dataclasses.replace(plain, include_segment_names=True)
    assert members(event_of(record, names_only))["s1"] == {
        "status": "realized",
        "name": "Catalog One",
    }


def test_row_segment_name_and_event_shaped_timestamps() -> None:
    s = ConversionSettings(include_segment_names=True, include_segment_timestamps=True)
    record = {
        "email": "a@example.com",
        "segment_id": "s",
        "status": "realized",
        "segment_name": "Row Name",
    }
    assert members(event_of(record, s)) == {"s": {"status": "realized", "name": "Row Name"}}
    shaped = {
        "identityMap": {"ecid": [{"id": "1"}]},
        "segmentMembership": {"ups": {"s": {"status": "existing", "createdAt": 0, "junk": 1}}},
    }
    assert members(event_of(shaped, s)) == {"s": {"status": "existing", "createdAt": 0}}


def test_bad_catalog_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="createdAt"):
        ConversionSettings(segment_catalog={"s": {"createdAt": "soon"}})
    with pytest.raises(ValueError):
        ConversionSettings(segment_catalog={"s": "not an object"})  # type: ignore[dict-item]


# ---------------------------------------------------------------------------- from_config


def test_from_config_defaults_and_overrides() -> None:
    assert ConversionSettings.from_config({}) == ConversionSettings()
    assert dict(ConversionSettings.from_config({}).identity_fields) == DEFAULT_IDENTITY_FIELDS
    s = ConversionSettings.from_config(
        {
            "identity_fields": '{"mail": "email_lc_sha256"}',
            "attribute_fields": {"fn": "person.name.firstName"},
            "include_unmapped_attributes": "true",
            "segment_namespace": "custom",
            "include_segment_names": True,
            "include_segment_timestamps": None,
            "segment_catalog": [{"id": "s1", "name": "One", "createdAt": 0}],
            "unrelated_key": 1,
        }
    )
    assert dict(s.identity_fields) == {"mail": "email_lc_sha256"}
    assert s.include_unmapped_attributes is True and s.include_segment_timestamps is False
    assert s.segment_namespace == "custom"
    event = event_of({"mail": RAW_EMAIL, "fn": "A", "segment_id": "s1", "status": "added"}, s)
    assert event["segmentMembership"] == {"custom": {"s1": {"status": "realized", "name": "One"}}}
    with pytest.raises(ValueError):
        ConversionSettings.from_config({"include_segment_names": "perhaps"})
    with pytest.raises(ValueError):
        ConversionSettings.from_config({"identity_fields": {"email": ""}})


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.segment_namespace = "x"  # type: ignore[misc]
