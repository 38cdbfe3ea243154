"""Stored events as tests inspect them (`LocalHub.events`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .frames import decode_message


@dataclass(frozen=True)
class StoredEvent:
    """One stored event, decoded for inspection by tests."""

    partition_id: str
    body: bytes
    properties: dict[str, Any]
    message_id: Any
    content_type: str | None
    partition_key: str | None
    sequence_number: int
    offset: int
    enqueued_time: int  # ms since the epoch
    raw: bytes


def _as_text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _decode_event(  # noqa: PLR0917 - one call site, positional is clearest
    partition_id: str, raw: bytes, key: str | None, seq: int, offset: int, t: int
) -> StoredEvent:
    message = decode_message(raw)
    props = message.get("properties") or []
    app = message.get("application_properties") or {}
    data = message.get("data")
    body = b"".join(data) if data else b""
    return StoredEvent(
        partition_id=partition_id,
        body=body,
        properties={str(_as_text(k)): v for k, v in app.items()},
        message_id=_as_text(props[0]) if props else None,
        content_type=_as_text(props[6]) if len(props) > 6 else None,
        partition_key=key,
        sequence_number=seq,
        offset=offset,
        enqueued_time=t,
        raw=raw,
    )
