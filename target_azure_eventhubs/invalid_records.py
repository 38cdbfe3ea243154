"""What happens to a record that cannot become an event: fail, skip, or dead-letter."""

from __future__ import annotations

import datetime
import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from target_azure_eventhubs.errors import ConfigurationError, InvalidRecordFailure

POLICIES = ("fail", "skip", "dead_letter")


class InvalidRecords:
    """Applies `on_invalid_record` and counts what it did, per stream."""

    def __init__(self, policy: str, dead_letter_path: str | None, logger: logging.Logger) -> None:
        if policy not in POLICIES:
            raise ConfigurationError(
                f"on_invalid_record must be one of {', '.join(POLICIES)}, not {policy!r}"
            )
        if policy == "dead_letter" and not dead_letter_path:
            raise ConfigurationError("on_invalid_record 'dead_letter' needs dead_letter_path")
        self.policy = policy
        self.path = Path(dead_letter_path) if dead_letter_path else None
        self.logger = logger
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def handle(
        self,
        *,
        stream: str | None,
        line: int,
        key: str | None,
        reason: str,
        record: Any = None,
        raw: bytes | str | None = None,
    ) -> None:
        """Raise, or count (and write) the invalid record, so it is never silently lost."""
        where = f"stream '{stream}'" if stream else "input"
        what = f"record {key}" if key else "record"
        message = f"Invalid {what} in {where} at input line {line}: {reason}"
        self.counts[stream or "<input>"] += 1  # the record that stops a run counts too
        if self.policy == "fail":
            raise InvalidRecordFailure(
                message + " (set on_invalid_record to 'skip' or 'dead_letter' to continue past it)"
            )
        if self.policy == "skip":
            self.logger.warning("%s; skipped", message)
            return
        self._write(stream, line, key, reason, record, raw)
        self.logger.warning("%s; written to the dead-letter file %s", message, self.path)

    def _write(  # noqa: PLR0917
        self,
        stream: str | None,
        line: int,
        key: str | None,
        reason: str,
        record: Any,
        raw: bytes | str | None,
    ) -> None:
        assert self.path is not None
        entry: dict[str, Any] = {
            "stream": stream,
            "line": line,
            "key": key,
            "reason": reason,
            "rejected_at": datetime.datetime.now(datetime.UTC).isoformat(),
        }
        if record is not None:
            entry["record"] = record
        if raw is not None:
            entry["raw"] = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        data = orjson.dumps(entry, default=str) + b"\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as handle:
                handle.write(data)
