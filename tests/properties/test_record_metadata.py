"""`add_record_metadata`: singer-sdk's `_sdc_*` values as typed application properties,
never in the body, read back from the local hub (types from the stored AMQP message)."""

from __future__ import annotations

import json
import time

from eventhubs_localhub import LocalHub

from target_azure_eventhubs.events.metadata import SDC_PROPERTIES
from tests.integration.target_runner import schema, state
from tests.properties.amqp_types import application_properties
from tests.properties.inprocess import read_bodies, run

SEG = "7841ba61-23c1-4bb3-a495-00d695fe1e93"
SEG2 = "b3f0c7f2-0000-4000-8000-000000000002"
PROPERTIES = {
    "profile_id": {"type": "string"},
    "segment_id": {"type": "string"},
    "status": {"type": "string"},
}


def message(data: dict, extracted: str | None, version: int | None = None) -> dict:
    out = {"type": "RECORD", "stream": "profiles", "record": data}
    if extracted:
        out["time_extracted"] = extracted
    if version is not None:
        out["version"] = version
    return out


def test_sdc_metadata_arrives_as_typed_properties_of_the_latest_row(local_hub: LocalHub) -> None:
    started = time.time_ns() // 1_000_000
    run(
        local_hub,
        {"identity_fields": {"profile_id": "crmId"}, "add_record_metadata": True},
        [
            schema("profiles", PROPERTIES, ["profile_id"]),
            message(
                {"profile_id": "c1", "segment_id": SEG, "status": "realized"},
                "2024-03-29T20:00:00Z",
                3,
            ),
            message(
                {
                    "profile_id": "c2",
                    "segment_id": SEG,
                    "status": "exited",
                    "_sdc_deleted_at": "2024-03-30T00:00:00.5Z",
                },
                None,
            ),
            message(
                {"profile_id": "c1", "segment_id": SEG2, "status": "realized"},
                "2024-03-29T21:00:00.250Z",
                4,
            ),
            state({"n": 3}),
        ],
    )
    finished = time.time_ns() // 1_000_000
    by_id = {b["identityMap"]["crmId"][0]["id"]: (e, b) for e, b in read_bodies(local_hub, 2)}
    for _, body in by_id.values():  # never in the body
        assert not [key for key in json.dumps(body).split('"') if key.startswith("_sdc_")]
    stored = {
        json.loads(e.body)["identityMap"]["crmId"][0]["id"]: application_properties(e.raw)
        for e in local_hub.events("profiles")
    }
    grouped, deleted = stored["c1"], stored["c2"]
    assert list(grouped) == [
        "stream",
        "segment_ids",
        *(n for n in SDC_PROPERTIES if n != "_sdc_deleted_at"),
    ]
    # The grouped event carries its latest row's metadata.
    assert grouped["_sdc_extracted_at"] == ("timestamp", 1_711_746_000_250)
    assert grouped["_sdc_table_version"] == ("long", 4)
    assert list(deleted) == [
        "stream",
        "segment_ids",
        "_sdc_received_at",
        "_sdc_batched_at",
        "_sdc_deleted_at",
        "_sdc_sequence",
        "_sdc_sync_started_at",
    ]
    assert deleted["_sdc_deleted_at"] == ("timestamp", 1_711_756_800_500)
    for props in (grouped, deleted):
        received = props["_sdc_received_at"]
        assert received[0] == "timestamp" and started <= received[1] <= finished
        assert props["_sdc_sequence"] == ("long", received[1])
        assert props["_sdc_batched_at"][0] == "timestamp"
        assert received[1] <= props["_sdc_batched_at"][1] <= finished
        assert props["_sdc_sync_started_at"][0] == "long"
        assert props["_sdc_sync_started_at"][1] <= received[1]
    # The official consumer's view: the timestamp as epoch milliseconds, the long an int.
    event = by_id["c1"][0]
    assert event.properties["_sdc_table_version"] == 4
    assert event.properties["_sdc_extracted_at"] == 1_711_746_000_250
