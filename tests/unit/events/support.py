"""Records, settings and checks shared by the unit tests of `events`."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from target_azure_eventhubs.events import (
    ConversionSettings,
    InvalidRecordError,
    build_event,
    convert_record,
)

RAW_EMAIL = "  John.Doe@Example.COM "
EMAIL_HASH = hashlib.sha256(b"john.doe@example.com").hexdigest()
PHONE_HASH = hashlib.sha256(b"+15550109999").hexdigest()
SEG = "7841ba61-23c1-4bb3-a495-00d695fe1e93"
SEG2 = "b3f0c7f2-0000-4000-8000-000000000002"
DEFAULT = ConversionSettings()
# For records about identities and attributes alone: by default a record without any
# membership is invalid (events.mapping).
PROFILE_UPDATES = ConversionSettings(allow_events_without_memberships=True)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event_of(record: dict[str, Any], s: ConversionSettings = DEFAULT) -> dict[str, Any]:
    return build_event(convert_record(record, s), s)


def members(event: dict[str, Any], namespace: str = "ups") -> dict[str, Any]:
    return event["segmentMembership"][namespace]


def reject(record: Any, s: ConversionSettings = DEFAULT) -> str:
    with pytest.raises(InvalidRecordError) as info:
        convert_record(record, s)
    reason = info.value.reason
    assert reason == str(info.value)
    assert "John.Doe" not in reason and "john.doe" not in reason
    return reason


SYNONYMS = {
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

SECONDS = 1583270679
EXPECTED = "2020-03-03T21:24:39Z"
