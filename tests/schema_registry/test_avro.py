"""encoding: avro against the local hub's Schema Registry: the target registers the schema
derived from its settings once, sends Avro bodies with content type
`avro/binary+<schema id>`, and every event read back by the official consumer decodes with
the official `AvroEncoder` (the schema fetched by id with a reader's token) to the event
the JSON encoding sends, attributes a record lacks as null."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.entra.support import run_in_process, singer_input
from tests.schema_registry.support import GROUP, RegistryHub


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


@pytest.mark.slow  # two runs and two read-backs: ~6 s
def test_every_event_decodes_with_the_official_encoder(registry_hub: RegistryHub) -> None:
    text = singer_input("avro", count=4)
    assert run_in_process(registry_hub.config("avro", sender_process=False), text) == 0
    assert run_in_process(registry_hub.config("json", encoding="json"), text) == 0

    events = registry_hub.read_back("avro")
    assert len(events) == 4
    [schema] = [s for s in registry_hub.registry.schemas() if s.format == "Avro"]
    assert (schema.group, schema.name, schema.version) == (
        GROUP,
        "com.target_azure_eventhubs.SegmentMembershipEvent",
        1,
    )
    assert {event.content_type for event in events} == {f"avro/binary+{schema.id}"}
    decoded = registry_hub.decode_avro(events)
    sent_as_json = [json.loads(b"".join(e.body)) for e in registry_hub.read_back("json")]
    assert sorted(map(json.dumps, map(_without_nulls, decoded))) == sorted(
        map(json.dumps, sent_as_json)
    )
    first = decoded[0]
    assert set(first) == {"person", "segmentMembership", "identityMap"}
    assert first["person"] is None  # no attribute in the rows: Avro has no absent field
    # Application properties are those of JSON events.
    assert {k.decode() for k in events[0].properties} >= {"stream", "segment_ids"}


def test_registered_once_per_run_and_kept_across_runs(registry_hub: RegistryHub) -> None:
    registry_hub.registry.requests.clear()
    text = singer_input("avro-again", count=3)
    assert run_in_process(registry_hub.config("avro", sender_process=False), text) == 0
    puts = [r for r in registry_hub.registry.requests if r[0] == "PUT"]
    assert puts == [(puts[0][0], puts[0][1], 204)]  # one registration in the run
    # The same definition keeps its id and version.
    assert len([s for s in registry_hub.registry.schemas() if s.format == "Avro"]) == 1
