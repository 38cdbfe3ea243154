"""Typed application property values and other content types encode byte-identically to
the SDK's own encoding, and `message_size` counts them: ints as `amqp_long_value`, bools,
doubles and datetimes (timestamps) as the SDK writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.eventhub._pyamqp.utils import amqp_long_value
from hypothesis import given, settings
from hypothesis import strategies as st

from target_azure_eventhubs.delivery.encoding import (
    CONTENT_TYPE,
    MESSAGE_ID,
    Outbound,
    encode_event_message,
    encode_message,
    event_fits,
    message_id_for,
    message_size,
)
from tests.unit.delivery.test_encoding import sdk_encoding, sdk_event

LIMITS = [0, 1, -1, 127, 128, -128, -129, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1]
LIMITS += [2**63 - 1, -(2**63), 1_711_744_369_123]  # the last: epoch milliseconds
values = st.one_of(
    st.text(max_size=300),
    st.booleans(),
    st.sampled_from(LIMITS),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]),
    ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
)
typed_maps = st.dictionaries(st.text(min_size=1, max_size=40), values, max_size=8)
content_types = st.sampled_from([CONTENT_TYPE, "application/cloudevents+json"])


def for_sdk(properties: dict[str, Any]) -> dict[str, Any]:
    """The SDK's way to ask for an AMQP long; everything else it types by itself."""
    return {
        k: amqp_long_value(v) if type(v) is int else v  # bool is not `int` here
        for k, v in properties.items()
    }


def sdk_bytes(body: bytes, message_id: str, properties: dict[str, Any], content_type: str) -> bytes:
    event = sdk_event(body, message_id, for_sdk(properties))
    event.content_type = content_type
    return sdk_encoding(event)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=400), properties=typed_maps, content_type=content_types)
def test_typed_properties_encode_as_the_sdk_does(
    body: bytes, properties: dict[str, Any], content_type: str
) -> None:
    message_id = message_id_for(body)
    ours = encode_event_message(body, message_id, properties, content_type)
    assert ours == sdk_bytes(body, message_id, properties, content_type)
    assert encode_message(body, properties, content_type) == ours
    assert encode_message(body, properties, content_type, message_id) == ours
    assert message_size(len(body), properties, content_type) == len(ours)


@pytest.mark.parametrize("value", LIMITS)
def test_integers_at_the_limits_are_longs(value: int) -> None:
    ours = encode_message(b"{}", {"n": value})
    assert ours == sdk_bytes(b"{}", message_id_for(b"{}"), {"n": value}, CONTENT_TYPE)
    code = b"\x55" if -128 <= value <= 127 else b"\x81"  # smalllong, long: never a 32-bit int
    assert code + value.to_bytes(1 if code == b"\x55" else 8, "big", signed=True) in ours


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64])
def test_integers_beyond_64_bits_are_refused(value: int) -> None:
    with pytest.raises(ValueError, match="AMQP long"):
        encode_message(b"{}", {"n": value})


def test_the_sdk_itself_refuses_a_plain_int_beyond_32_bits() -> None:
    """Why every integer goes as a long: the SDK's default for `int` is a 32-bit int."""
    with pytest.raises(ValueError, match="int"):
        sdk_encoding(sdk_event(b"{}", "x", {"n": 2**31}))


def test_a_timestamp_is_milliseconds_since_the_epoch() -> None:
    when = datetime(2024, 3, 29, 20, 32, 49, 123000, tzinfo=UTC)
    ours = encode_message(b"{}", {"t": when})
    assert b"\x83" + (1_711_744_369_123).to_bytes(8, "big", signed=True) in ours


def test_property_bytes_count_toward_the_size_limit() -> None:
    body = b"x" * 1000
    plain = Outbound(body, {})
    heavy = Outbound(body, {"p": "y" * 500, "n": 2**40, "t": datetime(2024, 1, 1, tzinfo=UTC)})
    assert heavy.predicted_size() - plain.predicted_size() >= 500 + 9 + 9
    limit = 1100 + 150  # an empty batch's envelope plus the plain event fits, not the heavy
    assert event_fits(plain, limit)
    assert not event_fits(heavy, limit)
    heavy.encode()
    assert len(heavy.encoded) == message_size(1000, heavy.properties)


def test_cloudevents_content_type_and_message_id_survive_encoding() -> None:
    out = Outbound(b"{}", {"stream": "s"}, "application/cloudevents+json", "a" * 32)
    predicted = out.predicted_size()
    out.encode()
    assert out.size == predicted
    assert out.encoded == sdk_bytes(
        b"{}", "a" * 32, {"stream": "s"}, "application/cloudevents+json"
    )


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=400), properties=typed_maps, content_type=content_types)
def test_the_message_id_stand_in_is_written_as_the_events_message_id(
    body: bytes, properties: dict[str, Any], content_type: str
) -> None:
    """CloudEvents binary mode's `cloudEvents_id`: the id the encoder computes."""
    message_id = message_id_for(body)
    with_id = {**properties, "cloudEvents_id": message_id}
    stand_in = {**properties, "cloudEvents_id": MESSAGE_ID}
    expected = sdk_bytes(body, message_id, with_id, content_type)
    assert encode_message(body, stand_in, content_type) == expected
    assert encode_event_message(body, message_id, stand_in, content_type) == expected
    assert message_size(len(body), stand_in, content_type) == len(expected)
