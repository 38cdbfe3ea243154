"""AMQP 1.0 type system: encode Python values to AMQP bytes and decode them back.

Decoding returns plain Python values (int, str, bytes, bool, None, float, uuid.UUID, list,
dict) plus :class:`Symbol` for symbols and :class:`Described` for described values, so a
value decoded from a client re-encodes to the same AMQP type where it matters (symbols,
uuids, described filters). Encoding picks the AMQP type from the Python type; the wrappers
(:class:`UInt`, :class:`ULong`, :class:`UByte`, :class:`UShort`, :class:`Timestamp`,
:class:`SymbolArray`) force a specific type where the protocol requires one.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = [
    "Described",
    "Symbol",
    "SymbolArray",
    "Timestamp",
    "UByte",
    "UInt",
    "ULong",
    "UShort",
    "decode",
    "encode",
    "encode_value",
    "skip",
]


class Symbol(str):
    """An AMQP symbol (ASCII identifier), as opposed to a UTF-8 string."""

    __slots__ = ()


class UInt(int):
    __slots__ = ()


class ULong(int):
    __slots__ = ()


class UByte(int):
    __slots__ = ()


class UShort(int):
    __slots__ = ()


class Timestamp(int):
    """Milliseconds since the Unix epoch."""

    __slots__ = ()


class SymbolArray(list[str]):
    """An AMQP array of symbols (e.g. sasl-server-mechanisms)."""


class Described(NamedTuple):
    descriptor: Any
    value: Any


_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_U32U32 = struct.Struct(">II")


# ---------------------------------------------------------------- encoding


def _encode_compound(code8: int, code32: int, count: int, body: bytes, out: bytearray) -> None:
    # Size counts the count field plus the body.
    if len(body) + 1 < 256 and count < 256:
        out += bytes((code8, len(body) + 1, count))
    else:
        out.append(code32)
        out += _U32U32.pack(len(body) + 4, count)
    out += body


def encode_value(value: Any, out: bytearray) -> None:  # noqa: PLR0915 - one branch per type
    """Append the AMQP encoding of ``value`` to ``out``."""
    if value is None:
        out.append(0x40)
    elif value is True:
        out.append(0x41)
    elif value is False:
        out.append(0x42)
    elif isinstance(value, Symbol):
        raw = value.encode("ascii")
        if len(raw) < 256:
            out += bytes((0xA3, len(raw)))
        else:
            out.append(0xB3)
            out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) < 256:
            out += bytes((0xA1, len(raw)))
        else:
            out.append(0xB1)
            out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) < 256:
            out += bytes((0xA0, len(value)))
        else:
            out.append(0xB0)
            out += _U32.pack(len(value))
        out += value
    elif isinstance(value, UInt):
        if value == 0:
            out.append(0x43)
        elif value < 256:
            out += bytes((0x52, value))
        else:
            out.append(0x70)
            out += _U32.pack(value)
    elif isinstance(value, ULong):
        if value == 0:
            out.append(0x44)
        elif value < 256:
            out += bytes((0x53, value))
        else:
            out.append(0x80)
            out += _U64.pack(value)
    elif isinstance(value, UByte):
        out += bytes((0x50, value))
    elif isinstance(value, UShort):
        out.append(0x60)
        out += _U16.pack(value)
    elif isinstance(value, Timestamp):
        out.append(0x83)
        out += _I64.pack(value)
    elif isinstance(value, int):
        # Plain ints are longs: sequence numbers and status codes in Event Hubs are longs/ints
        # and the SDK reads both.
        if -128 <= value <= 127:
            out.append(0x55)
            out += _I8.pack(value)
        else:
            out.append(0x81)
            out += _I64.pack(value)
    elif isinstance(value, float):
        out.append(0x82)
        out += _F64.pack(value)
    elif isinstance(value, uuid.UUID):
        out.append(0x98)
        out += value.bytes
    elif isinstance(value, Described):
        out.append(0x00)
        encode_value(value.descriptor, out)
        encode_value(value.value, out)
    elif isinstance(value, SymbolArray):
        body = bytearray()
        for item in value:
            raw = item.encode("ascii")
            body += _U32.pack(len(raw))
            body += raw
        out.append(0xF0)
        out += _U32U32.pack(len(body) + 5, len(value))
        out.append(0xB3)
        out += body
    elif isinstance(value, (list, tuple)):
        body = bytearray()
        for item in value:
            encode_value(item, body)
        if not value:
            out.append(0x45)
        else:
            _encode_compound(0xC0, 0xD0, len(value), bytes(body), out)
    elif isinstance(value, dict):
        body = bytearray()
        for key, item in value.items():
            encode_value(key, body)
            encode_value(item, body)
        _encode_compound(0xC1, 0xD1, len(value) * 2, bytes(body), out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMQP")


def encode(value: Any) -> bytes:
    out = bytearray()
    encode_value(value, out)
    return bytes(out)


# ---------------------------------------------------------------- decoding

Decoder = Callable[[bytes, int], tuple[Any, int]]
_DECODERS: dict[int, Decoder] = {}


def decode(buf: bytes, pos: int = 0) -> tuple[Any, int]:
    """Decode one value at ``pos``; return it and the position after it."""
    code = buf[pos]
    try:
        decoder = _DECODERS[code]
    except KeyError:
        raise ValueError(f"unknown AMQP constructor 0x{code:02x} at {pos}") from None
    return decoder(buf, pos + 1)


def _fixed(value: Any) -> Decoder:
    return lambda _buf, pos: (value, pos)


def _struct(st: struct.Struct) -> Decoder:
    size = st.size
    return lambda buf, pos: (st.unpack_from(buf, pos)[0], pos + size)


def _var8(convert: Callable[[bytes], Any]) -> Decoder:
    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        end = pos + 1 + buf[pos]
        return convert(bytes(buf[pos + 1 : end])), end

    return dec


def _var32(convert: Callable[[bytes], Any]) -> Decoder:
    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        end = pos + 4 + _U32.unpack_from(buf, pos)[0]
        return convert(bytes(buf[pos + 4 : end])), end

    return dec


def _items(buf: bytes, pos: int, count: int) -> tuple[list[Any], int]:
    items = []
    for _ in range(count):
        item, pos = decode(buf, pos)
        items.append(item)
    return items, pos


def _list8(buf: bytes, pos: int) -> tuple[Any, int]:
    return _items(buf, pos + 2, buf[pos + 1])


def _list32(buf: bytes, pos: int) -> tuple[Any, int]:
    return _items(buf, pos + 8, _U32.unpack_from(buf, pos + 4)[0])


def _pairs(items: list[Any]) -> dict[Any, Any]:
    return {_hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def _map8(buf: bytes, pos: int) -> tuple[Any, int]:
    items, end = _items(buf, pos + 2, buf[pos + 1])
    return _pairs(items), end


def _map32(buf: bytes, pos: int) -> tuple[Any, int]:
    items, end = _items(buf, pos + 8, _U32.unpack_from(buf, pos + 4)[0])
    return _pairs(items), end


def _array_items(buf: bytes, pos: int, count: int) -> tuple[list[Any], int]:
    code = buf[pos]
    pos += 1
    if code == 0x00:  # described element type: descriptor then element constructor
        _descriptor, pos = decode(buf, pos)
        code = buf[pos]
        pos += 1
    decoder = _DECODERS[code]
    items = []
    for _ in range(count):
        item, pos = decoder(buf, pos)
        items.append(item)
    return items, pos


def _array8(buf: bytes, pos: int) -> tuple[Any, int]:
    end = pos + 1 + buf[pos]
    count = buf[pos + 1]
    items, _ = _array_items(buf, pos + 2, count) if count else ([], 0)
    return items, end


def _array32(buf: bytes, pos: int) -> tuple[Any, int]:
    end = pos + 4 + _U32.unpack_from(buf, pos)[0]
    count = _U32.unpack_from(buf, pos + 4)[0]
    items, _ = _array_items(buf, pos + 8, count) if count else ([], 0)
    return items, end


def _described(buf: bytes, pos: int) -> tuple[Any, int]:
    descriptor, pos = decode(buf, pos)
    value, pos = decode(buf, pos)
    return Described(descriptor, value), pos


def _utf8(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def _symbol(raw: bytes) -> Symbol:
    return Symbol(raw.decode("ascii", errors="replace"))


def _uuid(buf: bytes, pos: int) -> tuple[Any, int]:
    return uuid.UUID(bytes=bytes(buf[pos : pos + 16])), pos + 16


_DECODERS.update(
    {
        0x00: _described,
        0x40: _fixed(None),
        0x41: _fixed(True),
        0x42: _fixed(False),
        0x43: _fixed(0),
        0x44: _fixed(0),
        0x45: lambda _buf, pos: ([], pos),
        0x50: _struct(_U8),
        0x51: _struct(_I8),
        0x52: _struct(_U8),
        0x53: _struct(_U8),
        0x54: _struct(_I8),
        0x55: _struct(_I8),
        0x56: lambda buf, pos: (buf[pos] != 0, pos + 1),
        0x60: _struct(_U16),
        0x61: _struct(_I16),
        0x70: _struct(_U32),
        0x71: _struct(_I32),
        0x72: _struct(_F32),
        0x73: lambda buf, pos: (chr(_U32.unpack_from(buf, pos)[0]), pos + 4),
        0x74: lambda buf, pos: (bytes(buf[pos : pos + 4]), pos + 4),  # decimal32, kept raw
        0x80: _struct(_U64),
        0x81: _struct(_I64),
        0x82: _struct(_F64),
        0x83: _struct(_I64),
        0x84: lambda buf, pos: (bytes(buf[pos : pos + 8]), pos + 8),  # decimal64, kept raw
        0x94: lambda buf, pos: (bytes(buf[pos : pos + 16]), pos + 16),  # decimal128, kept raw
        0x98: _uuid,
        0xA0: _var8(bytes),
        0xA1: _var8(_utf8),
        0xA3: _var8(_symbol),
        0xB0: _var32(bytes),
        0xB1: _var32(_utf8),
        0xB3: _var32(_symbol),
        0xC0: _list8,
        0xC1: _map8,
        0xD0: _list32,
        0xD1: _map32,
        0xE0: _array8,
        0xF0: _array32,
    }
)

# Width of fixed-size values, by constructor; used by skip() on the produce hot path.
_FIXED_WIDTH = {0x40: 0, 0x41: 0, 0x42: 0, 0x43: 0, 0x44: 0, 0x45: 0, 0x56: 1, 0x73: 4, 0x98: 16}
for _code in (0x50, 0x51, 0x52, 0x53, 0x54, 0x55):
    _FIXED_WIDTH[_code] = 1
for _code in (0x60, 0x61):
    _FIXED_WIDTH[_code] = 2
for _code in (0x70, 0x71, 0x72, 0x74):
    _FIXED_WIDTH[_code] = 4
for _code in (0x80, 0x81, 0x82, 0x83, 0x84):
    _FIXED_WIDTH[_code] = 8
_FIXED_WIDTH[0x94] = 16


def skip(buf: bytes, pos: int) -> int:
    """Position just after the value at ``pos``, without decoding it."""
    code = buf[pos]
    pos += 1
    width = _FIXED_WIDTH.get(code)
    if width is not None:
        return pos + width
    if code == 0x00:
        return skip(buf, skip(buf, pos))
    high = code & 0xF0
    if high in (0xA0, 0xC0, 0xE0):  # 1-byte size prefix
        return pos + 1 + buf[pos]
    if high in (0xB0, 0xD0, 0xF0):  # 4-byte size prefix
        return pos + 4 + _U32.unpack_from(buf, pos)[0]
    raise ValueError(f"unknown AMQP constructor 0x{code:02x} at {pos - 1}")
