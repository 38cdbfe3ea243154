"""singer-sdk's standard target tests, each checked against what really arrived in the hub.

Every standard test is subclassed with a `validate()` that reads the local hub back with the
official consumer: each input record that has an identity must be one event carrying the
record's fields; records that cannot become events must be in the dead-letter file.

The standard test streams are generic (users, locations, metrics): they carry no segment
memberships, so the suite maps their id fields to an identity namespace and sends all other
fields as attributes (`include_unmapped_attributes`); one event per record
(`group_by_profile: false`) keeps the expected events exact. By default the target refuses
a stream whose first record has no membership field (a misspelt `segment_id_field` would
otherwise send events naming no segment), so the suite opts in to profile updates without
memberships (`allow_events_without_memberships: true`): what it checks is the Singer side
(input, STATE, schemas, field values), which that setting leaves as it is.

All 16 tests of `get_target_test_class` run; none is excluded. Two tests of
`singer_sdk.testing.target_tests` that the SDK leaves out of its standard suite run too:
`record_missing_required_property`, and `multiple_state_messages` in an adapted form
(`TargetRelaysStateAfterAcknowledgement`): the SDK's version expects STATE exactly at the
points where its reference target drains batches, while this target writes a STATE as soon
as every event before it is acknowledged, so which intermediate checkpoints appear depends
on timing. The adapted test checks that every STATE written is an input STATE, in input
order, and that the last one is the input's last.
"""

from __future__ import annotations

import atexit
import json
from decimal import Decimal
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import pytest
from eventhubs_localhub import LocalHub
from singer_sdk.testing import get_target_test_class
from singer_sdk.testing.suites import TestSuite
from singer_sdk.testing.target_tests import (
    TargetArrayData,
    TargetCamelcaseComplexSchema,
    TargetCamelcaseTest,
    TargetCliPrintsTest,
    TargetDuplicateRecords,
    TargetEncodedStringData,
    TargetInvalidSchemaTest,
    TargetMultipleStateMessages,
    TargetNoPrimaryKeys,
    TargetOptionalAttributes,
    TargetPrimaryKeyUpdates,
    TargetRecordBeforeSchemaTest,
    TargetRecordMissingKeyProperty,
    TargetRecordMissingOptionalFields,
    TargetRecordMissingRequiredProperty,
    TargetSchemaNoProperties,
    TargetSchemaUpdates,
    TargetSpecialCharsInAttributes,
)

from target_azure_eventhubs.target import TargetAzureEventHubs
from target_azure_eventhubs.testing import read_all

ID_FIELDS = ("id", "Id", "_id")
HUB = LocalHub(hubs={"standard": 4}).start()
atexit.register(HUB.stop)
DEAD_LETTERS = Path(mkdtemp(prefix="standard-tests-")) / "dead_letters.jsonl"
CONFIG = {
    "connection_string": HUB.connection_string(),
    "eventhub_name": "standard",
    "identity_fields": {name: "crmId" for name in ID_FIELDS},
    "attribute_fields": {},
    "include_unmapped_attributes": True,
    "allow_events_without_memberships": True,  # see the module docstring
    "group_by_profile": False,
    "on_invalid_record": "dead_letter",
    "dead_letter_path": str(DEAD_LETTERS),
    "max_latency_ms": 100,
}


def _messages(path: Any) -> list[dict[str, Any]]:
    with path.open(encoding="utf8") as handle:
        return [json.loads(line, parse_float=Decimal) for line in handle if line.strip()]


def _json_value(value: Any) -> Any:
    """A record value as it reads back from JSON (Decimal -> int or float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _expected(record: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    identity = next((record[f] for f in ID_FIELDS if record.get(f) not in (None, "")), None)
    if identity is None:
        return None
    attributes = {
        k: _json_value(v) for k, v in record.items() if k not in ID_FIELDS and v is not None
    }
    return str(identity), attributes


class HubValidated:
    """Mixin: remember where the hub stood, then check every record of the file arrived."""

    singer_filepath: Any

    def setup(self) -> None:
        self.start = {p: HUB.event_count("standard", p) for p in ("0", "1", "2", "3")}
        self.dead_before = _count_lines(DEAD_LETTERS)

    def validate(self) -> None:
        arrived = [
            e
            for e in read_all(HUB.connection_string("standard"))
            if e.sequence_number >= self.start[e.partition_id]
        ]
        got = sorted(
            (
                json.loads(e.body)["identityMap"]["crmId"][0]["id"],
                json.dumps(json.loads(e.body).get("attributes", {}), sort_keys=True),
                e.properties["stream"],
            )
            for e in arrived
        )
        expected, without_identity = [], 0
        for message in _messages(self.singer_filepath):
            if message["type"] != "RECORD":
                continue
            shaped = _expected(message["record"])
            if shaped is None:
                without_identity += 1
                continue
            expected.append((shaped[0], json.dumps(shaped[1], sort_keys=True), message["stream"]))
        assert got == sorted(expected)
        assert _count_lines(DEAD_LETTERS) - self.dead_before >= without_identity


def _count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _validated(base: type) -> type:
    return type(base.__name__ + "Validated", (HubValidated, base), {})


class TargetRelaysStateAfterAcknowledgement(HubValidated, TargetMultipleStateMessages):
    """Replaces the excluded `multiple_state_messages` (see the module docstring)."""

    def test(self) -> None:
        self.runner.sync_all()
        written = list(self.runner.state_messages)  # already parsed by the runner
        given = [m["value"] for m in _messages(self.singer_filepath) if m["type"] == "STATE"]
        assert written, "no STATE relayed"
        assert written[-1] == given[-1]
        positions = [given.index(state) for state in written]
        assert positions == sorted(positions), "STATE relayed out of input order"


CHECKED = [
    TargetArrayData,
    TargetCamelcaseComplexSchema,
    TargetCamelcaseTest,
    TargetDuplicateRecords,
    TargetEncodedStringData,
    TargetNoPrimaryKeys,
    TargetOptionalAttributes,
    TargetPrimaryKeyUpdates,
    TargetRecordMissingOptionalFields,
    TargetRecordMissingRequiredProperty,
    TargetSchemaNoProperties,
    TargetSchemaUpdates,
    TargetSpecialCharsInAttributes,
]
# These must fail the run; they send nothing worth validating.
EXPECTED_FAILURES = [
    TargetInvalidSchemaTest,
    TargetRecordBeforeSchemaTest,
    TargetRecordMissingKeyProperty,
]

TestTargetAzureEventHubs = get_target_test_class(
    TargetAzureEventHubs,
    config=CONFIG,
    include_target_tests=False,
    custom_suites=[
        TestSuite(
            kind="target",
            tests=[
                TargetCliPrintsTest,
                *EXPECTED_FAILURES,
                *(_validated(test) for test in CHECKED),
                TargetRelaysStateAfterAcknowledgement,
            ],
        )
    ],
)


def test_every_standard_test_is_run() -> None:
    from singer_sdk.testing.suites import target_tests

    run = {t.name for t in (TargetCliPrintsTest, *EXPECTED_FAILURES, *CHECKED)}
    assert {t.name for t in target_tests.tests} <= run


@pytest.fixture(autouse=True, scope="module")
def _stop_hub() -> Any:
    yield
    HUB.stop()
