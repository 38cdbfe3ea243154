"""Every broken input line ends the run with one clear line (the line number, the stream
where known, the reason) and exit code 1; the records read before it are sent and their
STATE is written first. Run at the default settings against the local hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.input.support import SCHEMA, config, row, run, segments_in_hub

pytestmark = pytest.mark.slow

GOOD = [SCHEMA, row("p1", "s1"), '{"type": "STATE", "value": {"bookmark": 1}}']
CASES = {
    "non-utf8": (
        b'{"type": "RECORD", "stream": "members", "record": {"profile_id": "p\xff2"}}',
        "input line 4: not valid UTF-8 (byte 0xff at column 68)",
    ),
    "non-utf8-not-json": (b"\xff\xfe", "input line 4: not valid UTF-8 (byte 0xff at column 1)"),
    "invalid-json": (
        b'{"type": "RECORD", "stream": "members", "record": {',
        "input line 4: not valid JSON (Input data was truncated)",
    ),
    "record-before-schema": (
        b'{"type": "RECORD", "stream": "other", "record": {}}',
        "input line 4: a RECORD for stream 'other' arrived before the stream's SCHEMA message",
    ),
    "unknown-type": (
        b'{"type": "RECROD", "stream": "members"}',
        "input line 4 (stream 'members'): unknown Singer message type 'RECROD' (expected "
        "SCHEMA, RECORD, STATE, ACTIVATE_VERSION or BATCH)",
    ),
    "missing-stream": (
        b'{"type": "RECORD", "record": {"profile_id": "p2"}}',
        "input line 4: the RECORD message has no stream",
    ),
    "schema-not-an-object": (
        b'{"type": "SCHEMA", "stream": "other", "schema": "x"}',
        "input line 4 (stream 'other'): the SCHEMA message's schema is str, not a JSON object",
    ),
    "invalid-schema": (
        b'{"type": "SCHEMA", "stream": "other", "schema": '
        b'{"type": "object", "properties": {"a": {"type": "bogus"}}}}',
        "input line 4 (stream 'other'): the stream's schema is not a valid JSON schema",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_line_is_one_clear_error_after_earlier_records_are_sent(
    tmp_path: Path, hub: LocalHub, case: str
) -> None:
    bad, expected = CASES[case]
    data = b"".join((m if isinstance(m, str) else json.dumps(m)).encode() + b"\n" for m in GOOD)
    done = run(tmp_path, config(hub), data + bad + b"\n")
    assert done.assert_one_clear_error().startswith(expected)
    assert segments_in_hub(hub) == {"s1"}
    assert done.states == [b'{"bookmark": 1}']


def test_with_skip_a_broken_line_is_passed_over(tmp_path: Path, hub: LocalHub) -> None:
    data = [*GOOD, "{not json", row("p2", "s2"), '{"type": "STATE", "value": {"bookmark": 2}}']
    done = run(tmp_path, config(hub, on_invalid_record="skip"), data)
    assert done.code == 0, done.stderr
    assert segments_in_hub(hub) == {"s1", "s2"}
    assert done.states[-1] == b'{"bookmark": 2}'
