"""AMQP encoding of events and batches, byte-identical to the azure-eventhub SDK's own.

`EventData(...)` plus `EventDataBatch.add` costs ~50 µs per event (each event is converted
and encoded twice). The target's events all have the same shape (properties with a message
id and content type, application properties, one data section), so they are encoded here
once, directly, in a few microseconds; `tests/unit/delivery/test_encoding.py` proves the
bytes equal the SDK's for any body and properties.

Application property values (`PropertyValue`) keep an AMQP type: `str` a string, `bool` a
boolean, `int` a long (64-bit, as the SDK writes `amqp_long_value`; the SDK's plain `int`
is 32-bit and refuses epoch milliseconds), `float` a double, `datetime` a timestamp
(milliseconds since the epoch, as the SDK converts it; naive means UTC).

The SDK still sends the batch: `fill_batch` puts the encoded events into an
`EventDataBatch` the same way its `add` does.

`message_size` gives the encoded length without encoding, so the target's process can
refuse an event too large for the hub while the sender process does the encoding.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from azure.eventhub import EventDataBatch

from target_azure_eventhubs.delivery import sdk

CONTENT_TYPE = "application/json"
MESSAGE_ID_CHARS = 32


class _MessageId(enum.Enum):
    MESSAGE_ID = "the event's message id"


#: An application property value standing for the event's own message id (CloudEvents'
#: `id`): the sender process writes the id it computes from the body as it encodes, so the
#: body is hashed once and the id never crosses between the processes.
MESSAGE_ID = _MessageId.MESSAGE_ID

PropertyValue = str | bool | int | float | datetime | _MessageId

_PROPERTIES = b"\x00\x53\x73"  # described, smallulong 0x73: amqp:properties:list
_APPLICATION_PROPERTIES = b"\x00\x53\x74"  # amqp:application-properties:map
_DATA = b"\x00\x53\x75"  # amqp:data:binary
_NULL = b"\x40"
# properties: user-id, to, subject, reply-to, correlation-id are null before content-type;
# content-encoding .. reply-to-group-id (6 fields) are null after it.
_NULLS_BEFORE_CONTENT_TYPE = _NULL * 5
_NULLS_AFTER_CONTENT_TYPE = _NULL * 6
_PROPERTY_FIELDS = 13
# What one more data section costs in a batch message (descriptor + vbin8 / vbin32 header).
_SECTION_OVERHEAD_SMALL, _SECTION_OVERHEAD_LARGE = 5, 8


def _variable(small_code: int, large_code: int, payload: bytes) -> bytes:
    size = len(payload)
    if size <= 255:
        return bytes((small_code, size)) + payload
    return bytes((large_code,)) + struct.pack(">L", size) + payload


_STR8_HEADERS = [bytes((0xA1, size)) for size in range(256)]


def _string(value: str) -> bytes:
    payload = value.encode("utf-8")
    size = len(payload)
    if size <= 255:
        return _STR8_HEADERS[size] + payload
    return b"\xb1" + struct.pack(">L", size) + payload


def _compound(small_code: int, large_code: int, count: int, items: bytes) -> bytes:
    size = len(items)
    if count <= 255 and size < 255:
        return bytes((small_code, size + 1, count)) + items
    return bytes((large_code,)) + struct.pack(">LL", size + 4, count) + items


def _symbol(value: str) -> bytes:
    return _variable(0xA3, 0xB3, value.encode("ascii"))


_CONTENT_TYPE_SYMBOL = _symbol(CONTENT_TYPE)
_TRUE, _FALSE = b"\x56\x01", b"\x56\x00"  # the SDK writes booleans as 0x56 and a byte


_EPOCH, _NAIVE_EPOCH, _ONE_MS = (
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1970, 1, 1),
    timedelta(milliseconds=1),
)


def epoch_ms(value: datetime) -> int:
    """A datetime as AMQP timestamp milliseconds (naive means UTC), as the SDK computes them.

    Integer arithmetic: the SDK's `timegm(utctimetuple())` plus a float costs ~2 µs, and
    a timestamp property is encoded for every event. The same value for every time in
    whole milliseconds; a finer one is floored, where the SDK's float rounds (toward zero
    before 1970, and up to the next millisecond in a few far-future times).
    """
    if value.tzinfo is None:
        return (value - _NAIVE_EPOCH) // _ONE_MS
    try:
        return (value - _EPOCH) // _ONE_MS
    except TypeError:  # a tzinfo whose utcoffset() is None: naive, for the SDK as for Python
        return (value.replace(tzinfo=None) - _NAIVE_EPOCH) // _ONE_MS


# Encoded UTC timestamps: an event's `_sdc_*` times are shared by many events (one object
# per millisecond or per batch, also after unpickling). Only UTC ones: datetimes of one
# other zone compare by wall time, so two instants a DST fold apart would be equal.
_TIMESTAMPS: dict[datetime, bytes] = {}
_TIMESTAMPS_KEPT = 4096


def _timestamp(value: datetime) -> bytes:
    if value.tzinfo is not UTC:
        return b"\x83" + struct.pack(">q", epoch_ms(value))
    encoded = _TIMESTAMPS.get(value)
    if encoded is None:
        if len(_TIMESTAMPS) >= _TIMESTAMPS_KEPT:
            _TIMESTAMPS.clear()
        encoded = _TIMESTAMPS[value] = b"\x83" + struct.pack(">q", epoch_ms(value))
    return encoded


def _value(value: PropertyValue) -> bytes:
    """One application property value, as the SDK encodes it (ints: `amqp_long_value`)."""
    if type(value) is str:
        return _string(value)
    if type(value) is datetime:
        return _timestamp(value)
    if value is True or value is False:
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        if -128 <= value <= 127:
            return b"\x55" + struct.pack(">b", value)
        try:
            return b"\x81" + struct.pack(">q", value)
        except struct.error:
            raise ValueError(f"{value} is outside the range of an AMQP long") from None
    if isinstance(value, float):
        return b"\x82" + struct.pack(">d", value)
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, str):  # a str subclass
        return _string(str(value))
    raise TypeError(f"an application property cannot hold {type(value).__name__}")


def _value_size(value: PropertyValue) -> int:
    if value is MESSAGE_ID:
        return MESSAGE_ID_CHARS + 2
    if isinstance(value, str):
        v = len(value) if value.isascii() else len(value.encode("utf-8"))
        return v + (2 if v <= 255 else 5)
    if value is True or value is False:
        return 2
    if isinstance(value, int):
        return 2 if -128 <= value <= 127 else 9
    return 9  # double, timestamp


def encode_event_message(
    body: bytes,
    message_id: str,
    properties: Mapping[str, PropertyValue],
    content_type: str = CONTENT_TYPE,
) -> bytes:
    """The AMQP message of one event, as the SDK encodes `EventData` inside a batch."""
    fields = (
        _string(message_id)
        + _NULLS_BEFORE_CONTENT_TYPE
        + (_CONTENT_TYPE_SYMBOL if content_type == CONTENT_TYPE else _symbol(content_type))
        + _NULLS_AFTER_CONTENT_TYPE
    )
    parts = [_PROPERTIES, _compound(0xC0, 0xD0, _PROPERTY_FIELDS, fields)]
    if properties:
        pairs = b"".join(
            _string(k) + (_string(message_id) if v is MESSAGE_ID else _value(v))
            for k, v in properties.items()
        )
        parts += [_APPLICATION_PROPERTIES, _compound(0xC1, 0xD1, len(properties) * 2, pairs)]
    parts += [_DATA, _variable(0xA0, 0xB0, body)]
    return b"".join(parts)


def message_id_for(body: bytes) -> str:
    """Deterministic message id (first 32 hex chars of SHA-256) for consumer de-duplication."""
    return hashlib.sha256(body).hexdigest()[:MESSAGE_ID_CHARS]


def encode_message(
    body: bytes,
    properties: Mapping[str, PropertyValue],
    content_type: str = CONTENT_TYPE,
    message_id: str | None = None,
) -> bytes:
    """The AMQP message of one event, with its deterministic message id (or `message_id`).

    Equal to `encode_event_message(body, message_id_for(body), properties)`, with what
    does not vary (the properties list around a 32-character id, property names)
    encoded once: the sender process encodes every event.
    """
    if message_id is not None or content_type != CONTENT_TYPE:
        message_id = message_id_for(body) if message_id is None else message_id
        return encode_event_message(body, message_id, properties, content_type)
    message_id = message_id_for(body)
    parts = [_PROPERTIES_HEAD, message_id.encode("ascii"), _PROPERTIES_TAIL]
    if properties:
        pairs = b"".join(
            [
                _string_pair(k, v)
                if type(v) is str
                else _name(k) + (_string(message_id) if v is MESSAGE_ID else _value(v))
                for k, v in properties.items()
            ]
        )
        parts += [_APPLICATION_PROPERTIES, _compound(0xC1, 0xD1, len(properties) * 2, pairs)]
    size = len(body)
    if size <= 255:
        parts += [_DATA, bytes((0xA0, size)), body]
    else:
        parts += [_DATA, b"\xb0", size.to_bytes(4, "big"), body]
    return b"".join(parts)


def _properties_around_id() -> tuple[bytes, bytes]:
    marker = "\x00" * MESSAGE_ID_CHARS
    encoded = encode_event_message(b"", marker, {})
    head, _, tail = encoded.partition(_string(marker))
    head += _string(marker)[:-MESSAGE_ID_CHARS]
    return head, tail[: tail.index(_DATA)]


_PROPERTIES_HEAD, _PROPERTIES_TAIL = _properties_around_id()


@lru_cache(maxsize=256)
def _name(key: str) -> bytes:
    return _string(key)


# The last string value of each property name, encoded with its name: the values a stream
# repeats on every event (its name, CloudEvents' source and type) arrive as one object per
# chunk of events (pickle keeps one copy), so most events find theirs here.
_LAST_PAIRS: dict[str, tuple[str, bytes]] = {}
_LAST_PAIRS_KEPT = 1024


def _string_pair(key: str, value: str) -> bytes:
    last = _LAST_PAIRS.get(key)
    if last is not None and last[0] is value:
        return last[1]
    pair = _name(key) + _string(value)
    if last is not None or len(_LAST_PAIRS) < _LAST_PAIRS_KEPT:
        _LAST_PAIRS[key] = (value, pair)
    return pair


def _variable_size(payload_size: int) -> int:
    return payload_size + (2 if payload_size <= 255 else 5)


def _compound_size(count: int, items_size: int) -> int:
    return items_size + (3 if count <= 255 and items_size < 255 else 9)


_FIXED_PROPERTIES_SIZE = len(_PROPERTIES) + _compound_size(
    _PROPERTY_FIELDS,
    _variable_size(MESSAGE_ID_CHARS)
    + len(_NULLS_BEFORE_CONTENT_TYPE)
    + len(_CONTENT_TYPE_SYMBOL)
    + len(_NULLS_AFTER_CONTENT_TYPE),
)


_KEY_SIZES: dict[str, int] = {}
_KEY_SIZES_KEPT = 1024


def _key_size(key: str) -> int:
    """An application property name's encoded size (a string), remembered for the next."""
    k = len(key) if key.isascii() else len(key.encode("utf-8"))
    size = k + (2 if k <= 255 else 5)
    if len(_KEY_SIZES) < _KEY_SIZES_KEPT:
        _KEY_SIZES[key] = size
    return size


