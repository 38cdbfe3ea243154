"""The event body: deterministic JSON and message ids."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal

from target_azure_eventhubs.delivery.encoding import message_id_for
from target_azure_eventhubs.events import (
    encode_event,
)
from tests.unit.events.support import (
    RAW_EMAIL,
    SEG,
    event_of,
)

# ---------------------------------------------------------------------------- encoding


def test_encode_and_message_id_are_deterministic() -> None:
    record = {"email": RAW_EMAIL, "segment_id": SEG, "status": "realized"}
    body_a = encode_event(event_of(record))
    body_b = encode_event(event_of(dict(record)))
    assert body_a == body_b
    assert b" " not in body_a  # compact
    assert message_id_for(body_a) == message_id_for(body_b)
    assert message_id_for(body_a) == hashlib.sha256(body_a).hexdigest()[:32]
    other = encode_event(event_of({**record, "status": "exited"}))
    assert message_id_for(other) != message_id_for(body_a)
    assert len(message_id_for(b"")) == 32


def test_encode_accepts_mappings_and_sdk_types() -> None:
    from types import MappingProxyType

    body = encode_event(MappingProxyType({"a": Decimal("1.5"), "d": date(2020, 1, 2)}))
    assert json.loads(body) == {"a": 1.5, "d": "2020-01-02"}
