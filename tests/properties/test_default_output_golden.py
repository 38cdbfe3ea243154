"""Without the new settings, the events are byte for byte what the target sent before
`application_properties` and `cloudevents` existed: body, properties, message id and
content type of a fixed input are pinned (generated at 4c1c710), and the stored AMQP
message holds exactly the target's own encoding of them."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json

from eventhubs_localhub import LocalHub

from target_azure_eventhubs.delivery.encoding import encode_message
from target_azure_eventhubs.target import TargetAzureEventHubs
from tests.integration.target_runner import record, schema, singer_lines, state

S1, S2 = "eb8c61a7-fd78-4c11-bda5-60c96dce283c", "15a228c5-1d0c-4343-958f-11d329619b26"
PROPERTIES = {
    "profile_id": {"type": "string"},
    "email": {"type": ["string", "null"]},
    "first_name": {"type": ["string", "null"]},
    "birth_date": {"type": ["string", "null"]},
    "segment_id": {"type": ["string", "null"]},
    "status": {"type": ["string", "null"]},
    "last_qualification_time": {"type": ["string", "null"]},
    "segments": {},
}
ROWS = [
    {
        "profile_id": "cust-00246",
        "email": "  Kofi.Berg@shop.example ",
        "first_name": "Kofi",
        "birth_date": "1973-07-03",
        "segments": [
            {
                "id": S1,
                "name": "Mobile app users",
                "status": "qualified",
                "lastQualificationTime": "2024-03-29T22:32:49+02:00",
            }
        ],
    },
    {
        "profile_id": "cust-00007",
        "email": "ana@example.org",
        "segment_id": S2,
        "status": "exited",
        "last_qualification_time": "2024-04-19T08:32:28Z",
    },
    {"profile_id": "cust-00007", "segment_id": S1, "status": "existing"},
]
CONFIG = {
    "eventhub_name": "profiles",
    "identity_fields": {"email": "email_lc_sha256", "profile_id": "crmId"},
    "max_latency_ms": 100,
    "sender_process": False,
}
# profile id -> (sha256 of the body, application properties, message id)
GOLDEN = {
    "cust-00246": (
        "236b5ce88e4d238a69ba95f104d9d09006cb467a688dabe7201809e8cee878a8",
        {"stream": "profiles", "segment_ids": S1},
        "236b5ce88e4d238a69ba95f104d9d090",
    ),
    "cust-00007": (
        "99e92579d24a07839231cc1d7554cde2e29340689fb83e1fb98294047f6468ea",
        {"stream": "profiles", "segment_ids": f"{S2},{S1}"},
        "99e92579d24a07839231cc1d7554cde2",
    ),
}


def test_default_output_is_unchanged(local_hub: LocalHub) -> None:
    lines = singer_lines(
        [
            schema("profiles", PROPERTIES, ["profile_id"]),
            *(record("profiles", row) for row in ROWS),
            state({"bookmarks": {"profiles": {"n": 3}}}),
        ]
    )
    target = TargetAzureEventHubs(
        config={**CONFIG, "connection_string": local_hub.connection_string()}
    )
    with contextlib.redirect_stdout(io.StringIO()):
        target.listen(io.StringIO(lines))
    found = {}
    for event in local_hub.events("profiles"):
        key = json.loads(event.body)["identityMap"]["crmId"][0]["id"]
        found[key] = (hashlib.sha256(event.body).hexdigest(), event.properties, event.message_id)
        assert event.content_type == "application/json"
        assert encode_message(event.body, event.properties) in event.raw
    assert found == GOLDEN
