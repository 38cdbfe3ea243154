"""Partition logs: in memory, optionally mirrored to an append-only file per partition.

Each stored event keeps its raw encoded AMQP message (as the producer sent it), its
partition key and the broker-assigned sequence number, offset and enqueued time.
Offsets are byte positions in the partition (like the real service): monotonic, opaque.

File format, one record per event:
    u32 body length | u32 crc32(body) | body
    body = i64 sequence | i64 offset | i64 enqueued ms | i32 key length (-1: none) | key | event
On load, a torn or corrupt tail (a crash mid-write) is truncated away.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path

_LOGGER = logging.getLogger("eventhubs_localhub")

_RECORD_HEAD = struct.Struct(">II")
_BODY_HEAD = struct.Struct(">qqqi")


class PartitionLog:
    """One partition: parallel lists indexed by sequence number."""

    def __init__(self, hub: str, partition_id: str, path: Path | None = None) -> None:
        self.hub = hub
        self.partition_id = partition_id
        self.events: list[bytes] = []
        self.keys: list[str | None] = []
        self.offsets: list[int] = []
        self.times: list[int] = []
        self.next_offset = 0
        self.listeners: list[Callable[[], None]] = []
        self._path = path
        self._file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._load(path)
            self._file = open(path, "ab")  # noqa: SIM115 - kept open for the hub's lifetime

    def __len__(self) -> int:
        return len(self.events)

    @property
    def last_sequence_number(self) -> int:
        return len(self.events) - 1

    def append(self, events: list[bytes], keys: list[str | None]) -> int:
        """Store events (fsynced first when durable); return the first sequence number."""
        first_seq = len(self.events)
        now_ms = int(time.time() * 1000)
        base = self.next_offset
        sizes = [len(e) for e in events]
        # offsets[i] = base + sum(sizes[:i])
        offsets = list(accumulate(sizes[:-1], initial=base)) if events else []
        if self._file is not None:
            self._write(events, keys, first_seq, offsets, now_ms)
        self.events.extend(events)
        self.keys.extend(keys)
        self.offsets.extend(offsets)
        self.times.extend([now_ms] * len(events))
        self.next_offset = base + sum(sizes)
        for listener in list(self.listeners):
            listener()
        return first_seq

    def _write(
        self,
        events: list[bytes],
        keys: list[str | None],
        first_seq: int,
        offsets: list[int],
        now_ms: int,
    ) -> None:
        assert self._file is not None
        chunks = []
        for i, event in enumerate(events):
            key = keys[i]
            key_raw = key.encode() if key is not None else b""
            key_len = len(key_raw) if key is not None else -1
            body = _BODY_HEAD.pack(first_seq + i, offsets[i], now_ms, key_len) + key_raw + event
            chunks.append(_RECORD_HEAD.pack(len(body), zlib.crc32(body)))
            chunks.append(body)
        self._file.write(b"".join(chunks))
        self._file.flush()
        os.fsync(self._file.fileno())

    def _load(self, path: Path) -> None:
        if not path.exists():
            return
        data = path.read_bytes()
        pos = 0
        while pos + _RECORD_HEAD.size <= len(data):
            length, crc = _RECORD_HEAD.unpack_from(data, pos)
            body = data[pos + _RECORD_HEAD.size : pos + _RECORD_HEAD.size + length]
            if len(body) < length or length < _BODY_HEAD.size or zlib.crc32(body) != crc:
                break
            seq, offset, enqueued, key_len = _BODY_HEAD.unpack_from(body)
            if seq != len(self.events):
                break
            key_end = _BODY_HEAD.size + max(key_len, 0)
            self.keys.append(body[_BODY_HEAD.size : key_end].decode() if key_len >= 0 else None)
            self.events.append(body[key_end:])
            self.offsets.append(offset)
            self.times.append(enqueued)
            self.next_offset = offset + len(body) - key_end
            pos += _RECORD_HEAD.size + length
        if pos < len(data):
            _LOGGER.warning(
                "partition log %s: truncating %d bytes of torn tail", path, len(data) - pos
            )
            with open(path, "r+b") as handle:
                handle.truncate(pos)
                handle.flush()
                os.fsync(handle.fileno())
        if self.events:
            _LOGGER.info("partition log %s: reloaded %d events", path, len(self.events))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class EventHubStore:
    """One event hub: its partitions and creation time."""

    def __init__(self, name: str, partition_count: int, data_dir: Path | None) -> None:
        self.name = name
        self.created_at_ms = int(time.time() * 1000)
        self.partitions = [
            PartitionLog(name, str(i), data_dir / name / f"{i}.log" if data_dir else None)
            for i in range(partition_count)
        ]
        self.round_robin = 0

    @property
    def partition_ids(self) -> list[str]:
        return [p.partition_id for p in self.partitions]

    def partition(self, partition_id: str) -> PartitionLog | None:
        try:
            index = int(partition_id)
        except ValueError:
            return None
        return self.partitions[index] if 0 <= index < len(self.partitions) else None

    def next_round_robin(self) -> PartitionLog:
        log = self.partitions[self.round_robin % len(self.partitions)]
        self.round_robin += 1
        return log

    def close(self) -> None:
        for log in self.partitions:
            log.close()


class Storage:
    """All hubs, looked up case-insensitively (like the service)."""

    def __init__(
        self, hubs: dict[str, int], data_dir: str | os.PathLike[str] | None = None
    ) -> None:
        root = Path(data_dir) if data_dir is not None else None
        self.hubs = {name.lower(): EventHubStore(name, count, root) for name, count in hubs.items()}

    def get(self, name: str) -> EventHubStore | None:
        return self.hubs.get(name.lower())

    def close(self) -> None:
        for hub in self.hubs.values():
            hub.close()
