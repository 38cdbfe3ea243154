"""Singer BATCH messages: the records of singer-sdk's batch files (written here by
singer-sdk's own batchers) become the events their RECORD lines would have become; a STATE
after a BATCH covers the whole batch; a batch file that cannot be read is one clear error
naming it, after the records before it are sent and their STATE written."""

from __future__ import annotations

import contextlib
import datetime
import gzip
import io
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eventhubs_localhub import LocalHub
from singer_sdk.contrib.batch_encoder_jsonl import JSONLinesBatcher
from singer_sdk.contrib.batch_encoder_parquet import ParquetBatcher
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig, SDKBatchMessage

from target_azure_eventhubs.target import TargetAzureEventHubs
from tests.core.support import Target, state_line, wait_for
from tests.input.support import HUB, STREAM, config, lines, run, segments_in_hub

SCHEMA = {
    "type": "SCHEMA",
    "stream": STREAM,
    "schema": {
        "type": "object",
        "properties": {
            "profile_id": {"type": "string"},
            "email": {"type": "string"},
            "segment_id": {"type": "string"},
            "status": {"type": "string"},
            "last_qualification_time": {"type": "string", "format": "date-time"},
        },
    },
    "key_properties": ["profile_id"],
}
T0 = datetime.datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=datetime.UTC)
RUN_TIMEOUT = 60


def membership(profile: str, segment: str, minute: int = 0) -> dict[str, Any]:
    """A row as a tap holds it: a date-time is a datetime until it is written."""
    return {
        "profile_id": profile,
        "email": f"{profile}@example.com",
        "segment_id": segment,
        "status": "realized",
        "last_qualification_time": T0 + datetime.timedelta(minutes=minute),
    }


def record_line(row: dict[str, Any]) -> dict[str, Any]:
    """The row as a RECORD line carries it (singer-sdk writes a datetime in isoformat)."""
    data = {k: v.isoformat() if isinstance(v, datetime.datetime) else v for k, v in row.items()}
    return {"type": "RECORD", "stream": STREAM, "record": data}


def batch(
    directory: Path, rows: list[dict[str, Any]], fmt: str = "jsonl", compression: str = "gzip"
) -> dict[str, Any]:
    """A BATCH message for `rows`, its files written by singer-sdk's batcher for `fmt`, two
    rows a file (so a manifest lists several). singer-sdk's JSON Lines batcher always
    gzips: the plain files are its files, unzipped."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = {
        "encoding": {"format": fmt, "compression": compression},
        "storage": {"root": directory.as_uri()},
        "batch_size": 2,
    }
    batcher = {"jsonl": JSONLinesBatcher, "parquet": ParquetBatcher}[fmt]
    batches = batcher("tap-test", STREAM, BatchConfig.from_dict(settings)).get_batches(iter(rows))
    manifest = [url for urls in batches for url in urls]
    if fmt == "jsonl" and compression == "none":
        manifest = [_unzipped(url) for url in manifest]
    encoding = BaseBatchFileEncoding(format=fmt, compression=compression)
    return SDKBatchMessage(stream=STREAM, encoding=encoding, manifest=manifest).to_dict()


def _unzipped(url: str) -> str:
    zipped = Path(url.removeprefix("file://"))
    plain = zipped.with_name(zipped.name.removesuffix(".json.gz") + ".jsonl")
    plain.write_bytes(gzip.decompress(zipped.read_bytes()))
    zipped.unlink()
    return plain.as_uri()


@dataclass
class Outcome:
    code: int | None = None
    states: list[str] = field(default_factory=list)
    logged: list[logging.LogRecord] = field(default_factory=list)

    def assert_one_clear_error(self) -> str:
        errors = [r for r in self.logged if r.levelno >= logging.ERROR]
        assert self.code == 1, [r.getMessage() for r in self.logged]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert errors[0].exc_info is None, "a traceback for bad input"
        message = errors[0].getMessage()
        assert "please report" not in message
        return message


class _Capture(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


def run_here(hub: LocalHub, messages: list[Any], **settings: Any) -> Outcome:
    """The target in this process (cheaper than the command), in a thread so that it
    leaves the test runner's signal handlers alone; its STATE lines and warnings."""
    outcome = Outcome()
    logger = logging.getLogger(TargetAzureEventHubs.name)
    handler = _Capture(outcome.logged)
    stdout = io.StringIO()

    def target() -> None:
        built = TargetAzureEventHubs(config=config(hub, sender_process=False, **settings))
        outcome.code = built.run(io.BytesIO(lines(messages).encode()))

    logger.addHandler(handler)
    try:
        with contextlib.redirect_stdout(stdout):
            worker = threading.Thread(target=target, daemon=True)
            worker.start()
            worker.join(RUN_TIMEOUT)
    finally:
        logger.removeHandler(handler)
    assert not worker.is_alive(), "the target did not finish"
    outcome.states = stdout.getvalue().splitlines()
    return outcome


