"""encoding: json_schema: the target registers the JSON Schema derived from its settings
through the registry client (the encoder cannot register), sends JSON bodies with content
type `application/json;serialization=Json+<schema id>`, and every event read back decodes
(and validates) with the official `JsonSchemaEncoder` to the event the JSON encoding sends;
without schema_auto_register, a schema not registered ends the run in one line."""

from __future__ import annotations

import io

import pytest

from target_azure_eventhubs.errors import DeliveryError
from target_azure_eventhubs.target import TargetAzureEventHubs
from tests.core.support import SCHEMA, lines
from tests.entra.support import run_in_process, singer_input
from tests.schema_registry.support import GROUP, RegistryHub


def test_every_event_decodes_with_the_official_encoder(registry_hub: RegistryHub) -> None:
    text = singer_input("js", count=3)
    config = registry_hub.config("json-schema", encoding="json_schema", sender_process=False)
    assert run_in_process(config, text) == 0
    events = registry_hub.read_back("json-schema")
    [schema] = [s for s in registry_hub.registry.schemas() if s.format == "Json"]
    assert (schema.group, schema.name) == (GROUP, "SegmentMembershipEvent")
    assert {e.content_type for e in events} == {f"application/json;serialization=Json+{schema.id}"}
    decoded = registry_hub.decode_json(events)
    assert sorted(seg for d in decoded for seg in d["segmentMembership"]["ups"]) == [
        "js-s0",
        "js-s1",
        "js-s2",
    ]
    assert all(set(d) == {"segmentMembership", "identityMap"} for d in decoded)


def test_unregistered_schema_without_auto_register(registry_hub: RegistryHub) -> None:
    config = registry_hub.config(
        "unregistered",
        encoding="json_schema",
        schema_name="NeverRegistered",
        schema_auto_register=False,
    )
    target = TargetAzureEventHubs(config=config)
    with pytest.raises(DeliveryError) as caught:
        target.listen(io.StringIO(lines([SCHEMA])))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("cannot register the event schema in schema group 'cdp-events'")
    assert "HTTP 404" in message
