"""Partition key -> partition index, exactly as the azure-eventhub SDK computes it.

A port of ``azure/eventhub/_buffered_producer/_partition_resolver.py`` (Bob Jenkins'
lookup3 ``hashlittle2`` over the key's code points, folded to a signed 16-bit value, then
``abs(hash % count)`` with Python modulo semantics). Both the local hub and the target use
it, so keyed sends and client-side routing always agree with the SDK's buffered producer.

The SDK feeds ``ord(char)`` values into the byte slots of each 32-bit word; for keys made of
code points < 256 that is the same as reading the Latin-1 bytes little-endian, which we do
with ``struct`` (fast path). Other keys go through the generic code-point path.
"""

from __future__ import annotations

import struct
from functools import lru_cache

__all__ = ["hash_code", "partition_for_key"]

_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = ((a - c) & _MASK) ^ _rot(c, 4)
    c = (c + b) & _MASK
    b = ((b - a) & _MASK) ^ _rot(a, 6)
    a = (a + c) & _MASK
    c = ((c - b) & _MASK) ^ _rot(b, 8)
    b = (b + a) & _MASK
    a = ((a - c) & _MASK) ^ _rot(c, 16)
    c = (c + b) & _MASK
    b = ((b - a) & _MASK) ^ _rot(a, 19)
    a = (a + c) & _MASK
    c = ((c - b) & _MASK) ^ _rot(b, 4)
    b = (b + a) & _MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> tuple[int, int, int]:
    c = ((c ^ b) - _rot(b, 14)) & _MASK
    a = ((a ^ c) - _rot(c, 11)) & _MASK
    b = ((b ^ a) - _rot(a, 25)) & _MASK
    c = ((c ^ b) - _rot(b, 16)) & _MASK
    a = ((a ^ c) - _rot(c, 4)) & _MASK
    b = ((b ^ a) - _rot(a, 14)) & _MASK
    c = ((c ^ b) - _rot(b, 24)) & _MASK
    return a, b, c


def _words(key: str) -> tuple[int, ...]:
    """The key as little-endian 32-bit words, zero-padded to whole 12-byte blocks."""
    padded_len = -(-len(key) // 12) * 12
    try:
        raw = key.encode("latin-1")
    except UnicodeEncodeError:
        # Code points >= 256 overflow their byte slot; the SDK adds them anyway (mod 2**32).
        codes = [ord(ch) for ch in key] + [0] * (padded_len - len(key))
        return tuple(
            (codes[i] + (codes[i + 1] << 8) + (codes[i + 2] << 16) + (codes[i + 3] << 24)) & _MASK
            for i in range(0, padded_len, 4)
        )
    raw += b"\x00" * (padded_len - len(raw))
    return struct.unpack(f"<{padded_len // 4}I", raw)


def hash_code(key: str) -> int:
    """The SDK's ``generate_hash_code``: a signed 16-bit hash of the key (0 for "")."""
    if not key:
        return 0
    a = b = c = (0xDEADBEEF + len(key)) & _MASK
    words = _words(key)
    last = len(words) - 3
    for i in range(0, last, 3):
        a = (a + words[i]) & _MASK
        b = (b + words[i + 1]) & _MASK
        c = (c + words[i + 2]) & _MASK
        a, b, c = _mix(a, b, c)
    a = (a + words[last]) & _MASK
    b = (b + words[last + 1]) & _MASK
    c = (c + words[last + 2]) & _MASK
    a, b, c = _final(a, b, c)
    folded = (c ^ b) & 0xFFFF
    return folded - 0x10000 if folded >= 0x8000 else folded


@lru_cache(maxsize=65536)
def partition_for_key(key: str, partition_count: int) -> int:
    """Index of the partition the SDK routes ``key`` to among ``partition_count`` partitions."""
    if partition_count <= 0:
        raise ValueError("partition_count must be positive")
    return abs(hash_code(key) % partition_count)
