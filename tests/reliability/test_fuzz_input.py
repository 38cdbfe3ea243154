"""Scenario 12: bad input fuzzing, in-process (a subprocess per example would be too slow).

Random bytes, truncated lines, deeply nested JSON, huge strings and wrong types: every run
ends (no hang) with exit code 0 or 1, never an exception escaping ``run()``; a failure is
one ERROR line naming the input line; with ``on_invalid_record=skip`` the bad lines are
counted as invalid records.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from eventhubs_localhub import LocalHub
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from target_azure_eventhubs.target import TargetAzureEventHubs
from tests.reliability.checks import STREAM, assert_no_secrets, local_hub, schema_message

RUN_TIMEOUT = 30


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    with local_hub(hubs={STREAM: 1}) as running:  # one partition: one connection per run
        yield running


def record_line(n: int, **overrides: object) -> bytes:
    record = {
        "profile_id": f"p{n}",
        "email": f"p{n}@example.com",
        "segment_id": "s",
        "status": "realized",
        "line": n,
    }
    record.update(overrides)
    return json.dumps({"type": "RECORD", "stream": STREAM, "record": record}).encode()


# (line, certainly invalid?) pairs
valid = st.integers(0, 10**6).map(lambda n: (record_line(n), False))
junk = (
    st.binary(min_size=1, max_size=300)
    .filter(lambda b: b"\n" not in b and b.strip())
    .map(lambda b: (b, None))
)
truncated = st.tuples(st.integers(0, 10**6), st.integers(1, 60)).map(
    lambda t: (record_line(t[0])[: t[1]], True)
)


def nested_record(depth: int) -> bytes:
    return record_line(1, nested=None).replace(
        b'"nested": null', b'"nested": ' + b'{"a": ' * depth + b"1" + b"}" * depth
    )


# Depths from 250 up crash the target: see test_deeply_nested_record_is_a_clear_error.
deep_value = st.integers(20, 240).map(lambda d: (nested_record(d), None))
# From ~1000 levels msgspec raises RecursionError: see test_deeply_nested_line_is_invalid.
deep_array = st.integers(50, 900).map(lambda d: (b"[" * d + b"]" * d, True))
huge = st.integers(10_000, 400_000).map(lambda n: (record_line(2, note="x" * n), False))
wrong_types = st.sampled_from(
    [
        (record_line(3, line="three"), True),
        (record_line(4, profile_id=4), True),
        (record_line(5, status=["realized"]), True),
        (json.dumps({"type": "RECORD", "stream": STREAM, "record": []}).encode(), True),
        (json.dumps({"type": 7, "stream": STREAM}).encode(), True),
        (json.dumps({"type": "STATE", "value": []}).encode(), None),
        (b'"just a string"', True),
        (b"null", True),
    ]
)
lines = st.lists(
    st.one_of(valid, junk, truncated, deep_value, deep_array, huge, wrong_types),
    min_size=1,
    max_size=12,
)


def run_in_process(config: dict, data: bytes) -> tuple[dict[str, object], list[logging.LogRecord]]:
    """Run the target on ``data`` in a thread; outcome keys: target, code, exception."""
    handler = _Errors()
    logger = logging.getLogger(TargetAzureEventHubs.name)
    logger.addHandler(handler)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            target = TargetAzureEventHubs(config=config)
            outcome["target"] = target
            outcome["code"] = target.run(io.BytesIO(data))
        except BaseException as exc:  # reported by the caller
            outcome["exception"] = exc

    try:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(RUN_TIMEOUT)
    finally:
        logger.removeHandler(handler)
    assert not worker.is_alive(), f"the target hung on {len(data)} bytes of input"
    return outcome, handler.records


def fuzz_config(hub: LocalHub, policy: str) -> dict[str, object]:
    return {
        "connection_string": hub.connection_string(),
        "eventhub_name": STREAM,
        "include_unmapped_attributes": True,
        "max_latency_ms": 100,
        "send_timeout_seconds": 2,
        "retry_backoff_seconds": 0.1,
        "on_invalid_record": policy,
    }


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=lines, policy=st.sampled_from(["fail", "skip"]))
def test_bad_input_never_hangs_or_crashes(
    hub: LocalHub, body: list[tuple[bytes, bool | None]], policy: str
) -> None:
    data = json.dumps(schema_message()).encode() + b"\n" + b"\n".join(b for b, _ in body) + b"\n"
    outcome, records = run_in_process(fuzz_config(hub, policy), data)
    exc = outcome.get("exception")
    assert exc is None, f"an exception escaped run(): {type(exc).__name__}: {exc}"
    code = outcome["code"]
    messages = [r.getMessage() for r in records]
    assert_no_secrets({"log": "\n".join(messages)})
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert code in (0, 1)
    if code == 1:
        assert errors and all(m.strip() for m in errors)
        assert any("input line" in m for m in errors), errors
    if policy == "skip":
        certainly_invalid = sum(1 for _, bad in body if bad)
        assert code == 0, errors
        target = outcome["target"]
        assert target.invalid.total >= certainly_invalid, messages  # type: ignore[attr-defined]


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_deeply_nested_record_is_a_clear_error(hub: LocalHub, policy: str) -> None:
    data = b"\n".join([json.dumps(schema_message()).encode(), nested_record(300)]) + b"\n"
    outcome, records = run_in_process(fuzz_config(hub, policy), data)
    exc = outcome.get("exception")
    assert exc is None, f"an exception escaped run(): {type(exc).__name__}: {exc}"
    errors = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert any("input line 2" in m for m in errors), errors


@pytest.mark.parametrize("message", [{"type": "STATE"}, {"type": "RECORD", "stream": STREAM}])
def test_message_missing_a_required_key_names_the_line(hub: LocalHub, message: dict) -> None:
    data = b"\n".join([json.dumps(schema_message()).encode(), json.dumps(message).encode()])
    outcome, records = run_in_process(fuzz_config(hub, "fail"), data + b"\n")
    assert outcome.get("exception") is None
    assert outcome["code"] == 1
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert any("input line 2" in m for m in errors), errors
    assert not any("Unexpected error" in m for m in errors), errors


def test_deeply_nested_line_is_an_invalid_line(hub: LocalHub) -> None:
    data = b"\n".join([json.dumps(schema_message()).encode(), b"[" * 2000 + b"]" * 2000])
    outcome, _ = run_in_process(fuzz_config(hub, "skip"), data + b"\n")
    assert outcome.get("exception") is None
    assert outcome["code"] == 0
    assert outcome["target"].invalid.total == 1  # type: ignore[attr-defined]
