"""CloudEvents 1.0 over AMQP (the CloudEvents AMQP protocol binding), for `cloudevents`:

- `binary`: the body stays the event (`application/json`, the AMQP content type standing
  for `datacontenttype`); the attributes are application properties prefixed
  `cloudEvents_`, `time` an AMQP timestamp;
- `structured`: the body is the CloudEvent in its JSON format, content type
  `application/cloudevents+json`, the event under `data`.

The attributes: `specversion` 1.0; `id` the event's message id (so one id serves both a
consumer's de-duplication and CloudEvents'); `source` and `type` from the settings
(`{stream}` in them is the stream's name); `subject` the profile's key; `time` the latest
`lastQualificationTime` of the event's memberships (left out when none has one, so that
an event is the same on every run); `datacontenttype` `application/json`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

MODES = ("none", "binary", "structured")
SPECVERSION = "1.0"
DATA_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
PREFIX = "cloudEvents_"
DEFAULT_SOURCE = "/target-azure-eventhubs/streams/{stream}"
DEFAULT_TYPE = "com.github.target-azure-eventhubs.segment-membership"


# The binary mode's property names: the same string objects on every event, so a chunk of
# events pickles each name once.
_BINARY_NAMES = {
    name: PREFIX + name for name in ("specversion", "id", "source", "type", "subject", "time")
}


def event_time(memberships: Mapping[str, Mapping[str, Any]]) -> datetime | None:
    """The latest `lastQualificationTime` among the memberships (canonical UTC strings)."""
    latest: datetime | None = None
    for entry in memberships.values():
        when = entry.get("lastQualificationTime")
        if isinstance(when, str):
            try:
                parsed = datetime.fromisoformat(when)
            except ValueError:
                continue
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
            if latest is None or parsed > latest:
                latest = parsed
    return latest


def attributes(
    *, event_id: object, source: str, type_: str, subject: str | None, time: datetime | None
) -> dict[str, Any]:
    """The context attributes, in the order both modes write them. `event_id` is the
    message id, or (binary mode) the encoder's stand-in for it."""
    attrs: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": source,
        "type": type_,
    }
    if subject:
        attrs["subject"] = subject
    if time is not None:
        attrs["time"] = time
    return attrs


def add_binary_properties(
    into: dict[str, Any],
    *,
    event_id: object,
    source: str,
    type_: str,
    subject: str | None,
    time: datetime | None,
) -> None:
    """Binary mode's application properties, added to an event's others: the same as
    `binary_properties(attributes(...))`, written straight in (once per event)."""
    names = _BINARY_NAMES
    into[names["specversion"]] = SPECVERSION
    into[names["id"]] = event_id
    into[names["source"]] = source
    into[names["type"]] = type_
    if subject:
        into[names["subject"]] = subject
    if time is not None:
        into[names["time"]] = time


def binary_properties(attrs: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """Application properties of binary mode (`time` stays a datetime: an AMQP timestamp)."""
    return ((_BINARY_NAMES.get(name) or PREFIX + name, value) for name, value in attrs.items())


def _rfc3339(value: datetime) -> str:
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
    return text.removesuffix(".000") + "Z"


def structured_body(attrs: Mapping[str, Any], body: bytes) -> bytes:
    """The JSON CloudEvent holding the event's JSON `body` as `data` (not re-encoded)."""
    head = {k: _rfc3339(v) if isinstance(v, datetime) else v for k, v in attrs.items()}
    head["datacontenttype"] = DATA_CONTENT_TYPE
    return orjson.dumps(head)[:-1] + b',"data":' + body + b"}"