def message_size(
    body_size: int, properties: Mapping[str, PropertyValue], content_type: str = CONTENT_TYPE
) -> int:
    """`len(encode_message(body, properties, content_type))` for a body of `body_size`
    bytes and a 32-character message id, computed.

    Written out (no helper calls for string values): the target checks every event's size
    against the hub's.
    """
    size = _FIXED_PROPERTIES_SIZE + len(_DATA) + body_size + (2 if body_size <= 255 else 5)
    if content_type != CONTENT_TYPE:  # a symbol of under 256 bytes, like the default
        size += len(content_type) - len(CONTENT_TYPE)
    if properties:
        pairs = 0
        for key, value in properties.items():
            k = _KEY_SIZES.get(key)  # the few names every event repeats
            if k is None:
                k = _key_size(key)
            if type(value) is str:
                v = len(value) if value.isascii() else len(value.encode("utf-8"))
                pairs += k + v + (2 if v <= 255 else 5)
            elif type(value) is datetime:  # add_record_metadata: four per event
                pairs += k + 9
            elif type(value) is int:
                pairs += k + (2 if -128 <= value <= 127 else 9)
            else:
                pairs += k + _value_size(value)
        count = len(properties) * 2
        size += len(_APPLICATION_PROPERTIES) + pairs + (3 if count <= 255 and pairs < 255 else 9)
    return size


