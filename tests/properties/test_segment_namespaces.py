"""Several segment namespaces in one event (per row, `segment_namespace_field`) and a
stream's own namespace (`stream_segment_namespaces`), read back from the local hub."""

from __future__ import annotations

from eventhubs_localhub import LocalHub

from tests.integration.target_runner import record, schema, state
from tests.properties.inprocess import read_bodies, run

UPS = "7841ba61-23c1-4bb3-a495-00d695fe1e93"
CAU = "c0ffee00-0000-4000-8000-00000000cau1"
PROPERTIES = {
    "profile_id": {"type": "string"},
    "segment_id": {"type": "string"},
    "status": {"type": "string"},
    "last_qualification_time": {"type": ["string", "null"]},
    "segment_namespace": {"type": ["string", "null"]},
}


def row(profile: str, seg: str, status: str, namespace: str | None = None) -> dict:
    return {
        "profile_id": profile,
        "segment_id": seg,
        "status": status,
        "last_qualification_time": "2024-03-03T21:24:39Z",
        "segment_namespace": namespace,
    }


def test_rows_of_several_namespaces_merge_into_one_event_and_a_stream_has_its_own(
    local_hub: LocalHub,
) -> None:
    extra = {
        "identity_fields": {"profile_id": "crmId"},
        "segment_namespace_field": "segment_namespace",
        "stream_segment_namespaces": {"audiences": "CustomerAudienceUpload"},
    }
    run(
        local_hub,
        extra,
        [
            schema("profiles", PROPERTIES, ["profile_id"]),
            schema("audiences", PROPERTIES, ["profile_id"]),
            record("profiles", row("cust-1", UPS, "realized")),
            record("profiles", row("cust-1", CAU, "realized", "CustomerAudienceUpload")),
            record("audiences", row("cust-2", CAU, "exited")),
            record("audiences", row("cust-3", UPS, "existing", "ups")),
            state({"n": 4}),
        ],
    )
    events = {
        body["identityMap"]["crmId"][0]["id"]: (e, body) for e, body in read_bodies(local_hub, 3)
    }
    when = "2024-03-03T21:24:39Z"
    event, body = events["cust-1"]
    assert body["segmentMembership"] == {
        "ups": {UPS: {"lastQualificationTime": when, "status": "realized"}},
        "CustomerAudienceUpload": {CAU: {"lastQualificationTime": when, "status": "realized"}},
    }
    assert event.properties == {"stream": "profiles", "segment_ids": f"{UPS},{CAU}"}
    assert events["cust-2"][1]["segmentMembership"] == {
        "CustomerAudienceUpload": {CAU: {"lastQualificationTime": when, "status": "exited"}}
    }
    assert events["cust-3"][1]["segmentMembership"] == {
        "ups": {UPS: {"lastQualificationTime": when, "status": "existing"}}
    }
    assert events["cust-2"][0].properties == {"stream": "audiences", "segment_ids": CAU}
