"""Identity namespaces marked for hashing and identities given as a list of
{namespace, id} items, as the official consumer reads them back from the local hub."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from eventhubs_localhub import LocalHub

from tests.integration.target_runner import record, schema, state
from tests.properties.inprocess import read_bodies, run

SEG = "eb8c61a7-fd78-4c11-bda5-60c96dce283c"
PROPERTIES = {
    "profile_id": {"type": "string"},
    "loyalty_email": {"type": ["string", "null"]},
    "identities": {"type": ["array", "null"], "items": {}},
    "segment_id": {"type": "string"},
    "status": {"type": "string"},
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_marked_namespaces_are_hashed_and_listed_identities_arrive(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    extra = {
        "identity_fields": {"profile_id": "crmId", "loyalty_email": "LoyaltyEmail"},
        "hashed_identity_namespaces": {"LoyaltyEmail": "email", "Phone": "phone", "Email": "email"},
        "identity_list_field": "identities",
        "on_invalid_record": "dead_letter",
        "dead_letter_path": str(dead),
    }
    good = {
        "profile_id": "cust-1",
        "loyalty_email": " Ama.Owusu@Shop.Example ",
        "identities": [
            {"namespace": "Email", "id": "AMA@shop.example", "primary": True},
            {"namespace": {"code": "ECID"}, "id": "1457500653"},
            {"namespace": "Phone", "id": "+233 (20) 555-0101"},
        ],
        "segment_id": SEG,
        "status": "realized",
    }
    bad = {**good, "profile_id": "cust-2", "identities": [{"namespace": "ECID"}]}
    states = run(
        local_hub,
        extra,
        [
            schema("profiles", PROPERTIES, ["profile_id"]),
            record("profiles", good),
            record("profiles", bad),
            state({"n": 2}),
        ],
    )
    assert [json.loads(s) for s in states] == [{"n": 2}]
    ((event, body),) = read_bodies(local_hub, 1)
    assert body == {
        "segmentMembership": {"ups": {SEG: {"status": "realized"}}},
        "identityMap": {
            "Email": [{"id": sha("ama@shop.example")}],
            "ECID": [{"id": "1457500653"}],
            "Phone": [{"id": sha("+233205550101")}],
            "crmId": [{"id": "cust-1"}],
            "LoyaltyEmail": [{"id": sha("ama.owusu@shop.example")}],
        },
    }
    assert event.properties == {"stream": "profiles", "segment_ids": SEG}
    (refused,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert refused["stream"] == "profiles"
    assert (
        refused["reason"] == "identity list field 'identities' item 0 (namespace 'ECID') has no id"
    )
