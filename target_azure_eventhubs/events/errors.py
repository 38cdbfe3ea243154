"""Why a record cannot become an event: a reason safe to show (no personal data)."""

from __future__ import annotations

from typing import Any

import orjson


class InvalidRecordError(ValueError):
    """A record that cannot become an event.

    `.reason` is a short human sentence; it never includes raw identity values.
    """

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def quote(value: Any) -> str:
    """Quote a (non-identity) value for an error reason, truncated."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def decode_json_text(value: Any, where: str) -> Any:
    """A field that may hold its list or object as JSON text (as warehouses export them):
    the text decoded, None for blank text, other values as they are."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidRecordError(f"{where} is text but not JSON") from None
