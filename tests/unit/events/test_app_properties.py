"""`application_properties`: parsing, reserved names, the typing rules at their limits,
templates, and the CloudEvents attributes (`events.properties`, `events.cloudevents`)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from target_azure_eventhubs.events.cloudevents import (
    add_binary_properties,
    attributes,
    binary_properties,
    event_time,
    structured_body,
)
from target_azure_eventhubs.events.errors import InvalidRecordError
from target_azure_eventhubs.events.properties import (
    AUTO,
    DOUBLE,
    LONG,
    TIMESTAMP,
    for_schema,
    kind_in_schema,
    parse_application_properties,
    properties_of,
    typed_value,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "score": {"type": ["number", "null"]},
        "visits": {"type": ["integer", "null"]},
        "address": {"type": "object", "properties": {"country": {"type": "string"}}},
    },
}


def props(config: dict[str, Any], record: dict[str, Any], stream: str = "profiles") -> dict:
    return properties_of(record, for_schema(parse_application_properties(config), SCHEMA), stream)


@pytest.mark.parametrize(
    "name",
    ["stream", "segment_ids", "cloudEvents_id", "cloudevents_type", "CLOUDEVENTS:x", "x-opt-a"],
)
def test_reserved_names_are_refused_at_start(name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}' is reserved"):
        parse_application_properties({name: {"value": "x"}})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"a": {"value": None}}, "must not be null"),
        ({"a": {"value": [1]}}, "is a list"),
        ({"a": {"value": {"b": 1}}}, "is an object"),
        ({"a": {"value": 2**63}}, "64-bit"),
        ({"a": {"value": float("nan")}}, "finite"),
        ({"a": {"field": ""}}, "dotted path"),
        ({"a": {"field": "a..b"}}, "dotted path"),
        ({"a": {"template": "{x"}}, "unbalanced"),
        ({"a": {"column": "x"}}, "unknown rule"),
        ({"a": {"field": "x", "value": 1}}, "must be one of"),
        ({"": {"value": 1}}, "must not be empty"),
        (["a"], "must be an object"),
    ],
)
def test_bad_settings_are_refused_at_start(config: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_application_properties(config)


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (2**31 - 1, AUTO, 2**31 - 1),
        (2**31, AUTO, 2**31),
        (2**63 - 1, AUTO, 2**63 - 1),
        (-(2**63), AUTO, -(2**63)),
        (1_711_744_369_123, AUTO, 1_711_744_369_123),  # epoch milliseconds
        (True, AUTO, True),
        (False, LONG, False),
        (1.5, AUTO, 1.5),
        (3, DOUBLE, 3.0),  # a `number` field keeps one type: double
        (Decimal("2.50"), AUTO, 2.5),
        (Decimal(7), LONG, 7),  # an integral Decimal in an `integer` field
        (Decimal("1E+2"), DOUBLE, 100.0),
        ("text", AUTO, "text"),
        ("2024-03-29T22:32:49+02:00", AUTO, "2024-03-29T22:32:49+02:00"),  # no format
        (date(2024, 3, 29), AUTO, "2024-03-29"),
        (
            "2024-03-29T22:32:49.123456+02:00",
            TIMESTAMP,
            datetime(2024, 3, 29, 20, 32, 49, 123000, tzinfo=UTC),
        ),
        ("2024-03-29T20:32:49Z", TIMESTAMP, datetime(2024, 3, 29, 20, 32, 49, tzinfo=UTC)),
        ("2024-03-29T20:32:49", TIMESTAMP, datetime(2024, 3, 29, 20, 32, 49, tzinfo=UTC)),
        (datetime(2024, 3, 29, 20, 32, 49), AUTO, datetime(2024, 3, 29, 20, 32, 49, tzinfo=UTC)),
        (date(2024, 3, 29), TIMESTAMP, datetime(2024, 3, 29, tzinfo=UTC)),
        (None, AUTO, None),
        (None, TIMESTAMP, None),
    ],
)
def test_typing_rules(value: Any, kind: str, expected: Any) -> None:
    result = typed_value(value, kind)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (2**63, AUTO, "64-bit"),
        (-(2**63) - 1, LONG, "64-bit"),
        (float("inf"), AUTO, "finite"),
        (Decimal("NaN"), DOUBLE, "finite"),
        ({"a": 1}, AUTO, "is an object"),
        ([1, 2], AUTO, "is a list"),
        ((1, 2), AUTO, "is a list"),  # the SDK would quietly turn a tuple into something else
        (b"raw", AUTO, "bytes"),
        ("yesterday", TIMESTAMP, "ISO-8601"),
        (12, TIMESTAMP, "ISO-8601"),
    ],
)
def test_values_no_property_can_hold(value: Any, kind: str, message: str) -> None:
    with pytest.raises(InvalidRecordError, match=message):
        typed_value(value, kind)


def test_kinds_come_from_the_stream_schema() -> None:
    assert kind_in_schema(SCHEMA, ("updated_at",)) == TIMESTAMP
    assert kind_in_schema(SCHEMA, ("score",)) == DOUBLE
    assert kind_in_schema(SCHEMA, ("visits",)) == LONG
    assert kind_in_schema(SCHEMA, ("address", "country")) == AUTO
    assert kind_in_schema(SCHEMA, ("nowhere", "deep")) == AUTO
    assert kind_in_schema(None, ("a",)) == AUTO


def test_fields_constants_and_templates() -> None:
    config = {
        "country": {"field": "address.country"},
        "updated": {"field": "updated_at"},
        "score": {"field": "score"},
        "source": {"value": "crm"},
        "version": {"value": 3},
        "route": {"template": "{stream}/{address.country}/{{literal}}"},
    }
    record = {
        "address": {"country": "DE"},
        "updated_at": "2024-03-29T22:32:49+02:00",
        "score": 4,
    }
    assert props(config, record) == {
        "country": "DE",
        "updated": datetime(2024, 3, 29, 20, 32, 49, tzinfo=UTC),
        "score": 4.0,
        "source": "crm",
        "version": 3,
        "route": "profiles/DE/{literal}",
    }


def test_missing_or_null_leaves_the_property_out() -> None:
    config = {"country": {"field": "address.country"}, "route": {"template": "{address.country}"}}
    for record in ({}, {"address": None}, {"address": {"country": None}}, {"address": "flat"}):
        assert props(config, record) == {}


def test_a_non_scalar_value_names_the_property_and_the_field() -> None:
    with pytest.raises(InvalidRecordError) as info:
        props({"country": {"field": "address.country"}}, {"address": {"country": ["DE"]}})
    assert info.value.reason == (
        "application property 'country': field 'address.country' is a list; application "
        "properties hold single values"
    )
    with pytest.raises(InvalidRecordError, match="property 'r': field 'a' is an object"):
        props({"r": {"template": "x-{a}"}}, {"a": {"b": 1}})


# ------------------------------------------------------------------------- CloudEvents

MEMBERSHIPS = {
    "s1": {"lastQualificationTime": "2024-03-29T20:32:49Z", "status": "realized"},
    "s2": {"lastQualificationTime": "2024-03-29T20:32:49.500Z", "status": "exited"},
    "s3": {"status": "existing"},
}


def test_event_time_is_the_latest_qualification_time() -> None:
    assert event_time(MEMBERSHIPS) == datetime(2024, 3, 29, 20, 32, 49, 500000, tzinfo=UTC)
    assert event_time({"s3": {"status": "existing"}}) is None
    one = {"s1": {"status": "realized", "lastQualificationTime": "2024-03-29T20:32:49Z"}}
    assert event_time(one) == datetime(2024, 3, 29, 20, 32, 49, tzinfo=UTC)
    assert event_time({"s1": {"status": "realized", "lastQualificationTime": "garbled"}}) is None


def test_binary_and_structured_attributes() -> None:
    attrs = attributes(
        event_id="a" * 32,
        source="/s",
        type_="t",
        subject="crmId:cust-1",
        time=event_time(MEMBERSHIPS),
    )
    assert dict(binary_properties(attrs)) == {
        "cloudEvents_specversion": "1.0",
        "cloudEvents_id": "a" * 32,
        "cloudEvents_source": "/s",
        "cloudEvents_type": "t",
        "cloudEvents_subject": "crmId:cust-1",
        "cloudEvents_time": datetime(2024, 3, 29, 20, 32, 49, 500000, tzinfo=UTC),
    }
    # What the sink writes straight into an event's properties: the same, in the same order.
    for subject, time in (("crmId:cust-1", event_time(MEMBERSHIPS)), (None, None)):
        into = {"stream": "s"}
        fields = {"source": "/s", "type_": "t", "subject": subject, "time": time}
        add_binary_properties(into, event_id="a" * 32, **fields)
        expected = {
            "stream": "s",
            **dict(binary_properties(attributes(event_id="a" * 32, **fields))),
        }
        assert list(into.items()) == list(expected.items())
    body = b'{"segmentMembership":{"ups":{}}}'
    assert json.loads(structured_body(attrs, body)) == {
        "specversion": "1.0",
        "id": "a" * 32,
        "source": "/s",
        "type": "t",
        "subject": "crmId:cust-1",
        "time": "2024-03-29T20:32:49.500Z",
        "datacontenttype": "application/json",
        "data": {"segmentMembership": {"ups": {}}},
    }
    no_time = attributes(event_id="b", source="/s", type_="t", subject=None, time=None)
    assert json.loads(structured_body(no_time, b"{}"))["id"] == "b"
    assert "time" not in json.loads(structured_body(no_time, b"{}"))
