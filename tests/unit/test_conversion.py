"""Unit and property tests of target_azure_eventhubs.conversion (pure code)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from target_azure_eventhubs.conversion import (
    DEFAULT_ATTRIBUTE_FIELDS,
    DEFAULT_IDENTITY_FIELDS,
    STATUSES,
    ConversionSettings,
    InvalidRecordError,
    ProfileEvent,
    build_event,
    convert_record,
    encode_event,
    hash_identity,
    normalise_status,
    to_iso_utc,
)
from target_azure_eventhubs.encoding import message_id_for

RAW_EMAIL = "  John.Doe@Example.COM "
EMAIL_HASH = hashlib.sha256(b"john.doe@example.com").hexdigest()
PHONE_HASH = hashlib.sha256(b"+15550109999").hexdigest()
SEG = "7841ba61-23c1-4bb3-a495-00d695fe1e93"
SEG2 = "b3f0c7f2-0000-4000-8000-000000000002"
DEFAULT = ConversionSettings()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event_of(record: dict[str, Any], s: ConversionSettings = DEFAULT) -> dict[str, Any]:
    return build_event(convert_record(record, s), s)


def members(event: dict[str, Any], namespace: str = "ups") -> dict[str, Any]:
    return event["segmentMembership"][namespace]


def reject(record: Any, s: ConversionSettings = DEFAULT) -> str:
    with pytest.raises(InvalidRecordError) as info:
        convert_record(record, s)
    reason = info.value.reason
    assert reason == str(info.value)
    assert "John.Doe" not in reason and "john.doe" not in reason
    return reason


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
    assert "collides" in reject(record)


def test_record_without_segment_is_an_identity_update() -> None:
    event = event_of({"email": "a@example.com", "first_name": "A"})
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


# ---------------------------------------------------------------------------- statuses

SYNONYMS = {
    "realized": "realized",
    "existing": "existing",
    "exited": "exited",
    "qualified": "realized",
    "entered": "realized",
    "active": "realized",
    "added": "realized",
    "exiting": "exited",
    "removed": "exited",
    "left": "exited",
    "inactive": "exited",
}


@pytest.mark.parametrize(("raw", "expected"), sorted(SYNONYMS.items()))
@pytest.mark.parametrize("dress", [str, str.upper, str.title, lambda v: f"  {v}\t"])
def test_status_synonyms(raw: str, expected: str, dress: Any) -> None:
    assert normalise_status(dress(raw)) == expected
    record = {"email": "a@example.com", "segment_id": "s", "status": dress(raw)}
    assert members(event_of(record))["s"]["status"] == expected


@pytest.mark.parametrize("bad", ["", "enabled", "realised", None, 1, True, ["realized"], {}])
def test_invalid_statuses(bad: Any) -> None:
    with pytest.raises(InvalidRecordError) as info:
        normalise_status(bad)
    assert "realized, existing, exited" in info.value.reason
    if bad not in ("", None):
        reason = reject({"email": RAW_EMAIL, "segment_id": "s", "status": bad})
        assert repr(bad)[:20] in reason and "'s'" in reason


def test_missing_status_is_invalid() -> None:
    assert "no status" in reject({"email": RAW_EMAIL, "segment_id": "s1"})
    assert "no status" in reject({"email": RAW_EMAIL, "segments": [{"id": "s1"}]})
    assert "no status" in reject(
        {"email": RAW_EMAIL, "segmentMembership": {"ups": {"s1": {"lastQualificationTime": 0}}}}
    )


def test_status_without_segment_id_is_invalid() -> None:
    assert "segment_id" in reject({"email": RAW_EMAIL, "status": "realized"})


@pytest.mark.parametrize("bad_id", ["", "   ", True, 1.5, ["s"]])
def test_bad_segment_ids(bad_id: Any) -> None:
    reason = reject({"email": RAW_EMAIL, "segment_id": bad_id, "status": "realized"})
    assert "segment id" in reason
    reason = reject({"email": RAW_EMAIL, "segments": [{"id": bad_id, "status": "realized"}]})
    assert "segment id" in reason


def test_int_segment_id_becomes_string() -> None:
    record = {"email": "a@example.com", "segment_id": 42, "status": "realized"}
    assert convert_record(record, DEFAULT).segment_ids() == ["42"]


# ---------------------------------------------------------------------------- identities


def test_email_hash_vector() -> None:
    assert hash_identity("email_lc_sha256", RAW_EMAIL) == EMAIL_HASH
    assert hash_identity("email_lc_sha256", "john.doe@example.com") == EMAIL_HASH


def test_already_hashed_passes_through_lower_cased() -> None:
    assert hash_identity("email_lc_sha256", EMAIL_HASH.upper()) == EMAIL_HASH
    assert hash_identity("email_lc_sha256", f" {EMAIL_HASH} ") == EMAIL_HASH
    assert hash_identity("phone_sha256", PHONE_HASH.upper()) == PHONE_HASH


def test_phone_normalisation() -> None:
    assert hash_identity("phone_sha256", "+1 (555) 010-9999") == PHONE_HASH
    assert hash_identity("phone_sha256_e164", " +1.555.010.9999 ") == PHONE_HASH
    assert hash_identity("mobile_phone_sha256", "+15550109999") == PHONE_HASH
    assert hash_identity("phone_sha256", "(555) 010-9999") == sha("5550109999")
    assert hash_identity("phone_sha256", "n/a") == ""
    assert hash_identity("custom_sha256_e164", "+1 555 010 9999") == PHONE_HASH


def test_other_hashed_and_plain_namespaces() -> None:
    assert hash_identity("loyalty_sha256", " AbC ") == sha("abc")
    assert hash_identity("crmId", " AbC ") == "AbC"


def test_identity_values_lists_numbers_duplicates_and_order() -> None:
    s = ConversionSettings(
        identity_fields={
            "email": "email_lc_sha256",
            "email2": "email_lc_sha256",
            "crm_id": "crmId",
            "phone": "phone_sha256",
        }
    )
    record = {
        "email": [RAW_EMAIL, None, "", "other@example.com"],
        "email2": "JOHN.DOE@example.com",
        "crm_id": Decimal("12345"),
        "phone": 15550109999,
    }
    profile = convert_record(record, s)
    assert profile.identities == {
        "email_lc_sha256": [EMAIL_HASH, sha("other@example.com")],
        "crmId": ["12345"],
        "phone_sha256": [sha("15550109999")],
    }
    assert profile.first_identity() == f"email_lc_sha256:{EMAIL_HASH}"
    assert event_of(record, s)["identityMap"]["crmId"] == [{"id": "12345"}]


def test_no_identity_is_invalid() -> None:
    reason = reject({"first_name": "A", "email": "   ", "segment_id": "s", "status": "realized"})
    assert reason.startswith("no identity")
    assert "email, phone, ecid, crm_id" in reason


def test_unsupported_identity_type_reason_withholds_value() -> None:
    reason = reject({"email": {"address": RAW_EMAIL}})
    assert "email" in reason and "dict" in reason
    assert "unsupported type bool" in reject({"email": True})


# ---------------------------------------------------------------------------- times

SECONDS = 1583270679
EXPECTED = "2020-03-03T21:24:39Z"


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


# ---------------------------------------------------------------------------- merging


def test_merge_later_row_wins_and_identities_union() -> None:
    first = convert_record(
        {
            "email": RAW_EMAIL,
            "ecid": "e1",
            "first_name": "A",
            "last_name": "Old",
            "segment_id": "s1",
            "status": "realized",
            "last_qualification_time": 0,
        },
        DEFAULT,
    )
    second = convert_record(
        {
            "email": "john.doe@example.com",
            "ecid": "e2",
            "last_name": "New",
            "segment_id": "s2",
            "status": "existing",
        },
        DEFAULT,
    )
    third = convert_record({"crm_id": "c1", "segment_id": "s1", "status": "exited"}, DEFAULT)
    first.merge(second)
    first.merge(third)
    assert first.identities == {
        "email_lc_sha256": [EMAIL_HASH],
        "ecid": ["e1", "e2"],
        "crmId": ["c1"],
    }
    assert first.memberships == {"s1": {"status": "exited"}, "s2": {"status": "existing"}}
    assert first.attributes == {"person": {"name": {"firstName": "A", "lastName": "New"}}}
    assert first.segment_ids() == ["s1", "s2"]


def test_merge_does_not_alias_the_later_profile() -> None:
    base = ProfileEvent({"ecid": ["1"]}, {}, {})
    later = ProfileEvent({"ecid": ["2"]}, {"person": {"name": {"firstName": "A"}}}, {})
    base.merge(later)
    base.merge(ProfileEvent({}, {"person": {"name": {"lastName": "B"}}}, {}))
    assert later.attributes == {"person": {"name": {"firstName": "A"}}}
    assert later.identities == {"ecid": ["2"]}
    assert base.attributes == {"person": {"name": {"firstName": "A", "lastName": "B"}}}


def test_first_identity_none_when_empty() -> None:
    assert ProfileEvent().first_identity() is None
    assert ProfileEvent({"x": [], "ecid": ["1"]}).first_identity() == "ecid:1"


# ---------------------------------------------------------------------------- attributes


def test_attribute_paths_and_json_safe_values() -> None:
    s = ConversionSettings(
        attribute_fields={
            **DEFAULT_ATTRIBUTE_FIELDS,
            "score": "loyalty.score",
            "points": "loyalty.points",
            "seen": "activity.lastSeen",
            "prefs": "preferences",
            "nothing": "x.y",
        }
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
    assert problem in reject({"email": RAW_EMAIL, "first_name": value})


def test_colliding_attribute_paths() -> None:
    s = ConversionSettings(
        attribute_fields={"full_name": "person.name", "first_name": "person.name.firstName"}
    )
    reason = reject({"email": RAW_EMAIL, "full_name": "A B", "first_name": "A"}, s)
    assert "'person.name'" in reason and "'person.name.firstName'" in reason
    # Only one of the two has a value: fine.
    assert event_of({"email": "a@example.com", "full_name": "A B"}, s)["person"] == {"name": "A B"}
    same = ConversionSettings(attribute_fields={"a": "x.y", "b": "x.y"})
    assert "'x.y'" in reject({"email": RAW_EMAIL, "a": 1, "b": 2}, same)


def test_unmapped_attributes_collide_with_mapped_attributes_path() -> None:
    s = ConversionSettings(
        attribute_fields={"tier": "attributes.level"}, include_unmapped_attributes=True
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


# ---------------------------------------------------------------------------- encoding


def test_encode_and_message_id_are_deterministic() -> None:
    record = {"email": RAW_EMAIL, "segment_id": SEG, "status": "realized"}
    body_a = encode_event(event_of(record))
    body_b = encode_event(event_of(dict(record)))
    assert body_a == body_b
    assert b" " not in body_a  # compact
    assert message_id_for(body_a) == message_id_for(body_b)
    assert message_id_for(body_a) == hashlib.sha256(body_a).hexdigest()[:32]
    other = encode_event(event_of({**record, "status": "exited"}))
    assert message_id_for(other) != message_id_for(body_a)
    assert len(message_id_for(b"")) == 32


def test_encode_accepts_mappings_and_sdk_types() -> None:
    from types import MappingProxyType

    body = encode_event(MappingProxyType({"a": Decimal("1.5"), "d": date(2020, 1, 2)}))
    assert json.loads(body) == {"a": 1.5, "d": "2020-01-02"}


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.segment_namespace = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------- properties

emails = st.builds(
    lambda user, domain, pad: f"{pad}{user}@{domain}.com{pad}",
    st.text(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+", min_size=3, max_size=20
    ),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=12),
    st.sampled_from(["", " ", "  \t"]),
)
status_words = st.sampled_from(sorted(SYNONYMS)).flatmap(
    lambda w: st.sampled_from([w, w.upper(), f" {w.title()} "])
)
times = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=4_102_444_800),
    st.integers(min_value=100_000_000_000, max_value=4_102_444_800_000),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.dates(min_value=date(1971, 1, 1), max_value=date(2100, 1, 1)),
)
segment_ids = st.one_of(
    st.uuids().map(str),
    st.integers(min_value=0, max_value=10**6),
    st.text(min_size=1, max_size=12).filter(str.strip),
)
attribute_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63),
        st.decimals(allow_nan=False, allow_infinity=False, places=3),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
        st.dates(),
        st.datetimes(),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def records(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    email = draw(emails)
    record: dict[str, Any] = {"email": email}
    if draw(st.booleans()):
        record["ecid"] = str(draw(st.integers(min_value=0)))
    for name in ("first_name", "last_name", "birth_date", "tier", "_sdc_sequence"):
        if draw(st.booleans()):
            record[name] = draw(attribute_values)
    shape = draw(st.sampled_from(["row", "list", "map", "shaped", "none"]))
    if shape == "row":
        record["segment_id"] = draw(segment_ids)
        record["status"] = draw(status_words)
        record["last_qualification_time"] = draw(times)
    elif shape == "list":
        record["segments"] = [
            {
                "id": draw(segment_ids),
                "status": draw(status_words),
                "last_qualification_time": draw(times),
            }
            for _ in range(draw(st.integers(0, 3)))
        ]
    elif shape == "map":
        record["segments"] = {
            str(draw(segment_ids)): {"status": draw(status_words)}
            for _ in range(draw(st.integers(0, 3)))
        }
    elif shape == "shaped":
        record["segmentMembership"] = {
            "ups": {
                str(draw(segment_ids)).strip(): {
                    "status": draw(status_words),
                    "lastQualificationTime": draw(times),
                }
            }
        }
        record["identityMap"] = {"email_lc_sha256": [{"id": email}]}
    return record, email


def _all_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_all_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _all_strings(v)]
    return [value] if isinstance(value, str) else []


@settings(max_examples=300, deadline=None)
@given(records(), st.booleans(), st.booleans())
def test_property_valid_records_encode_to_their_event(
    drawn: tuple[dict[str, Any], str], unmapped: bool, names: bool
) -> None:
    record, email = drawn
    s = ConversionSettings(
        include_unmapped_attributes=unmapped,
        include_segment_names=names,
        include_segment_timestamps=True,
        segment_catalog={"known": {"name": "Known", "createdAt": 0}},
    )
    event = build_event(convert_record(record, s), s)
    body = encode_event(event)
    assert json.loads(body) == event
    assert list(event)[-2:] == ["segmentMembership", "identityMap"]
    for entry in event["segmentMembership"]["ups"].values():
        assert entry["status"] in STATUSES
        when = entry.get("lastQualificationTime")
        assert when is None or (when.endswith("Z") and to_iso_utc(when) == when)
    # The raw email never leaves: not in the body, not under the hashed namespace.
    assert email.strip() not in _all_strings(event)
    assert email.strip().encode() not in body
    assert event["identityMap"]["email_lc_sha256"][0]["id"] == sha(email.strip().lower())
    assert "_sdc_sequence" not in json.dumps(event)


@given(
    st.sampled_from(
        ["email_lc_sha256", "phone_sha256", "phone_sha256_e164", "x_sha256", "ecid", "crmId"]
    ),
    st.text(),
)
def test_property_hashing_is_idempotent(namespace: str, value: str) -> None:
    once = hash_identity(namespace, value)
    assert hash_identity(namespace, once) == once
    if namespace.endswith("_sha256") and once:
        assert len(once) == 64 and once == once.lower()
        int(once, 16)


@given(st.one_of(st.text(), st.integers(), st.none(), st.booleans()))
def test_property_status_is_always_allowed_or_rejected(value: Any) -> None:
    try:
        assert normalise_status(value) in STATUSES
    except InvalidRecordError as exc:
        assert "allowed" in exc.reason


@given(st.datetimes(min_value=datetime(1973, 3, 4), max_value=datetime(9000, 1, 1)))
def test_property_times_round_trip_through_epoch_ms(moment: datetime) -> None:
    iso = to_iso_utc(moment)
    assert iso is not None
    ms = (moment - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
    assert to_iso_utc(ms) == iso
    assert to_iso_utc(iso) == iso
