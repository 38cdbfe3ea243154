"""AMQP 1.0 frames, performatives and message sections.

Every performative the hub sends is encoded at its full field count with explicit nulls:
the azure-eventhub SDK decoder reads fields by position and does not pad short lists.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from .codec import Described, Symbol, ULong, decode, encode_value, skip

# Performative descriptors (AMQP 1.0 part 2.7 / 5.3).
OPEN, BEGIN, ATTACH, FLOW, TRANSFER, DISPOSITION, DETACH, END, CLOSE = range(0x10, 0x19)
SASL_MECHANISMS, SASL_INIT, SASL_CHALLENGE, SASL_RESPONSE, SASL_OUTCOME = range(0x40, 0x45)
ERROR = 0x1D
RECEIVED, ACCEPTED, REJECTED, RELEASED, MODIFIED = range(0x23, 0x28)
SOURCE, TARGET = 0x28, 0x29

# Field counts, so every performative goes out full-length.
FIELD_COUNT = {
    OPEN: 10,
    BEGIN: 8,
    ATTACH: 14,
    FLOW: 11,
    TRANSFER: 11,
    DISPOSITION: 6,
    DETACH: 3,
    END: 1,
    CLOSE: 1,
    SASL_MECHANISMS: 1,
    SASL_OUTCOME: 2,
    ERROR: 3,
    SOURCE: 11,
    TARGET: 7,
    REJECTED: 1,
    ACCEPTED: 0,
}

AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
SASL_HEADER = b"AMQP\x03\x01\x00\x00"
FRAME_AMQP = 0
FRAME_SASL = 1

# Message section descriptors.
SEC_HEADER = 0x70
SEC_DELIVERY_ANNOTATIONS = 0x71
SEC_MESSAGE_ANNOTATIONS = 0x72
SEC_PROPERTIES = 0x73
SEC_APPLICATION_PROPERTIES = 0x74
SEC_DATA = 0x75
SEC_SEQUENCE = 0x76
SEC_VALUE = 0x77
SEC_FOOTER = 0x78

BATCH_FORMAT = 0x80013700

_FRAME_HEADER = struct.Struct(">IBBH")
_U32 = struct.Struct(">I")


def described_list(descriptor: int, fields: list[Any]) -> Described:
    """A composite, padded with explicit nulls to its full field count."""
    count = FIELD_COUNT[descriptor]
    padded = list(fields) + [None] * (count - len(fields))
    return Described(ULong(descriptor), padded)


def error(
    condition: str, description: str | None = None, info: dict[Any, Any] | None = None
) -> Described:
    return described_list(ERROR, [Symbol(condition), description, info])


def accepted() -> Described:
    return described_list(ACCEPTED, [])


def rejected(condition: str, description: str | None = None) -> Described:
    return described_list(REJECTED, [error(condition, description)])


def encode_frame(
    channel: int,
    descriptor: int,
    fields: list[Any],
    payload: bytes = b"",
    frame_type: int = FRAME_AMQP,
) -> bytes:
    body = bytearray(8)
    encode_value(described_list(descriptor, fields), body)
    body += payload
    _FRAME_HEADER.pack_into(body, 0, len(body), 2, frame_type, channel)
    return bytes(body)


HEARTBEAT = _FRAME_HEADER.pack(8, 2, FRAME_AMQP, 0)


@dataclass(slots=True)
class Frame:
    channel: int
    frame_type: int
    descriptor: int | None  # None for an empty (heartbeat) frame
    fields: list[Any] = field(default_factory=list)
    payload: bytes = b""


def decode_frame_body(channel: int, frame_type: int, body: bytes) -> Frame:
    """Decode a frame body (the bytes after the data offset)."""
    if not body:
        return Frame(channel, frame_type, None)
    performative, end = decode(body, 0)
    if not isinstance(performative, Described) or not isinstance(performative.value, list):
        raise ValueError("frame body is not a described list")
    descriptor = performative.descriptor
    payload = body[end:] if descriptor == TRANSFER else b""
    return Frame(channel, frame_type, int(descriptor), performative.value, payload)


def field_at(fields: list[Any], index: int) -> Any:
    """Field ``index`` of a received performative; clients may omit trailing nulls."""
    return fields[index] if index < len(fields) else None


# ---------------------------------------------------------------- message sections


def iter_sections(
    payload: bytes, start: int = 0, end: int | None = None
) -> list[tuple[int, int, int]]:
    """(section code, value start, value end) for every section of an encoded message."""
    stop = len(payload) if end is None else end
    sections = []
    pos = start
    while pos < stop:
        if payload[pos] != 0x00:
            raise ValueError("message section is not a described value")
        if payload[pos + 1] == 0x53:  # smallulong descriptor, the common case
            code = payload[pos + 2]
            value_start = pos + 3
        else:
            descriptor, value_start = decode(payload, pos + 1)
            code = int(descriptor) if isinstance(descriptor, int) else -1
        value_end = skip(payload, value_start)
        sections.append((code, value_start, value_end))
        pos = value_end
    return sections


def data_section_body(payload: bytes, value_start: int) -> tuple[int, int]:
    """(start, end) of the binary inside a data section."""
    code = payload[value_start]
    if code == 0xA0:
        return value_start + 2, value_start + 2 + payload[value_start + 1]
    if code == 0xB0:
        length = _U32.unpack_from(payload, value_start + 1)[0]
        return value_start + 5, value_start + 5 + length
    raise ValueError("data section does not hold binary")


def decode_message(payload: bytes) -> dict[str, Any]:
    """Fully decode a message (used for CBS/management requests and inspection)."""
    message: dict[str, Any] = {}
    for code, start, _end in iter_sections(payload):
        value, _ = decode(payload, start)
        if code == SEC_DATA:
            message.setdefault("data", []).append(value)
        elif code == SEC_HEADER:
            message["header"] = value
        elif code == SEC_DELIVERY_ANNOTATIONS:
            message["delivery_annotations"] = value
        elif code == SEC_MESSAGE_ANNOTATIONS:
            message["message_annotations"] = value
        elif code == SEC_PROPERTIES:
            message["properties"] = value
        elif code == SEC_APPLICATION_PROPERTIES:
            message["application_properties"] = value
        elif code == SEC_SEQUENCE:
            message.setdefault("sequence", []).append(value)
        elif code == SEC_VALUE:
            message["value"] = value
        elif code == SEC_FOOTER:
            message["footer"] = value
    return message


def encode_section(code: int, value: Any, out: bytearray) -> None:
    out += bytes((0x00, 0x53, code))
    encode_value(value, out)


def encode_message(
    *,
    properties: list[Any] | None = None,
    application_properties: dict[Any, Any] | None = None,
    value: Any = None,
) -> bytes:
    """A reply message: properties (13 fields), application properties and an amqp-value."""
    out = bytearray()
    if properties is not None:
        encode_section(SEC_PROPERTIES, list(properties) + [None] * (13 - len(properties)), out)
    if application_properties is not None:
        encode_section(SEC_APPLICATION_PROPERTIES, application_properties, out)
    encode_section(SEC_VALUE, value, out)
    return bytes(out)


def message_annotations(payload: bytes, start: int = 0, end: int | None = None) -> dict[Any, Any]:
    """The message-annotations map of a message, decoding nothing else."""
    for code, value_start, _value_end in iter_sections(payload, start, end):
        if code == SEC_MESSAGE_ANNOTATIONS:
            value, _ = decode(payload, value_start)
            return value if isinstance(value, dict) else {}
        if code > SEC_MESSAGE_ANNOTATIONS:
            break
    return {}


def with_annotations(
    event: bytes, extra: dict[Any, Any], delivery: dict[Any, Any] | None = None
) -> bytes:
    """The event with ``extra`` merged into its message annotations (section order kept).

    ``delivery``, when given, becomes the delivery annotations: they belong to one hop, so
    whatever the producer put there is replaced, not passed on.
    """
    out = bytearray()
    merged = False
    pos = 0
    for code, value_start, value_end in iter_sections(event):
        if code == SEC_DELIVERY_ANNOTATIONS and delivery is not None:
            pos = value_end
            continue
        if not merged and code >= SEC_MESSAGE_ANNOTATIONS:
            if delivery is not None:
                encode_section(SEC_DELIVERY_ANNOTATIONS, delivery, out)
            annotations: dict[Any, Any] = {}
            if code == SEC_MESSAGE_ANNOTATIONS:
                value, _ = decode(event, value_start)
                annotations = dict(value) if isinstance(value, dict) else {}
                pos = value_end
            annotations.update(extra)
            encode_section(SEC_MESSAGE_ANNOTATIONS, annotations, out)
            merged = True
            if code == SEC_MESSAGE_ANNOTATIONS:
                continue
        out += event[pos:value_end]
        pos = value_end
    if not merged:
        if delivery is not None:
            encode_section(SEC_DELIVERY_ANNOTATIONS, delivery, out)
        encode_section(SEC_MESSAGE_ANNOTATIONS, extra, out)
    return bytes(out)


PARTITION_KEY = Symbol("x-opt-partition-key")


def _own_partition_key(event: bytes) -> str | None:
    """An event's own x-opt-partition-key, looking only at the sections before properties."""
    pos = 0
    length = len(event)
    while pos + 3 <= length and event[pos] == 0x00 and event[pos + 1] == 0x53:
        code = event[pos + 2]
        if code > SEC_MESSAGE_ANNOTATIONS:
            return None
        if code == SEC_MESSAGE_ANNOTATIONS:
            value, _ = decode(event, pos + 3)
            key = value.get(PARTITION_KEY) if isinstance(value, dict) else None
            return key if isinstance(key, str) else None
        pos = skip(event, pos + 3)
    return None


def split_events(payload: bytes, is_batch: bool) -> tuple[list[bytes], list[str | None]]:
    """The events of a transfer and their partition keys.

    A batch (message-format 0x80013700) carries one fully encoded event per data section;
    the events are sliced out by their sizes, never decoded. The partition key comes from
    the outer message annotations, else from each event's own annotations.
    """
    if not is_batch:
        return [payload], [_own_partition_key(payload)]
    events: list[bytes] = []
    outer_key: str | None = None
    for code, value_start, _value_end in iter_sections(payload):
        if code == SEC_DATA:
            start, end = data_section_body(payload, value_start)
            events.append(payload[start:end])
        elif code == SEC_MESSAGE_ANNOTATIONS:
            value, _ = decode(payload, value_start)
            key = value.get(PARTITION_KEY) if isinstance(value, dict) else None
            outer_key = key if isinstance(key, str) else None
    if outer_key is not None:
        return events, [outer_key] * len(events)
    return events, [_own_partition_key(e) for e in events]
