"""The fast event encoding is byte-identical to the azure-eventhub SDK's own."""

from __future__ import annotations

from azure.eventhub import EventData, EventDataBatch
from azure.eventhub._pyamqp import utils as pyamqp_utils
from azure.eventhub._transport._pyamqp_transport import PyamqpTransport
from hypothesis import given, settings
from hypothesis import strategies as st

from target_azure_eventhubs.delivery.encoding import (
    CONTENT_TYPE,
    empty_batch_size,
    encode_event_message,
    encode_message,
    fill_batch,
    message_id_for,
    message_size,
)

texts = st.text(max_size=300)
# Large bodies by repetition: generating 64 KiB of random bytes would dominate the run time.
large_bodies = st.builds(
    lambda chunk, times: chunk * times, st.binary(min_size=1, max_size=64), st.integers(1100, 1300)
)
bodies = st.one_of(st.binary(max_size=600), large_bodies)
property_maps = st.dictionaries(st.text(min_size=1, max_size=40), texts, max_size=6)


def sdk_event(body: bytes, message_id: str, properties: dict[str, str]) -> EventData:
    event = EventData(body)
    event.content_type = CONTENT_TYPE
    event.message_id = message_id
    event.properties = properties  # type: ignore[assignment]
    return event


def sdk_encoding(event: EventData) -> bytes:
    message = PyamqpTransport.to_outgoing_amqp_message(event.raw_amqp_message)
    output = bytearray()
    pyamqp_utils.encode_payload(output, message)
    return bytes(output)


@settings(max_examples=300, deadline=None)
@given(body=bodies, message_id=st.text(min_size=1, max_size=300), properties=property_maps)
def test_event_encoding_equals_the_sdks(
    body: bytes, message_id: str, properties: dict[str, str]
) -> None:
    assert encode_event_message(body, message_id, properties) == sdk_encoding(
        sdk_event(body, message_id, properties)
    )


@settings(max_examples=300, deadline=None)
@given(body=bodies, properties=property_maps)
def test_computed_message_size_equals_the_encoded_length(
    body: bytes, properties: dict[str, str]
) -> None:
    encoded = encode_message(body, properties)
    assert encoded == encode_event_message(body, message_id_for(body), properties)
    assert message_size(len(body), properties) == len(encoded)


def test_a_typical_event() -> None:
    body = b'{"segmentMembership":{"ups":{"s":{"status":"realized"}}}}'
    props = {"stream": "memberships", "segment_ids": "s"}
    assert encode_event_message(body, "0" * 32, props) == sdk_encoding(
        sdk_event(body, "0" * 32, props)
    )


@settings(max_examples=50, deadline=None)
@given(
    events=st.lists(st.tuples(st.binary(max_size=3000), property_maps), min_size=1, max_size=40),
    limit=st.integers(min_value=200, max_value=40000),
)
def test_filled_batch_equals_a_batch_built_with_add(events: list, limit: int) -> None:
    by_sdk = EventDataBatch(max_size_in_bytes=limit, partition_id="1")
    for n, (body, props) in enumerate(events):
        try:
            by_sdk.add(sdk_event(body, f"id-{n}", props))
        except ValueError:
            break
    ours = EventDataBatch(max_size_in_bytes=limit, partition_id="1")
    encoded = [
        encode_event_message(body, f"id-{n}", props) for n, (body, props) in enumerate(events)
    ]
    added = fill_batch(ours, encoded)
    assert added == len(by_sdk)
    assert ours._size == by_sdk._size
    assert [bytes(m) for m in ours._message[5]] == [bytes(m) for m in by_sdk._message[5]]


def test_empty_batch_size_matches_the_sdk() -> None:
    assert empty_batch_size() == EventDataBatch()._size