def events(hub: LocalHub) -> list[tuple[Any, ...]]:
    """Every event in the hub, as consumers see it."""
    return sorted(
        (e.partition_id, e.body, sorted(e.properties.items()), e.message_id)
        for e in hub.events(HUB)
    )


ROWS = [membership(f"p{n % 3}", f"s{n}", n) for n in range(7)]  # p0..p2: merged rows
STATE = '{"type": "STATE", "value": {"done": 1}}'


@pytest.fixture(scope="module")
def as_record_lines() -> tuple[list[tuple[Any, ...]], list[str]]:
    """The events and STATE lines of ROWS sent as RECORD lines."""
    with LocalHub(hubs={HUB: 2}) as hub:
        outcome = run_here(hub, [SCHEMA, *map(record_line, ROWS), STATE])
        assert outcome.code == 0, [r.getMessage() for r in outcome.logged]
        assert segments_in_hub(hub) == {f"s{n}" for n in range(7)}
        return events(hub), outcome.states


@pytest.mark.parametrize(
    ("fmt", "compression"),
    [("jsonl", "gzip"), ("jsonl", "none"), ("parquet", "none"), ("parquet", "gzip")],
)
def test_batch_records_become_the_events_of_their_record_lines(
    tmp_path: Path,
    hub: LocalHub,
    as_record_lines: tuple[list[tuple[Any, ...]], list[str]],
    fmt: str,
    compression: str,
) -> None:
    expected_events, expected_states = as_record_lines
    messages = [
        SCHEMA,
        batch(tmp_path / "a", ROWS[:3], fmt, compression),
        batch(tmp_path / "b", ROWS[3:], fmt, compression),
        STATE,
    ]
    outcome = run_here(hub, messages)
    assert outcome.code == 0, [r.getMessage() for r in outcome.logged]
    assert events(hub) == expected_events
    assert outcome.states == expected_states == ['{"done": 1}']
    assert len(expected_events) == 3  # one event a profile: its rows merged across files
    bodies = b"".join(event[1] for event in expected_events)
    assert b'"lastQualificationTime":"2024-05-06T07:08:09.250Z"' in bodies  # typed alike


def test_an_invalid_batch_record_names_its_file_and_index(tmp_path: Path, hub: LocalHub) -> None:
    rows = [membership("p1", "s1"), {**membership("p2", "s2"), "status": 7}]
    message = batch(tmp_path, rows)
    outcome = run_here(hub, [SCHEMA, message], on_invalid_record="skip")
    assert outcome.code == 0
    [warning] = [r.getMessage() for r in outcome.logged if r.levelno == logging.WARNING]
    path = message["manifest"][0].removeprefix("file://")
    assert warning.startswith(
        f"Invalid record profile_id=p2 in stream '{STREAM}' at input line 2: record 2 of "
        f"batch file {path}: "
    ), warning
    assert "data.status must be string" in warning
    assert segments_in_hub(hub) == {"s1"}


GOOD = [SCHEMA, record_line(membership("p0", "s0")), '{"type": "STATE", "value": {"at": 1}}']


def _missing(tmp_path: Path) -> tuple[dict[str, Any], str]:
    url = (tmp_path / "gone" / "x.json.gz").as_uri()
    message = {**batch(tmp_path, [membership("p1", "s1")]), "manifest": [url]}
    return message, f"batch file {tmp_path}/gone/x.json.gz cannot be read: No such file"


def _not_gzip(tmp_path: Path) -> tuple[dict[str, Any], str]:
    message = batch(tmp_path, [membership("p1", "s1")])
    Path(message["manifest"][0].removeprefix("file://")).write_bytes(b'{"profile_id": "p1"}\n')
    return message, "is not a valid gzip file (Not a gzipped file"


def _cut_short(tmp_path: Path) -> tuple[dict[str, Any], str]:
    message = batch(tmp_path, [membership("p1", "s1")])
    path = Path(message["manifest"][0].removeprefix("file://"))
    path.write_bytes(path.read_bytes()[:-12])
    return message, "is not a valid gzip file (corrupt or cut short"


def _not_json(tmp_path: Path) -> tuple[dict[str, Any], str]:
    message = batch(tmp_path, [membership("p1", "s1"), membership("p2", "s2")], compression="none")
    path = Path(message["manifest"][0].removeprefix("file://"))
    path.write_bytes(path.read_bytes() + b'{"profile_id": \n')
    return message, f"record 3 of batch file {path}: not valid JSON"


def _not_parquet(tmp_path: Path) -> tuple[dict[str, Any], str]:
    message = batch(tmp_path, [membership("p1", "s1")], fmt="parquet")
    Path(message["manifest"][0].removeprefix("file://")).write_bytes(b"PAR1 not really")
    return message, "is not a valid parquet file"


