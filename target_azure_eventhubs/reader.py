"""Reading Singer messages: fast parsing, line numbers in errors, and ticks while input is idle.

stdin is read by a background thread into a bounded queue, so the main thread can wake up
when the input goes quiet (to send waiting events within `max_latency_ms`) and when a
termination signal arrives, without ever touching sinks from another thread.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import sys
import threading
import typing as t
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader, dec_hook
from singer_sdk.exceptions import (
    InvalidJSONSchema,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)

from target_azure_eventhubs.errors import InputError

# Decodes every input line, and the records of BATCH files alike (see `batches`).
decoder = msgspec.json.Decoder(dec_hook=dec_hook)


class _StateLine(msgspec.Struct):
    """A STATE message's value as the exact bytes the tap wrote: relayed, never re-encoded,
    so that bookmarks keep every digit (17-digit decimals, integers beyond 64 bits)."""

    type: t.Literal["STATE"]
    value: msgspec.Raw


_state_decoder = msgspec.json.Decoder(_StateLine)
_CHUNK_BYTES = 1 << 16
_EOF = object()


class InvalidLine(Exception):
    """A line that is not a Singer message; carries the line number."""

    def __init__(self, line_number: int, reason: str, raw: bytes | str) -> None:
        super().__init__(f"input line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason
        self.raw = raw


class RecordBeforeSchema(InputError, RecordsWithoutSchemaException):
    """A RECORD or BATCH arrived before its stream's SCHEMA (a broken tap)."""


class MissingKeyProperties(InputError, MissingKeyPropertiesError):
    """A record lacks a key property its SCHEMA declared (a broken tap)."""


class TickingReader(MsgSpecReader):
    """A `MsgSpecReader` that numbers lines and calls `on_tick` while input is idle."""

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        self.tick_seconds = 0.25
        # Called with idle=True when no input came for tick_seconds, else after each chunk.
        self.on_tick: Callable[[bool], None] = lambda idle: None
        self.on_invalid_line: Callable[[InvalidLine], None] | None = None
        self.should_stop: Callable[[], bool] = lambda: False
        # STATE messages go here, with the raw bytes of their value, instead of to
        # singer-sdk (which would decode and re-encode them).
        self.on_state: Callable[[bytes], None] | None = None

    def deserialize_json(self, line: str | bytes) -> dict:
        try:
            message = decoder.decode(line)
        except msgspec.DecodeError as exc:
            reason = not_utf8(line) or f"not valid JSON ({exc})"
            raise InvalidLine(self.line_number, reason, line) from None
        except RecursionError:
            raise InvalidLine(self.line_number, "JSON nested too deeply", line) from None
        except UnicodeDecodeError:
            reason = not_utf8(line) or "not valid UTF-8"
            raise InvalidLine(self.line_number, reason, line) from None
        if not isinstance(message, dict):
            raise InvalidLine(self.line_number, "not a JSON object", line)
        if not isinstance(message.get("type"), str):
            raise InvalidLine(self.line_number, "has no 'type' field", line)
        return message

    def _state_value(self, line: str | bytes) -> bytes:
        raw = _raw_state(line)
        if raw is None:
            raise InputError(f"input line {self.line_number}: the STATE message has no 'value'")
        return raw

    def process_lines(
        self,
        file_input: t.IO[str] | t.IO[bytes] | None,
        callbacks: dict[str, Callable[[dict], None]],
    ) -> t.Counter[str]:
        stats: dict[str, int] = defaultdict(int)
        for line in self._lines(file_input):
            self.line_number += 1
            if not line or line.isspace():
                continue
            self._current_message = line  # type: ignore[assignment]
            try:
                message = self.deserialize_json(line)
            except InvalidLine as invalid:
                # A STATE whose value is valid JSON beyond what Python decodes (a number
                # out of a float's range) is still the tap's to get back.
                if self.on_state is not None and (raw := _raw_state(line)) is not None:
                    self.on_state(raw)
                    stats["STATE"] += 1
                    continue
                if self.on_invalid_line is None:
                    raise InputError(str(invalid)) from None
                self.on_invalid_line(invalid)
                continue
            message_type = message["type"]
            if message_type == "STATE" and self.on_state is not None:
                self.on_state(self._state_value(line))
                stats[message_type] += 1
                continue
            callback = callbacks.get(message_type)
            if callback is None:
                stream = message.get("stream")
                raise InputError(
                    f"{where(self.line_number, stream if isinstance(stream, str) else None)}: "
                    f"unknown Singer message type {str(message_type)[:40]!r} (expected SCHEMA, "
                    "RECORD, STATE, ACTIVATE_VERSION or BATCH)"
                )
            callback(message)
            stats[message_type] += 1
        return Counter(**stats)

    def _lines(self, file_input: t.IO[str] | t.IO[bytes] | None) -> Iterator[bytes | str]:
        source: t.IO[t.Any] = file_input if file_input is not None else sys.stdin.buffer
        chunks: queue.Queue[t.Any] = queue.Queue(maxsize=64)
        threading.Thread(
            target=_pump, args=(source, chunks), name="singer-input", daemon=True
        ).start()
        while not self.should_stop():
            try:
                chunk = chunks.get(timeout=self.tick_seconds)
            except queue.Empty:
                self.on_tick(True)
                continue
            if chunk is _EOF:
                return
            if isinstance(chunk, BaseException):
                raise InputError(f"cannot read input: {chunk}") from chunk
            for line in chunk:
                yield line
                if self.should_stop():
                    return
            self.on_tick(False)


