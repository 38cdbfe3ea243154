"""Membership statuses: the three the event carries, and the synonyms accepted for them."""

from __future__ import annotations

from typing import Any

from target_azure_eventhubs.events.errors import InvalidRecordError, quote

STATUSES: tuple[str, ...] = ("realized", "existing", "exited")

_STATUS_MAP: dict[str, str] = {
    "realized": "realized",
    "existing": "existing",
    "exited": "exited",
    "qualified": "realized",
    "entered": "realized",
    "active": "realized",
    "added": "realized",
    "exiting": "exited",
    "removed": "exited",
    "left": "exited",
    "inactive": "exited",
}
_ALLOWED_STATUSES_TEXT = (
    "allowed: realized, existing, exited, or the synonyms qualified, entered, active, added "
    "(realized) and exiting, removed, left, inactive (exited)"
)


def normalise_status(value: Any) -> str:
    """One of STATUSES for a status or a synonym (case-insensitive, trimmed)."""
    if isinstance(value, str):
        status = _STATUS_MAP.get(value)
        if status is None:
            status = _STATUS_MAP.get(value.strip().lower())
        if status is not None:
            return status
    raise InvalidRecordError(f"invalid status {quote(value)} ({_ALLOWED_STATUSES_TEXT})")
