"""Scenario 9: an event larger than the hub accepts (each on_invalid_record mode), a
malformed line, a RECORD before its SCHEMA and a record failing the schema: clear errors
naming stream, key and line, and nothing accepted before the bad record is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.checks import (
    STREAM,
    assert_clear_error,
    check_delivery,
    local_hub,
    make_workload,
    run_target,
    target_config,
)

BAD_INDEX = 40  # the 41st record


def _assert_everything_before_arrived(events: list, bad_line: int, record_lines: list[int]) -> None:
    arrived = {json.loads(e.body)["attributes"]["line"] for e in events}
    lost = [line for line in record_lines if line < bad_line and line not in arrived]
    assert not lost, f"records before the bad line {bad_line} were lost: {lost[:10]}"


@pytest.mark.parametrize("mode", ["fail", "skip", "dead_letter"])
def test_event_larger_than_the_hub_accepts(tmp_path: Path, mode: str) -> None:
    workload = make_workload(100, state_every=10, note_size={BAD_INDEX: 6000})
    bad_line = workload.record_lines[BAD_INDEX]
    dead = tmp_path / "dead.jsonl"
    with local_hub(max_message_size=4096) as hub:
        config = target_config(
            hub.connection_string(), on_invalid_record=mode, dead_letter_path=str(dead)
        )
        result = run_target(tmp_path, config, workload.messages)
        where = f"stream '{STREAM}' at input line {bad_line}"
        assert where in result.stderr, result.stderr[-2000:]
        assert f"profile_id=p{bad_line}" in result.stderr
        assert "4096 bytes" in result.stderr
        if mode == "fail":
            assert_clear_error(result)
        outcome = check_delivery(
            f"9 event > max message size ({mode})",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=mode != "fail",
            invalid_lines={bad_line},
            rerun_config={**config, "on_invalid_record": "skip"},
            files=[dead],
        )
    if mode == "fail":
        # Any gap is filled by re-running from the last STATE with on_invalid_record=skip.
        assert outcome.exit_codes[0] == 1
    else:
        assert "1 invalid" in result.stderr
        _assert_everything_before_arrived(outcome.events, bad_line, workload.record_lines)
    if mode == "dead_letter":
        letters = [json.loads(line) for line in dead.read_text().splitlines()]
        assert [(x["stream"], x["line"]) for x in letters] == [(STREAM, bad_line)]


@pytest.mark.parametrize("kind", ["malformed JSON", "fails the schema"])
def test_bad_line_in_the_middle_fails_clearly_and_keeps_what_came_before(
    tmp_path: Path, kind: str
) -> None:
    workload = make_workload(100, state_every=10)
    bad_line = workload.record_lines[BAD_INDEX]
    index = bad_line - 1
    if kind == "malformed JSON":
        workload.messages[index] = json.dumps(workload.messages[index])[:45]  # truncated
        expected = f"input line {bad_line}: not valid JSON"
    else:
        bad = json.loads(json.dumps(workload.messages[index]))
        bad["record"]["line"] = "not a number"
        workload.messages[index] = bad
        expected = f"stream '{STREAM}' at input line {bad_line}"
    with local_hub() as hub:
        config = target_config(hub.connection_string())
        result = run_target(tmp_path, config, workload.messages)
        assert_clear_error(result)
        assert expected in result.stderr, result.stderr[-2000:]
        if kind == "fails the schema":
            assert f"profile_id=p{bad_line}" in result.stderr
            assert "line" in result.stderr and "integer" in result.stderr
        outcome = check_delivery(
            f"9 {kind} at line {bad_line}",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=False,
            invalid_lines={bad_line},
            rerun_config={**config, "on_invalid_record": "skip"},
        )
    # The records read before the bad line were still delivered, with their STATE.
    assert outcome.covered == bad_line - 2  # the last STATE before it (line bad_line - 1)
    _assert_everything_before_arrived(outcome.events, bad_line, workload.record_lines)


def _record_before_schema(tmp_path: Path, hub_conn: str):  # -> (workload, result)
    """Line 6 is a RECORD of a stream with no SCHEMA yet. The returned workload is the
    corrected input (the tap fixed), which the re-run reads from the last STATE on."""
    workload = make_workload(30, state_every=10)
    broken = list(workload.messages)
    broken[5] = {"type": "RECORD", "stream": "late_stream", "record": {"profile_id": "x"}}
    return workload, run_target(tmp_path, target_config(hub_conn), broken)


def test_record_before_its_schema_stops_the_run_without_losing_anything(tmp_path: Path) -> None:
    with local_hub() as hub:
        workload, result = _record_before_schema(tmp_path, hub.connection_string())
        assert result.returncode != 0
        assert "late_stream" in result.stderr
        assert "before" in result.stderr.lower()
        check_delivery(
            "9 RECORD before SCHEMA",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=False,
            allow_traceback=True,
            rerun_config=target_config(hub.connection_string()),
        )


def test_record_before_its_schema_is_one_clear_error_with_the_line(tmp_path: Path) -> None:
    with local_hub() as hub:
        _, result = _record_before_schema(tmp_path, hub.connection_string())
    assert_clear_error(result)  # no Traceback
    assert "late_stream" in result.stderr
    assert "line 6" in result.stderr, result.stderr[-2000:]