def section_size(encoded: bytes) -> int:
    """Bytes one encoded event adds to a batch, by the SDK's own accounting."""
    return message_section_size(len(encoded))


def message_section_size(message_size: int) -> int:
    """Bytes a message of `message_size` bytes adds to a batch."""
    small = message_size < 256
    return message_size + (_SECTION_OVERHEAD_SMALL if small else _SECTION_OVERHEAD_LARGE)


def empty_batch_size() -> int:
    return sdk.batch_size(EventDataBatch())  # the SDK's own measure of the envelope


def fill_batch(batch: EventDataBatch, encoded: Sequence[bytes]) -> int:
    """Append encoded events while they fit, as `EventDataBatch.add` would; returns how many."""
    size, limit, added = sdk.batch_size(batch), batch.max_size_in_bytes, 0
    for message in encoded:
        after = size + section_size(message)
        if after > limit:
            break
        size = after
        added += 1
    sdk.append_encoded(batch, encoded[:added], size)
    return added


@dataclass(slots=True)
class Outbound:
    """One event: its body and application properties until `encode` turns them into the
    AMQP message, which waits in its queue for acceptance. `message_id` is None for the
    default, the first 32 hex digits of the body's SHA-256."""

    body: bytes
    properties: Mapping[str, PropertyValue]
    content_type: str = CONTENT_TYPE
    message_id: str | None = None
    encoded: bytes = b""
    size: int = 0  # what the encoded message adds to a batch
    seq: int = 0
    queued_at: float = 0.0  # monotonic clock: the oldest unacknowledged event's age

    def encode(self) -> None:
        self.encoded = encode_message(
            self.body, self.properties, self.content_type, self.message_id
        )
        self.size = section_size(self.encoded)
        self.body = b""  # the message holds it now

    def predicted_size(self) -> int:
        """`size` before encoding: lets the target refuse an event too large for the hub."""
        size = message_size(len(self.body), self.properties, self.content_type)
        return message_section_size(size)


def event_fits(out: Outbound, max_bytes: int) -> bool:
    """Whether the event alone fits in an empty batch of `max_bytes`."""
    return _EMPTY_BATCH + out.predicted_size() <= max_bytes


_EMPTY_BATCH = empty_batch_size()
