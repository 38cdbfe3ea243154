"""A tracked profile's records held unconverted until its event may be needed (change
tracking on a stream keyed by a field), and what decides what they convert to."""

from __future__ import annotations

import typing as t

import orjson

import target_azure_eventhubs
from target_azure_eventhubs.changes.diff import short_digest
from target_azure_eventhubs.events import (
    ConversionSettings,
    InvalidRecordError,
    ProfileEvent,
    convert_record,
)


class HeldRows:
    """A tracked profile's records as they came, converted only if its event may be needed.

    Its `digest` covers the records and the conversion settings: records whose digest is
    the one kept with the profile's stored state are unchanged, and are never converted
    (see `changes.tracker.Held`). Conversion errors are kept in `refused` and reported
    when the batch is drained.
    """

    __slots__ = ("_converted", "_digest", "_profile", "_records", "_settings", "_tag", "refused")

    def __init__(
        self, settings: ConversionSettings, tag: bytes, record: dict[str, t.Any], line: int
    ) -> None:
        self._settings, self._tag = settings, tag
        self._records = [(record, line)]
        self._digest: str | None = None
        self._profile: ProfileEvent | None = None
        self._converted = False
        self.refused: list[tuple[int, str, dict[str, t.Any]]] = []  # (line, reason, record)

    def add(self, record: dict[str, t.Any], line: int) -> None:
        self._records.append((record, line))

    @property
    def digest(self) -> str:
        if self.refused:  # the next run reports them again: it must convert
            return ""
        if self._digest is None:
            records = [record for record, _ in self._records]
            try:
                self._digest = short_digest(self._tag + orjson.dumps(records))
            except TypeError:  # a value JSON cannot hold: compared whole every time
                self._digest = ""
        return self._digest

    @property
    def converted(self) -> bool:
        """Whether its records were converted (an unchanged profile's never are)."""
        return self._converted

    @property
    def profile(self) -> ProfileEvent | None:
        if not self._converted:
            self._converted = True
            self._profile = self._convert()
        return self._profile

    def _convert(self) -> ProfileEvent | None:
        merged: ProfileEvent | None = None
        for record, line in self._records:
            try:
                row = convert_record(record, self._settings)
            except InvalidRecordError as exc:
                self.refused.append((line, exc.reason, record))
                continue
            if merged is None:
                merged = row
            else:
                merged.merge(row)
        return merged


def settings_tag(settings: ConversionSettings) -> bytes:
    """What, besides the records, decides what they convert to: the settings and the
    version that converts them (a new one compares every profile once)."""
    text = f"{target_azure_eventhubs.__version__}\x00{settings!r}"
    return short_digest(text.encode()).encode()
