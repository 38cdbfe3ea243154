"""The three input shapes, how they combine, and what makes an event-shaped record invalid."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from target_azure_eventhubs.events import (
    ConversionSettings,
    convert_record,
    encode_event,
)
from tests.unit.events.support import (
    DEFAULT,
    EMAIL_HASH,
    PHONE_HASH,
    PROFILE_UPDATES,
    RAW_EMAIL,
    SEG,
    event_of,
    members,
    reject,
)

# ---------------------------------------------------------------------------- the shapes


def test_membership_row_gives_the_documented_event() -> None:
    record = {
        "email": RAW_EMAIL,
        "ecid": "14575006536349286404619648085736425115",
        "first_name": "John",
        "last_name": "Doe",
        "birth_date": "1980-01-31",
        "segment_id": SEG,
        "status": "exited",
        "last_qualification_time": "2020-03-03T21:24:39Z",
    }
    event = event_of(record)
    assert event == {
        "person": {"name": {"firstName": "John", "lastName": "Doe"}, "birthDate": "1980-01-31"},
        "segmentMembership": {
            "ups": {SEG: {"lastQualificationTime": "2020-03-03T21:24:39Z", "status": "exited"}}
        },
        "identityMap": {
            "email_lc_sha256": [{"id": EMAIL_HASH}],
            "ecid": [{"id": "14575006536349286404619648085736425115"}],
        },
    }
    assert list(event) == ["person", "segmentMembership", "identityMap"]
    body = encode_event(event)
    assert json.loads(body) == event
    assert b"John.Doe" not in body and b"john.doe" not in body


def test_segments_list_with_key_variants() -> None:
    record = {
        "email": "a@example.com",
        "segments": [
            {"id": "s1", "status": "realized", "last_qualification_time": "2020-03-03T21:24:39Z"},
            {"segment_id": "s2", "status": "existing", "lastQualificationTime": 1583270679},
            {"id": 3, "status": "exited", "segment_name": "Three"},
        ],
    }
    profile = convert_record(record, DEFAULT)
    assert profile.segment_ids() == ["s1", "s2", "3"]
    assert members(event_of(record)) == {
        "s1": {"lastQualificationTime": "2020-03-03T21:24:39Z", "status": "realized"},
        "s2": {"lastQualificationTime": "2020-03-03T21:24:39Z", "status": "existing"},
        "3": {"status": "exited"},
    }
    assert profile.memberships["3"]["name"] == "Three"


def test_segments_map_and_bare_status_and_json_text() -> None:
    record = {
        "email": "a@example.com",
        "segments": {"s1": {"status": "qualified", "name": "One"}, "s2": "removed"},
    }
    assert members(event_of(record)) == {"s1": {"status": "realized"}, "s2": {"status": "exited"}}
    text = {"email": "a@example.com", "segments": '[{"id": "s1", "status": "active"}]'}
    assert members(event_of(text)) == {"s1": {"status": "realized"}}


def test_row_and_segments_list_merge_row_wins() -> None:
    record = {
        "email": "a@example.com",
        "segments": [{"id": "s1", "status": "realized"}, {"id": "s2", "status": "existing"}],
        "segment_id": "s1",
        "status": "exited",
    }
    assert members(event_of(record)) == {"s1": {"status": "exited"}, "s2": {"status": "existing"}}


def test_event_shaped_record_is_validated_normalised_and_passed_through() -> None:
    record = {
        "person": {"name": {"firstName": "Jane"}, "score": Decimal("1.5")},
        "segmentMembership": {
            "ups": {
                SEG: {"status": "Qualified", "lastQualificationTime": "2020-03-03T22:24:39+01:00"}
            }
        },
        "identityMap": {
            "email_lc_sha256": [{"id": RAW_EMAIL}, {"id": EMAIL_HASH.upper()}],
            "ecid": [{"id": 123, "authenticatedState": "ambiguous"}],
        },
        "phone": "+1 (555) 010-9999",
        "_sdc_batched_at": datetime(2024, 1, 1),
    }
    event = event_of(record)
    assert event == {
        "person": {"name": {"firstName": "Jane"}, "score": 1.5},
        "segmentMembership": {
            "ups": {SEG: {"lastQualificationTime": "2020-03-03T21:24:39Z", "status": "realized"}}
        },
        "identityMap": {
            "email_lc_sha256": [{"id": EMAIL_HASH}],
            "ecid": [{"id": "123"}],
            "phone_sha256": [{"id": PHONE_HASH}],
        },
    }


def test_event_shaped_record_mapped_fields_win_over_passed_through_leaves() -> None:
    record = {
        "email": "a@example.com",
        "first_name": "Mapped",
        "person": {"name": {"firstName": "Given", "lastName": "Kept"}},
        "loyalty": "gold",
        "segmentMembership": {"ups": {}},
    }
    event = event_of(record)
    assert event["person"] == {"name": {"firstName": "Mapped", "lastName": "Kept"}}
    assert event["loyalty"] == "gold"
    assert members(event) == {}


def test_event_shaped_value_vs_object_is_a_collision() -> None:
    record = {"email": "a@example.com", "first_name": "A", "person": {"name": "A B"}}
    record["identityMap"] = {"ecid": [{"id": "1"}]}
    assert "collides" in reject(record, PROFILE_UPDATES)


def test_record_without_segment_is_an_identity_update_only_when_allowed() -> None:
    assert reject({"email": "a@example.com", "first_name": "A"}).startswith(
        "no segment membership: 'segment_id' (segment_id_field)"
    )
    event = event_of({"email": "a@example.com", "first_name": "A"}, PROFILE_UPDATES)
    assert event["segmentMembership"] == {"ups": {}}
    assert event["person"] == {"name": {"firstName": "A"}}


def test_segment_namespace_option() -> None:
    s = ConversionSettings(segment_namespace="custom")
    event = event_of({"email": "a@example.com", "segment_id": "x", "status": "realized"}, s)
    assert event["segmentMembership"] == {"custom": {"x": {"status": "realized"}}}


def test_configurable_segment_field_names() -> None:
    s = ConversionSettings(
        segment_id_field="audience",
        segment_status_field="state",
        segment_time_field="at",
        segment_name_field="audience_name",
        segments_field="audiences",
        include_segment_names=True,
    )
    record = {
        "email": "x@example.com",
        "audience": "a1",
        "state": "entered",
        "at": 0,
        "audience_name": "A1",
        "status": "ignored-not-a-segment-field-here",
    }
    assert members(event_of(record, s)) == {
        "a1": {"lastQualificationTime": "1970-01-01T00:00:00Z", "status": "realized", "name": "A1"}
    }
    listed = {"email": "x@example.com", "audiences": [{"audience": "a2", "state": "left"}]}
    assert members(event_of(listed, s)) == {"a2": {"status": "exited"}}


# ---------------------------------------------------------------------------- shape-3 errors


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ({"segmentMembership": ["ups"], "email": RAW_EMAIL}, "segmentMembership must be"),
        ({"segmentMembership": {"ups": ["s"]}, "email": RAW_EMAIL}, "segmentMembership.ups"),
        ({"segmentMembership": {"ups": {"s": "realized"}}, "email": RAW_EMAIL}, "object"),
        (
            {"segmentMembership": {"other": {"s": {"status": "realized"}}}, "email": RAW_EMAIL},
            "'other'",
        ),
        (
            {"segmentMembership": {"ups": {"": {"status": "realized"}}}, "email": RAW_EMAIL},
            "empty segment id",
        ),
        ({"segmentMembership": {"ups": {"s": {"status": "maybe"}}}, "email": RAW_EMAIL}, "'maybe'"),
        (
            {
                "segmentMembership": {
                    "ups": {"s": {"status": "realized", "lastQualificationTime": "soon"}}
                },
                "email": RAW_EMAIL,
            },
            "'soon'",
        ),
        ({"identityMap": [RAW_EMAIL]}, "identityMap must be"),
        ({"identityMap": {"email_lc_sha256": RAW_EMAIL}}, "identityMap.email_lc_sha256"),
        ({"identityMap": {"email_lc_sha256": [RAW_EMAIL]}}, "identityMap.email_lc_sha256[0]"),
        ({"identityMap": {"email_lc_sha256": [{"value": RAW_EMAIL}]}}, "has no id"),
        ({"identityMap": {"email_lc_sha256": [{"id": {"x": RAW_EMAIL}}]}}, "unsupported type"),
        ({"identityMap": {"": [{"id": "1"}]}}, "empty namespace"),
        ({"identityMap": {}, "segmentMembership": {"ups": {}}}, "no identity"),
        ({"email": RAW_EMAIL, "segments": 5}, "'segments' must be"),
        ({"email": RAW_EMAIL, "segments": ["s1"]}, "'segments'[0]"),
        ({"email": RAW_EMAIL, "segments": [{"status": "realized"}]}, "no segment id"),
        ({"email": RAW_EMAIL, "segments": "[not json"}, "not JSON"),
        (
            {"email": RAW_EMAIL, "segments": {"s": {"status": "realized", "createdAt": "x"}}},
            "createdAt",
        ),
        (
            {"email": RAW_EMAIL, "segment_id": "s", "status": "realized", "segment_name": ["x"]},
            "name",
        ),
        (["not", "a", "record"], "must be an object"),
    ],
)
def test_invalid_records(record: Any, fragment: str) -> None:
    assert fragment in reject(record)


def test_empty_other_namespace_is_accepted() -> None:
    record = {"email": "a@example.com", "segmentMembership": {"ups": {}, "other": {}}}
    assert event_of(record)["segmentMembership"] == {"ups": {}}


def test_reason_is_truncated() -> None:
    reason = reject({"email": RAW_EMAIL, "segment_id": "s", "status": "x" * 500})
    assert len(reason) < 400 and "..." in reason
