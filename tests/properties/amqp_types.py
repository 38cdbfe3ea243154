"""A strict reader of the application-properties section of a stored AMQP message, keeping
each value's AMQP type code: independent of both the SDK's and the target's encoders."""

from __future__ import annotations

import struct
from typing import Any

_SECTION = b"\x00\x53\x74"
NAMES = {0x56: "boolean", 0x54: "int", 0x71: "int", 0x55: "long", 0x81: "long"}
NAMES |= {0x82: "double", 0x83: "timestamp", 0xA1: "string", 0xB1: "string"}


def _read(raw: bytes, at: int) -> tuple[str, Any, int]:
    code = raw[at]
    at += 1
    if code in (0xA1, 0xB1):
        size, at = (
            (raw[at], at + 1) if code == 0xA1 else (struct.unpack_from(">L", raw, at)[0], at + 4)
        )
        return "string", raw[at : at + size].decode("utf-8"), at + size
    fixed = {0x56: ">?", 0x54: ">b", 0x55: ">b", 0x71: ">i", 0x81: ">q", 0x82: ">d", 0x83: ">q"}
    if code not in fixed:
        raise AssertionError(f"unexpected AMQP type 0x{code:02x} in application properties")
    (value,) = struct.unpack_from(fixed[code], raw, at)
    return NAMES[code], value, at + struct.calcsize(fixed[code])


def application_properties(raw: bytes) -> dict[str, tuple[str, Any]]:
    """name -> (AMQP type, value); timestamps as epoch milliseconds."""
    at = raw.index(_SECTION) + len(_SECTION)
    code = raw[at]
    if code == 0xC1:
        count, at = raw[at + 2], at + 3
    elif code == 0xD1:
        count, at = struct.unpack_from(">L", raw, at + 5)[0], at + 9
    else:
        raise AssertionError(f"application properties are not a map (0x{code:02x})")
    out = {}
    for _ in range(count // 2):
        kind, key, at = _read(raw, at)
        assert kind == "string", "application property names are strings"
        value_kind, value, at = _read(raw, at)
        out[key] = (value_kind, value)
    return out
