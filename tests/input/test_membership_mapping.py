"""Input mapping is checked against the data: a stream whose first record has none of the
membership fields stops the run with one line naming the settings, the fields they expect
and the fields the record has (after the events and STATE of earlier records); a record in
which no membership field has a value is an invalid record under `on_invalid_record`,
never an event that names no segment; `allow_events_without_memberships` sends profile
updates. The runs use the default settings (grouped by profile, sender process) against
the local hub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eventhubs_localhub import LocalHub

from target_azure_eventhubs.events import ConversionSettings, convert_record
from target_azure_eventhubs.events.mapping import first_record_problem
from tests.input.support import HUB, SCHEMA, STREAM, config, row, run, segments_in_hub

STATE_1 = '{"type": "STATE", "value": {"bookmark": 1}}'
PEOPLE_SCHEMA = {
    "type": "SCHEMA",
    "stream": "people",
    "schema": {
        "type": "object",
        "properties": {
            "profile_id": {"type": "string"},
            "email": {"type": "string"},
            "seg": {"type": "string"},
            "status": {"type": "string"},
        },
    },
    "key_properties": ["profile_id"],
}


def person(profile: str, **fields: Any) -> dict[str, Any]:
    record = {"profile_id": profile, "email": f"{profile}@example.com", **fields}
    return {"type": "RECORD", "stream": "people", "record": record}


def member(profile: str, **fields: Any) -> dict[str, Any]:
    record = {"profile_id": profile, "email": f"{profile}@example.com", **fields}
    return {"type": "RECORD", "stream": STREAM, "record": record}


def bodies(hub: LocalHub) -> list[dict[str, Any]]:
    return [json.loads(event.body) for event in hub.events(HUB)]


# Slow tier: each case runs the target command ------------------------------------------

FIRST_RECORD_CASES = {
    "field-named-otherwise": (
        {},
        person("p2", seg="s2", status="realized"),
        "input line 5 (stream 'people'): the stream's first record has no segment "
        "memberships where the settings look for them (segment_id_field expects "
        "'segment_id', segments_field expects 'segments', or a 'segmentMembership' "
        "object); the record's fields are: email, profile_id, seg, status. Set "
        "segment_id_field or segments_field to the field holding the memberships, or "
        "allow_events_without_memberships to true to send profiles without memberships",
    ),
    "misspelt-setting": (
        {"segment_id_field": "segmnet_id"},
        person("p2", segment_id="s2", status="realized"),
        "input line 5 (stream 'people'): the stream's first record has no segment "
        "memberships where the settings look for them (segment_id_field expects "
        "'segmnet_id', segments_field expects 'segments', or a 'segmentMembership' "
        "object); the record's fields are: email, profile_id, segment_id, status.",
    ),
    "status-field-missing": (
        {"segment_id_field": "seg"},
        person("p2", seg="s2", state="realized"),
        "input line 5 (stream 'people'): the stream's first record has a segment id in "
        "'seg' (segment_id_field) but no 'status' (segment_status_field expects it); the "
        "record's fields are: email, profile_id, seg, state. Set segment_status_field to "
        "the field holding each membership's status",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(FIRST_RECORD_CASES))
def test_a_stream_without_its_membership_fields_stops_at_its_first_record(
    tmp_path: Path, hub: LocalHub, case: str
) -> None:
    extra, first, expected = FIRST_RECORD_CASES[case]
    # The first stream maps with any segment_id_field: its schema declares the field used.
    schema = json.loads(json.dumps(SCHEMA))
    schema["schema"]["properties"][extra.get("segment_id_field", "segment_id")] = {}
    earlier = member("p1", status="realized", **{extra.get("segment_id_field", "segment_id"): "s1"})
    # The second stream's schema declares exactly the fields its first record has.
    people = {**PEOPLE_SCHEMA, "schema": {"properties": {k: {} for k in first["record"]}}}
    done = run(tmp_path, config(hub, **extra), [schema, earlier, STATE_1, people, first])
    assert done.assert_one_clear_error().startswith(expected)
    assert segments_in_hub(hub) == {"s1"}
    assert done.states == [b'{"bookmark": 1}']


INPUT_WITH_A_RECORD_WITHOUT_MEMBERSHIPS = [
    SCHEMA,
    row("p1", "s1"),
    STATE_1,
    member("p2"),  # the tap leaves null fields out
    row("p3", "s3"),
    '{"type": "STATE", "value": {"bookmark": 3}}',
]
NO_MEMBERSHIP = (
    "no segment membership: 'segment_id' (segment_id_field), 'segments' (segments_field) "
    "and 'segmentMembership' are all missing or null"
)


@pytest.mark.slow
def test_with_fail_a_record_without_memberships_stops_the_run(
    tmp_path: Path, hub: LocalHub
) -> None:
    done = run(tmp_path, config(hub), INPUT_WITH_A_RECORD_WITHOUT_MEMBERSHIPS)
    error = done.assert_one_clear_error()
    assert error.startswith(
        f"Invalid record profile_id=p2 in stream 'members' at input line 4: {NO_MEMBERSHIP}"
    )
    assert segments_in_hub(hub) == {"s1"}
    assert done.states == [b'{"bookmark": 1}']


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["skip", "dead_letter"])
def test_a_record_without_memberships_is_passed_over_never_sent_empty(
    tmp_path: Path, hub: LocalHub, policy: str
) -> None:
    dead = tmp_path / "dead.jsonl"
    settings = config(hub, on_invalid_record=policy, dead_letter_path=str(dead))
    done = run(tmp_path, settings, INPUT_WITH_A_RECORD_WITHOUT_MEMBERSHIPS)
    assert done.code == 0, done.stderr
    events = bodies(hub)
    assert sorted(ids for body in events for ids in body["segmentMembership"]["ups"]) == [
        "s1",
        "s3",
    ]
    assert all(body["segmentMembership"]["ups"] for body in events)
    assert done.states[-1] == b'{"bookmark": 3}'
    assert NO_MEMBERSHIP in done.stderr
    if policy == "skip":
        assert not dead.exists()
        return
    (entry,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert entry["line"] == 4 and entry["key"] == "profile_id=p2"
    assert entry["reason"].startswith(NO_MEMBERSHIP)
    assert entry["record"] == INPUT_WITH_A_RECORD_WITHOUT_MEMBERSHIPS[3]["record"]  # type: ignore[index]


@pytest.mark.slow
def test_allow_events_without_memberships_sends_profile_updates(
    tmp_path: Path, hub: LocalHub
) -> None:
    settings = config(hub, allow_events_without_memberships=True)
    messages = [PEOPLE_SCHEMA, person("p1", seg="x"), person("p2"), STATE_1]
    done = run(tmp_path, settings, messages)
    assert done.code == 0, done.stderr
    events = bodies(hub)
    assert len(events) == 2
    assert all(body["segmentMembership"] == {"ups": {}} for body in events)
    assert all(len(body["identityMap"]["email_lc_sha256"]) == 1 for body in events)
    assert done.states == [b'{"bookmark": 1}']


# Fast tier: the rules, in process --------------------------------------------------------

DEFAULT = ConversionSettings()


def test_the_field_list_is_sorted_and_cut_short() -> None:
    record = {f"field_{i:03d}": i for i in range(45)} | {"x" * 100: 1}
    problem = first_record_problem(record, None, DEFAULT)
    assert problem is not None
    listed = problem.split("the record's fields are: ")[1].split(". Set")[0]
    assert listed.startswith("field_000, field_001, ")
    assert listed.endswith("field_029 and 16 more")


def test_a_field_declared_by_the_schema_makes_a_membership_stream() -> None:
    schema = {"properties": {"profile_id": {}, "segments": {"type": ["array", "null"]}}}
    assert first_record_problem({"profile_id": "p1"}, schema, DEFAULT) is None
    assert first_record_problem({"profile_id": "p1"}, {"properties": {}}, DEFAULT) is not None


def test_any_membership_field_in_the_first_record_will_do() -> None:
    for record in ({"segment_id": None}, {"segments": []}, {"segmentMembership": {}}):
        assert first_record_problem({"email": "a@example.com", **record}, None, DEFAULT) is None


def test_a_segment_namespace_field_missing_from_the_first_record() -> None:
    settings = ConversionSettings(segment_namespace_field="channel")
    record = {"email": "a@example.com", "segment_id": "s", "status": "realized", "chanel": "x"}
    problem = first_record_problem(record, None, settings)
    assert problem == (
        "the stream's first record has no 'channel' (segment_namespace_field expects it); "
        "the record's fields are: chanel, email, segment_id, status. Set "
        "segment_namespace_field to the field naming each row's segment namespace, or "
        "leave it empty"
    )


def test_allowing_events_without_memberships_lets_any_stream_through() -> None:
    allowed = ConversionSettings(allow_events_without_memberships=True)
    assert first_record_problem({"email": "a@example.com"}, None, allowed) is None
    event = convert_record({"email": "a@example.com"}, allowed)
    assert event.memberships == {} and event.identities


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_a_record_without_a_membership_value_is_invalid(empty: Any) -> None:
    from target_azure_eventhubs.events import InvalidRecordError

    record = {"email": "a@example.com", "segment_id": None, "segments": empty}
    with pytest.raises(InvalidRecordError, match=r"^no segment membership: 'segment_id'"):
        convert_record(record, DEFAULT)


@pytest.mark.parametrize(
    "stated", [{"segments": []}, {"segments": {}}, {"segmentMembership": {"ups": {}}}]
)
def test_an_empty_list_of_memberships_says_in_no_segment(stated: dict[str, Any]) -> None:
    event = convert_record({"email": "a@example.com", **stated}, DEFAULT)
    assert event.memberships == {}


def test_with_change_tracking_a_record_without_memberships_is_in_no_segment() -> None:
    # In a complete snapshot such a profile's delivered memberships exit (changes.diff).
    tracked = ConversionSettings(require_status=False)
    assert convert_record({"email": "a@example.com", "segment_id": None}, tracked).memberships == {}
