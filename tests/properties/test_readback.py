"""Application properties and both CloudEvents modes, as the official azure-eventhub
consumer reads them back from the local hub after an in-process run of the target, with
each property's AMQP type checked in the stored message (`amqp_types`), and each CloudEvent
decoded by the CNCF `cloudevents` SDK's AMQP binding."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.bindings.amqp import AMQPMessage, from_binary, from_structured
from cloudevents.core.formats.json import JSONFormat
from eventhubs_localhub import LocalHub

from target_azure_eventhubs.delivery.encoding import message_id_for
from target_azure_eventhubs.errors import ConfigurationError
from target_azure_eventhubs.target import TargetAzureEventHubs
from target_azure_eventhubs.testing import read_all
from target_azure_eventhubs.testing.readback import ReadEvent
from tests.integration.target_runner import record, schema, singer_lines, state
from tests.properties.amqp_types import application_properties

EMAIL_HASH = "b36855e3f6da26408fbe5d880385620c2c056c856a42786d5e98407f72f9bc3c"
SEG = "eb8c61a7-fd78-4c11-bda5-60c96dce283c"
PROPERTIES = {
    "profile_id": {"type": "string"},
    "email": {"type": ["string", "null"]},
    "segment_id": {"type": "string"},
    "status": {"type": "string"},
    "last_qualification_time": {"type": ["string", "null"], "format": "date-time"},
    "tier": {},
    "visits": {"type": ["integer", "null"]},
    "score": {"type": ["number", "null"]},
    "opted_in": {"type": ["boolean", "null"]},
    "updated_at": {"type": ["string", "null"], "format": "date-time"},
    "address": {"type": ["object", "null"], "properties": {"country": {"type": "string"}}},
}
APPLICATION_PROPERTIES = {
    "tier": {"field": "tier"},
    "visits": {"field": "visits"},
    "score": {"field": "score"},
    "opted_in": {"field": "opted_in"},
    "updated_at": {"field": "updated_at"},
    "country": {"field": "address.country"},
    "source": {"value": "crm"},
    "epoch_ms": {"value": 1_711_744_369_123},
    "long_max": {"value": 2**63 - 1},
    "int_max": {"value": 2**31 - 1},
    "route": {"template": "{stream}/{address.country}"},
}
FULL = {
    "profile_id": "cust-00246",
    "email": "  Kofi.Berg@shop.example ",
    "segment_id": SEG,
    "status": "qualified",
    "last_qualification_time": "2024-03-29T22:32:49+02:00",
    "tier": "gold",
    "visits": 2**31,
    "score": 4,
    "opted_in": True,
    "updated_at": "2024-03-30T08:00:00.250Z",
    "address": {"country": "GH"},
}
SPARSE = {"profile_id": "cust-00247", "segment_id": SEG, "status": "exited", "tier": None}
NON_SCALAR = {"profile_id": "cust-00248", "segment_id": SEG, "status": "realized", "tier": ["a"]}


def run(hub: LocalHub, extra: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    config = {
        "connection_string": hub.connection_string(),
        "eventhub_name": "profiles",
        "identity_fields": {"email": "email_lc_sha256", "profile_id": "crmId"},
        "max_latency_ms": 100,
        "on_invalid_record": "skip",
        **extra,
    }
    lines = singer_lines(
        [
            schema("profiles", PROPERTIES, ["profile_id"]),
            *(record("profiles", row) for row in rows),
            state({"bookmarks": {"profiles": {"n": len(rows)}}}),
        ]
    )
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        TargetAzureEventHubs(config=config).listen(io.StringIO(lines))
    return stdout.getvalue()


def by_profile(events: list[ReadEvent]) -> dict[str, ReadEvent]:
    found = {}
    for event in events:
        body = json.loads(event.body)
        body = body.get("data", body)  # structured CloudEvents hold the event under data
        found[body["identityMap"]["crmId"][0]["id"]] = event
    return found


def test_application_properties_arrive_with_their_amqp_types(local_hub: LocalHub) -> None:
    extra = {"application_properties": APPLICATION_PROPERTIES, "sender_process": False}
    state_out = run(local_hub, extra, [FULL, SPARSE, NON_SCALAR])
    assert json.loads(state_out) == {"bookmarks": {"profiles": {"n": 3}}}
    events = by_profile(read_all(local_hub.connection_string(), "profiles", timeout=30))
    assert sorted(events) == ["cust-00246", "cust-00247"]  # the list-valued tier: skipped

    full = events["cust-00246"]
    assert full.raw_properties == {
        b"stream": b"profiles",
        b"segment_ids": SEG.encode(),
        b"tier": b"gold",
        b"visits": 2**31,
        b"score": 4.0,
        b"opted_in": True,
        b"updated_at": 1_711_785_600_250,
        b"country": b"GH",
        b"source": b"crm",
        b"epoch_ms": 1_711_744_369_123,
        b"long_max": 2**63 - 1,
        b"int_max": 2**31 - 1,
        b"route": b"profiles/GH",
    }
    assert isinstance(full.raw_properties[b"score"], float)
    stored = {
        json.loads(e.body)["identityMap"]["crmId"][0]["id"]: e for e in local_hub.events("profiles")
    }
    assert application_properties(stored["cust-00246"].raw) == {
        "stream": ("string", "profiles"),
        "segment_ids": ("string", SEG),
        "tier": ("string", "gold"),
        "visits": ("long", 2**31),
        "score": ("double", 4.0),
        "opted_in": ("boolean", True),
        "updated_at": ("timestamp", 1_711_785_600_250),
        "country": ("string", "GH"),
        "source": ("string", "crm"),
        "epoch_ms": ("long", 1_711_744_369_123),
        "long_max": ("long", 2**63 - 1),
        "int_max": ("long", 2**31 - 1),
        "route": ("string", "profiles/GH"),
    }
    # Null and missing fields leave their properties out; constants are always there.
    assert application_properties(stored["cust-00247"].raw) == {
        "stream": ("string", "profiles"),
        "segment_ids": ("string", SEG),
        "source": ("string", "crm"),
        "epoch_ms": ("long", 1_711_744_369_123),
        "long_max": ("long", 2**63 - 1),
        "int_max": ("long", 2**31 - 1),
    }
    assert full.content_type == "application/json"
    assert full.message_id == message_id_for(full.body)


def test_reserved_names_stop_the_target_before_it_connects() -> None:
    config = {
        "connection_string": "Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=a;SharedAccessKey=b",
        "eventhub_name": "profiles",
        "application_properties": {"cloudEvents_type": {"value": "x"}},
    }
    with pytest.raises(ConfigurationError, match="'cloudEvents_type' is reserved"):
        TargetAzureEventHubs(config=config)


def amqp_message(event: ReadEvent) -> AMQPMessage:
    return AMQPMessage(
        properties={"content-type": event.content_type},
        application_properties=event.properties,
        application_data=event.body,
    )


def test_binary_cloudevents_decode_with_the_cloudevents_sdk(local_hub: LocalHub) -> None:
    # Keyed by a personal identity: the subject is the profile's hashed identity instead.
    extra = {"cloudevents": "binary", "sender_process": False, "partition_key_field": "email"}
    run(local_hub, extra, [FULL])
    (event,) = read_all(local_hub.connection_string(), "profiles", timeout=30)
    cloud = from_binary(amqp_message(event), JSONFormat())
    assert cloud.get_id() == event.message_id == message_id_for(event.body)
    assert cloud.get_source() == "/target-azure-eventhubs/streams/profiles"
    assert cloud.get_type() == "com.github.target-azure-eventhubs.segment-membership"
    assert cloud.get_subject() == "email_lc_sha256:" + EMAIL_HASH
    assert cloud.get_time() == datetime(2024, 3, 29, 20, 32, 49, tzinfo=UTC)
    assert cloud.get_datacontenttype() == "application/json"
    assert cloud.get_data()["segmentMembership"]["ups"][SEG]["status"] == "realized"
    # time is an AMQP timestamp, not milliseconds as a long (what `to_binary` would write)
    stored = application_properties(local_hub.events("profiles")[0].raw)
    assert stored["cloudEvents_time"] == ("timestamp", 1_711_744_369_000)
    assert stored["cloudEvents_specversion"] == ("string", "1.0")


def test_structured_cloudevents_decode_with_the_cloudevents_sdk(local_hub: LocalHub) -> None:
    extra = {  # through the sender process: its content type and message id cross over
        "cloudevents": "structured",
        "cloudevents_source": "urn:crm:{stream}",
        "cloudevents_type": "com.example.{stream}.membership",
    }
    run(local_hub, extra, [FULL, SPARSE])
    events = by_profile(read_all(local_hub.connection_string(), "profiles", timeout=30))
    event = events["cust-00246"]
    assert event.content_type == "application/cloudevents+json"
    cloud = from_structured(amqp_message(event), JSONFormat())
    data = json.dumps(cloud.get_data(), separators=(",", ":")).encode()
    assert cloud.get_id() == event.message_id == message_id_for(data)
    assert cloud.get_source() == "urn:crm:profiles"
    assert cloud.get_type() == "com.example.profiles.membership"
    assert cloud.get_subject() == "cust-00246"  # the stream's key property
    assert cloud.get_time() == datetime(2024, 3, 29, 20, 32, 49, tzinfo=UTC)
    assert cloud.get_datacontenttype() == "application/json"
    assert event.properties == {"stream": "profiles", "segment_ids": SEG}
    # No qualification time: no `time` (the cloudevents SDK then fills in its own now).
    assert "time" not in json.loads(events["cust-00247"].body)
