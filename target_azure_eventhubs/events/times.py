"""Times: ISO-8601 strings, datetimes, dates and epoch seconds/milliseconds -> UTC."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from target_azure_eventhubs.events.errors import InvalidRecordError, quote

TIMESTAMP_KEYS: tuple[str, ...] = (
    "createdAt",
    "updatedAt",
    "mappingCreatedAt",
    "mappingUpdatedAt",
)
_EPOCH = datetime(1970, 1, 1)  # naive UTC: all internal datetimes are naive UTC
_MS = timedelta(milliseconds=1)
_MS_THRESHOLD = 100_000_000_000  # abs(epoch) >= 1e11 is milliseconds (1e11 s is year 5138)


def _looks_numeric(text: str) -> bool:
    body = text[1:] if text[0] in "+-" else text
    return body.replace(".", "", 1).isdigit() and body.isascii()


def _from_epoch(value: Any) -> datetime:  # int, float or Decimal
    if not math.isfinite(value):
        raise ValueError("not finite")
    ms = value if abs(value) >= _MS_THRESHOLD else value * 1000
    return _EPOCH + timedelta(milliseconds=round(ms))


def _to_datetime(value: Any) -> datetime | None:
    """Naive UTC datetime for a time value; None for None/blank; ValueError for garbage."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _looks_numeric(text):
            return _from_epoch(Decimal(text))
        return utc_naive(datetime.fromisoformat(text))
    if isinstance(value, datetime):
        return utc_naive(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _from_epoch(value)
    raise ValueError("unsupported type")


def utc_naive(dt: datetime) -> datetime:
    if dt.tzinfo is not None:
        offset = dt.utcoffset()
        dt = dt.replace(tzinfo=None)
        if offset:
            dt -= offset
    return dt


def format_utc(dt: datetime) -> str:
    """ISO-8601 UTC with Z; milliseconds only when non-zero. `dt` is naive UTC."""
    if dt.microsecond < 1000:
        return dt.isoformat(timespec="seconds") + "Z"
    return dt.isoformat(timespec="milliseconds") + "Z"


def _is_canonical_utc(text: str) -> bool:
    # "2020-03-03T21:24:39Z": already the output form; parsing still validates it.
    return len(text) == 20 and text[19] == "Z" and text[10] == "T"


def to_iso_utc(value: Any) -> str | None:
    """ISO-8601 UTC (`2020-03-03T21:24:39Z`) for strings, datetimes, dates and epoch s/ms."""
    try:
        if type(value) is str and _is_canonical_utc(value):
            datetime.fromisoformat(value)
            return value
        dt = _to_datetime(value)
        return None if dt is None else format_utc(dt)
    except (ValueError, ArithmeticError):
        # ArithmeticError covers OverflowError and decimal errors (out-of-range epochs).
        raise InvalidRecordError(
            f"invalid time {quote(value)} (expected ISO-8601 or epoch seconds/milliseconds)"
        ) from None


def to_epoch_ms(value: Any) -> int | None:
    dt = _to_datetime(value)
    return None if dt is None else (dt - _EPOCH) // _MS
