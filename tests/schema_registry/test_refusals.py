"""What encoding: avro refuses: a config without Entra ID (the registry takes no SAS), at
start in one line; a record whose event does not fit the schema, as an invalid record
(`on_invalid_record`) naming the stream, the line and the path; a user's `.avsc` is used
as it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from target_azure_eventhubs.errors import ConfigurationError
from target_azure_eventhubs.target import TargetAzureEventHubs
from tests.core.support import SCHEMA, STREAM, lines, row, state_line
from tests.entra.support import run_in_process
from tests.schema_registry.support import RegistryHub


def test_sas_only_config_is_one_line_at_start() -> None:
    config = {
        "namespace": "contoso",
        "eventhub_name": "profiles",
        "sas_key_name": "send",
        "sas_key": "not-used",
        "encoding": "avro",
        "schema_group": "cdp",
    }
    with pytest.raises(ConfigurationError) as caught:
        TargetAzureEventHubs(config=config)
    message = str(caught.value)
    assert "\n" not in message and "not-used" not in message
    assert message.startswith("encoding: avro needs use_entra_id")


def test_schema_group_is_required(registry_hub: RegistryHub) -> None:
    config = registry_hub.config("avro")
    del config["schema_group"]
    with pytest.raises(ConfigurationError, match="needs schema_group"):
        TargetAzureEventHubs(config=config)


def _with_extra(profile: str, segment: str, extra: Any) -> dict[str, Any]:
    message = row(profile, segment)
    message["record"]["notes"] = extra
    return message


def test_record_that_does_not_fit_is_an_invalid_record(
    registry_hub: RegistryHub, tmp_path: Path
) -> None:
    # Unmapped attributes go under `attributes`: values one object deep fit; deeper do not.
    schema = json.loads(json.dumps(SCHEMA))
    schema["schema"]["properties"]["notes"] = {}
    dead = tmp_path / "dead.jsonl"
    text = lines(
        [
            schema,
            _with_extra("fit-p0", "fit-s0", {"tier": "gold"}),
            _with_extra("fit-p1", "fit-s1", {"tier": {"deep": "x"}}),
            _with_extra("fit-p2", "fit-s2", ["a", 1]),
            state_line('{"done": true}'),
        ]
    )
    config = registry_hub.config(
        "misfit",
        include_unmapped_attributes=True,
        on_invalid_record="dead_letter",
        dead_letter_path=str(dead),
        sender_process=False,
    )
    assert run_in_process(config, text) == 0
    decoded = registry_hub.decode_avro(registry_hub.read_back("misfit"))
    notes = sorted(json.dumps(d["attributes"]["notes"]) for d in decoded)
    assert notes == sorted([json.dumps({"tier": "gold"}), json.dumps(["a", 1])])
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["stream"] == STREAM and letter["line"] == 3
    assert "does not fit the Avro schema: attributes[*][*] is a object" in letter["reason"]
    assert "deep" not in letter["reason"]  # the path, never the value


def test_user_avsc(registry_hub: RegistryHub, tmp_path: Path) -> None:
    avsc = {
        "type": "record",
        "name": "Membership",
        "namespace": "com.example.cdp",
        "fields": [
            {
                "name": "segmentMembership",
                "type": {
                    "type": "map",
                    "values": {
                        "type": "map",
                        "values": {
                            "type": "record",
                            "name": "Entry",
                            "fields": [
                                {"name": "status", "type": "string"},
                                {
                                    "name": "lastQualificationTime",
                                    "type": ["null", "string"],
                                    "default": None,
                                },
                            ],
                        },
                    },
                },
            },
            {
                "name": "identityMap",
                "type": {
                    "type": "map",
                    "values": {"type": "array", "items": {"type": "map", "values": "string"}},
                },
            },
            {
                "name": "person",
                "type": ["null", {"type": "map", "values": "string"}],
                "default": None,
            },
        ],
    }
    path = tmp_path / "membership.avsc"
    path.write_text(json.dumps(avsc))
    text = lines([SCHEMA, row("avsc-p0", "avsc-s0"), row("avsc-p1", "avsc-s1")])
    config = registry_hub.config("avsc", avro_schema_path=str(path))
    assert run_in_process(config, text) == 0
    events = registry_hub.read_back("avsc")
    [schema] = [
        s for s in registry_hub.registry.schemas() if s.name == "com.example.cdp.Membership"
    ]
    assert {e.content_type for e in events} == {f"avro/binary+{schema.id}"}
    decoded = registry_hub.decode_avro(events)
    assert sorted(seg for d in decoded for seg in d["segmentMembership"]["ups"]) == [
        "avsc-s0",
        "avsc-s1",
    ]
    assert all(d["person"] is None for d in decoded)