def _remote(tmp_path: Path) -> tuple[dict[str, Any], str]:
    message = {**batch(tmp_path, [membership("p1", "s1")]), "manifest": ["s3://bucket/x.gz"]}
    return message, "batch file 's3://bucket/x.gz' is not a local file:// URL"


def _unknown_format(tmp_path: Path) -> tuple[dict[str, Any], str]:
    message = {**batch(tmp_path, [membership("p1", "s1")]), "encoding": {"format": "avro"}}
    return message, "batch file format 'avro' is not supported (expected jsonl or parquet)"


def _unknown_compression(tmp_path: Path) -> tuple[dict[str, Any], str]:
    encoding = {"format": "jsonl", "compression": "zstd"}
    message = {**batch(tmp_path, [membership("p1", "s1")]), "encoding": encoding}
    return message, "batch file compression 'zstd' is not supported (expected gzip or none)"


def _no_schema(tmp_path: Path) -> tuple[dict[str, Any], str]:
    message = {**batch(tmp_path, [membership("p1", "s1")]), "stream": "other"}
    return message, "a BATCH for stream 'other' arrived before the stream's SCHEMA message"


BROKEN = {
    "missing-file": _missing,
    "not-gzip": _not_gzip,
    "gzip-cut-short": _cut_short,
    "not-json": _not_json,
    "not-parquet": _not_parquet,
    "not-a-file-url": _remote,
    "unknown-format": _unknown_format,
    "unknown-compression": _unknown_compression,
    "no-schema": _no_schema,
}
# The fast tier (also run on the lowest singer-sdk) keeps a few; the others are slow.
FAST = {"missing-file", "gzip-cut-short", "no-schema"}

SENT_BEFORE_THE_FAULT = {"not-json": {"s1", "s2"}}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=() if c in FAST else pytest.mark.slow) for c in BROKEN]
)
def test_a_batch_that_cannot_be_read_is_one_clear_error_after_earlier_records(
    tmp_path: Path, hub: LocalHub, case: str
) -> None:
    message, expected = BROKEN[case](tmp_path)
    outcome = run_here(hub, [*GOOD, message, '{"type": "STATE", "value": {"at": 2}}'])
    error = outcome.assert_one_clear_error()
    where = "input line 4" if case == "no-schema" else f"input line 4 (stream '{STREAM}')"
    assert error.startswith(where), error
    assert expected in error, error
    # Records of the file read before the fault go too (as lines before a broken line).
    assert segments_in_hub(hub) == {"s0", *SENT_BEFORE_THE_FAULT.get(case, ())}
    assert outcome.states == ['{"at": 1}']


@pytest.mark.slow  # the command, as a pipeline runs it
def test_the_command_reports_a_missing_batch_file_in_one_line(
    tmp_path: Path, hub: LocalHub
) -> None:
    message, expected = _missing(tmp_path)
    done = run(tmp_path, config(hub), [*GOOD, message])
    error = done.assert_one_clear_error()
    assert error.startswith(f"input line 4 (stream '{STREAM}'): {expected}"), error
    assert segments_in_hub(hub) == {"s0"}
    assert done.states == [b'{"at": 1}']


@pytest.mark.slow  # runs the target as a subprocess
def test_a_state_after_a_batch_waits_for_every_event_of_the_batch(
    tmp_path: Path, hub: LocalHub
) -> None:
    """At the default settings (group_by_profile, the sender process): the first transfer
    of the batch's events is refused as server-busy and sent again after a backoff; the
    STATE after the BATCH must not appear before the hub holds all of them."""
    rows = [membership(f"p{n % 12}", f"b{n}", n) for n in range(30)]
    target = Target(tmp_path, config(hub))
    try:
        target.send([SCHEMA, record_line(membership("warm", "w0")), state_line('{"at": 0}')])
        wait_for(lambda: target.states == [b'{"at": 0}'], 30, "the first STATE")
        hub.faults.reject_next(1)
        target.send([batch(tmp_path / "files", rows), state_line('{"at": 1}')])
        wait_for(lambda: len(target.states) == 2, 60, "the STATE after the BATCH")
        # The hub only gains events: one missing now was missing when the STATE appeared.
        assert {f"b{n}" for n in range(30)} <= segments_in_hub(hub)
        transfers = hub.faults.transfers()
        [refused] = [t for t in transfers if t.outcome != "accepted"]
        resent = [t for t in transfers if t.digest == refused.digest and t.at > refused.at]
        assert resent, transfers
        state_seen_at = target.out[-1][0]
        assert state_seen_at > resent[0].at > refused.at  # the STATE waited for the resend
        target.close_input()
        assert target.wait(60) == 0, target.stderr
    finally:
        target.kill()
    assert target.states == [b'{"at": 0}', b'{"at": 1}']
    assert hub.event_count(HUB) == 1 + 12  # the warm-up row, then one event a profile
