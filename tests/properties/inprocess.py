"""Running the target in-process against the local hub, for the read-back tests of
identities, segment namespaces and record metadata."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from eventhubs_localhub import LocalHub

from target_azure_eventhubs.target import TargetAzureEventHubs
from target_azure_eventhubs.testing import read_all
from target_azure_eventhubs.testing.readback import ReadEvent
from tests.integration.target_runner import singer_lines


def run(hub: LocalHub, extra: dict[str, Any], messages: list[dict[str, Any]]) -> list[str]:
    """The target on `messages`; its STATE lines."""
    config = {
        "connection_string": hub.connection_string(),
        "eventhub_name": "profiles",
        "max_latency_ms": 100,
        "sender_process": False,
        **extra,
    }
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        TargetAzureEventHubs(config=config).listen(io.StringIO(singer_lines(messages)))
    return stdout.getvalue().splitlines()


def read_bodies(hub: LocalHub, expected: int) -> list[tuple[ReadEvent, dict[str, Any]]]:
    """Every event the official consumer reads back, with its body parsed."""
    events = read_all(hub.connection_string(), "profiles", timeout=30)
    assert len(events) == expected, [e.body for e in events]
    return [(event, json.loads(event.body)) for event in events]
