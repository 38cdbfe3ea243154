"""Partition key -> partition index, as Event Hubs and the azure-eventhub SDK compute it.

A port of ``azure/eventhub/_buffered_producer/_partition_resolver.py`` (Bob Jenkins'
lookup3 ``hashlittle2`` over the key's code points, folded to a signed 16-bit value, then
``abs(hash % count)`` with Python modulo semantics): an event sent with a partition key is
stored where the service would store it, so clients that route by key themselves agree
with the hub. (target-azure-eventhubs has its own, vectorised, copy; its tests check that
the two agree.)

The SDK feeds ``ord(char)`` values into the byte slots of each 32-bit word; for keys made of
code points < 256 that is the same as reading the Latin-1 bytes little-endian, which we do
with ``struct`` (fast path). Other keys go through the generic code-point path.
"""

from __future__ import annotations

import struct

__all__ = ["hash_code", "partition_for_key"]

_MASK = 0xFFFFFFFF

# lookup3's rounds on (a, b, c) = abc[0..2], as (x, y, z, k). mix: x -= y; x ^= rot(y, k);
# y += z. final: x ^= y; x -= rot(y, k) (z unused).
_MIX = ((0, 2, 1, 4), (1, 0, 2, 6), (2, 1, 0, 8), (0, 2, 1, 16), (1, 0, 2, 19), (2, 1, 0, 4))
_FINAL = ((2, 1, 14), (0, 2, 11), (1, 0, 25), (2, 1, 16), (0, 2, 4), (1, 0, 14), (2, 1, 24))


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
    abc = [(0xDEADBEEF + len(key)) & _MASK] * 3
    words = _words(key)
    last = len(words) - 3
    for i in range(0, last, 3):
        for j in range(3):
            abc[j] = (abc[j] + words[i + j]) & _MASK
        for x, y, z, k in _MIX:
            abc[x] = ((abc[x] - abc[y]) & _MASK) ^ _rot(abc[y], k)
            abc[y] = (abc[y] + abc[z]) & _MASK
    for j in range(3):
        abc[j] = (abc[j] + words[last + j]) & _MASK
    for x, y, k in _FINAL:
        abc[x] = ((abc[x] ^ abc[y]) - _rot(abc[y], k)) & _MASK
    folded = (abc[2] ^ abc[1]) & 0xFFFF
    return folded - 0x10000 if folded >= 0x8000 else folded


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def partition_for_key(key: str, partition_count: int) -> int:
    """Index of the partition the SDK routes ``key`` to among ``partition_count`` partitions."""
    if partition_count <= 0:
        raise ValueError("partition_count must be positive")
    return abs(hash_code(key) % partition_count)