def not_utf8(line: str | bytes) -> str | None:
    """Where a line is not UTF-8; None if it is."""
    raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    return None


def _raw_state(line: str | bytes) -> bytes | None:
    """The raw value of a STATE message; None if the line is not one."""
    try:
        return bytes(_state_decoder.decode(line).value)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def where(line_number: int, stream: str | None) -> str:
    """`input line N` and, where known, the stream: how every input error starts."""
    return f"input line {line_number}" + (f" (stream '{stream[:100]}')" if stream else "")


def _pump(source: t.IO[t.Any], chunks: queue.Queue[t.Any]) -> None:
    """Hand over whatever lines have arrived, without waiting for a chunk to fill up."""
    try:
        try:
            fd = source.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            for line in source:  # in-memory input (tests): no descriptor to read from
                chunks.put([line])
        else:
            _pump_descriptor(fd, chunks)
    except Exception as exc:  # handed to the main thread
        chunks.put(exc)
        return
    chunks.put(_EOF)


def _pump_descriptor(fd: int, chunks: queue.Queue[t.Any]) -> None:
    # os.read returns what is available now; readlines(hint) would block until the hint
    # is reached, delaying idle input past max_latency_ms.
    partial = b""
    while data := os.read(fd, _CHUNK_BYTES):
        lines = (partial + data).split(b"\n")
        partial = lines.pop()
        if lines:
            chunks.put(lines)
    if partial:
        chunks.put([partial])


@contextlib.contextmanager
def checked_schema(message: dict[str, t.Any], line_number: int) -> Iterator[None]:
    """Around singer-sdk's handling of a SCHEMA message (its stream and schema are there):
    an unusable one is an InputError naming the line, the stream and the reason."""
    stream = message["stream"]
    if problem := _schema_problem(message):
        raise InputError(f"{where(line_number, str(stream))}: {problem}")
    try:
        yield
    except InvalidJSONSchema as error:
        raise InputError(
            f"{where(line_number, stream)}: the stream's schema is not a valid JSON schema "
            f"({str(error).splitlines()[0][:300]})"
        ) from None


def _schema_problem(message: dict[str, t.Any]) -> str | None:
    """What makes a SCHEMA message unusable (its stream and schema are there), or None."""
    if not isinstance(message["stream"], str) or not message["stream"]:
        return "the SCHEMA message's stream is not a non-empty string"
    schema = message["schema"]
    if not isinstance(schema, dict):
        return f"the SCHEMA message's schema is {type(schema).__name__}, not a JSON object"
    if not isinstance(schema.get("properties"), dict):
        return "the SCHEMA message's schema has no 'properties' object"
    keys = message.get("key_properties")
    if keys is not None and (
        not isinstance(keys, list) or not all(isinstance(key, str) for key in keys)
    ):
        return "the SCHEMA message's key_properties is not a list of field names"
    return None
