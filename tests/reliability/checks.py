"""The delivery check every reliability scenario ends with, plus the input and process tools.

The guarantee under test (at least once, STATE only after acceptance):
- every record covered by the last STATE the target wrote is in the hub;
- a successful run exits 0 and its last STATE covers every record;
- a failed run exits non-zero and no STATE covers a record that is not in the hub;
- re-running the target on the input after the last STATE leaves every record in the hub at
  least once; duplicates (same ``message_id``) are counted, reported and bounded;
- no secret (the hub's recognisable key) appears in stdout, stderr or any file written.

Each record carries its input line number as ``line``; with ``include_unmapped_attributes``
it comes back as ``attributes.line`` in the event body, which is how records are identified
when the hub is read back with the official consumer (``target_azure_eventhubs.testing.read_all``).

Set ``RELIABILITY_REPORT=/path/file.jsonl`` to get one JSON line per scenario;
``python -m tests.reliability.report /path/file.jsonl`` renders them as a table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventhubs_localhub import LocalHub, LocalHubProcess

from target_azure_eventhubs.testing import ReadEvent, read_all
from tests.integration.target_runner import TARGET, Result
from tests.waiting import wait_until

STREAM = "profiles"
HUB = "profiles"
KEY_NAME = "reliability-manage"
#: Recognisable secret: grepped for in every output. Never printed by the tests either.
SECRET_KEY = "RELIABILITY-SECRET-KEY-q7Zx9Kp2Wm4Tn8Vb"
#: Also refuse fragments of it (a truncated key in a log line is still a leak).
SECRET_FRAGMENTS = (SECRET_KEY, SECRET_KEY[:16], SECRET_KEY[-16:])

MEMBERSHIP_SCHEMA_PROPERTIES: dict[str, Any] = {
    "profile_id": {"type": "string"},
    "email": {"type": ["string", "null"]},
    "segment_id": {"type": "string"},
    "status": {"type": "string"},
    "line": {"type": "integer"},
    "seq": {"type": ["integer", "null"]},
    "note": {"type": ["string", "null"]},
}


# Input ---------------------------------------------------------------------------------------


def schema_message(stream: str = STREAM) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": MEMBERSHIP_SCHEMA_PROPERTIES},
        "key_properties": ["profile_id"],
    }


def state_message(stream_lines: dict[str, int]) -> dict[str, Any]:
    return {
        "type": "STATE",
        "value": {"bookmarks": {s: {"line": n} for s, n in stream_lines.items()}},
    }


@dataclass
class Workload:
    """Singer messages (message i is input line i + 1) and which lines are records."""

    messages: list[dict[str, Any] | str]
    record_lines: list[int] = field(default_factory=list)
    #: line -> (stream, profile_id, seq) for ordering checks
    records: dict[int, tuple[str, str, int]] = field(default_factory=dict)

    @property
    def last_record_line(self) -> int:
        return max(self.record_lines, default=0)

    def split(self, records: int) -> tuple[list[dict[str, Any] | str], list[dict[str, Any] | str]]:
        """The input up to its ``records``-th record and the STATE right after it, if any;
        and the rest. A test writes the first part, injects a fault once it is in the hub,
        then writes the rest: the fault always strikes before the input ends."""
        line = self.record_lines[records - 1]
        if line < len(self.messages) and self._is_state(self.messages[line]):
            line += 1
        return self.messages[:line], self.messages[line:]

    @staticmethod
    def _is_state(message: dict[str, Any] | str) -> bool:
        return isinstance(message, dict) and message.get("type") == "STATE"

    def remainder(self, covered: int) -> list[dict[str, Any] | str]:
        """The input to re-run after a STATE covering records up to line ``covered``."""
        schemas = [m for m in self.messages if isinstance(m, dict) and m.get("type") == "SCHEMA"]
        rest = [
            m
            for line, m in enumerate(self.messages, start=1)
            if line > covered and not (isinstance(m, dict) and m.get("type") == "SCHEMA")
        ]
        return [*schemas, *rest]


def make_workload(
    n: int,
    state_every: int = 25,
    *,
    streams: Sequence[str] = (STREAM,),
    profiles: int | None = None,
    note_size: dict[int, int] | None = None,
) -> Workload:
    """``n`` membership rows (round-robin over ``streams``), a STATE after every
    ``state_every`` records and at the end. ``profiles``: reuse that many profile ids
    (default: one profile per record). ``note_size``: record index -> size of a filler note.
    """
    messages: list[dict[str, Any] | str] = [schema_message(s) for s in streams]
    workload = Workload(messages)
    last_line: dict[str, int] = {}
    seq: Counter[str] = Counter()
    for i in range(n):
        line = len(messages) + 1
        stream = streams[i % len(streams)]
        profile = f"p{i % profiles}" if profiles else f"p{line}"
        key = f"{stream}/{profile}"
        data: dict[str, Any] = {
            "profile_id": profile,
            "email": f"{profile}@example.com",
            "segment_id": f"seg-{i % 7}",
            "status": "realized",
            "line": line,
            "seq": seq[key],
        }
        if note_size and i in note_size:
            data["note"] = "x" * note_size[i]
        messages.append({"type": "RECORD", "stream": stream, "record": data})
        workload.record_lines.append(line)
        workload.records[line] = (stream, profile, seq[key])
        seq[key] += 1
        last_line[stream] = line
        if (i + 1) % state_every == 0 or i == n - 1:
            messages.append(state_message(dict(last_line)))
    return workload


def target_config(conn_str: str, **extra: Any) -> dict[str, Any]:
    """Settings for a fast, CI-sized run; records identifiable by ``attributes.line``.

    `group_by_profile` is at its default (on): the promise must hold at the defaults. The
    workloads give each record its own profile, so every record is still one event; a
    scenario that reuses profiles turns grouping off itself.
    """
    return {
        "connection_string": conn_str,
        "eventhub_name": HUB,
        "include_unmapped_attributes": True,
        "send_timeout_seconds": 2,
        "retry_backoff_seconds": 0.2,
        "retry_backoff_max_seconds": 2,
        "max_retries": 8,
        "max_latency_ms": 200,
        "shutdown_timeout_seconds": 5,
        **extra,
    }


# Hubs ----------------------------------------------------------------------------------------


def local_hub(**kwargs: Any) -> LocalHub:
    kwargs.setdefault("hubs", {HUB: 4})
    return LocalHub(key_name=KEY_NAME, key=SECRET_KEY, **kwargs)


def hub_process(data_dir: Path, **kwargs: Any) -> LocalHubProcess:
    kwargs.setdefault("extra_args", ["--log-level", "WARNING"])
    return LocalHubProcess({HUB: 4}, data_dir=data_dir, key_name=KEY_NAME, key=SECRET_KEY, **kwargs)


def stored_count(hub: LocalHub | LocalHubProcess) -> int:
    if isinstance(hub, LocalHub):
        return hub.event_count(HUB)
    return int(hub.control(f"count {HUB}").split()[1])


#: The target's warning for a batch it sends again: "Send of N events to ... failed (...); retry".
_RESEND = re.compile(r"Send of (\d+) events? .*failed .*; retry \d+")


def resent_events(stderr: str) -> int:
    """How many events the target sent again after a failed send, from its retry warnings.

    Each resent event can be at most one duplicate (the hub may have stored the batch whose
    acknowledgement was lost), so this bounds the duplicates a run with faults may leave.
    """
    return sum(int(match.group(1)) for match in _RESEND.finditer(stderr))


# The target as a subprocess -----------------------------------------------------------------


def encode_lines(messages: Iterable[dict[str, Any] | str | bytes]) -> bytes:
    out = bytearray()
    for m in messages:
        if isinstance(m, bytes):
            out += m
        elif isinstance(m, str):
            out += m.encode()
        else:
            out += json.dumps(m).encode()
        out += b"\n"
    return bytes(out)


class TargetProcess:
    """The real CLI, fed from a thread (optionally paced) while the test injects faults."""

    def __init__(self, tmp_path: Path, config: dict[str, Any]) -> None:
        path = tmp_path / f"config-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(config))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*TARGET, "--config", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.stdout_lines: list[tuple[float, str]] = []
        self.stderr_lines: list[tuple[float, str]] = []
        self.fed_lines = 0
        self._readers = [
            threading.Thread(
                target=self._pump, args=(self.proc.stdout, self.stdout_lines), daemon=True
            ),
            threading.Thread(
                target=self._pump, args=(self.proc.stderr, self.stderr_lines), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()
        self._feeder: threading.Thread | None = None

    @staticmethod
    def _pump(stream: Any, into: list[tuple[float, str]]) -> None:
        for raw in stream:
            into.append((time.monotonic(), raw.decode("utf-8", "replace")))

    def feed(
        self,
        messages: Sequence[dict[str, Any] | str | bytes],
        *,
        chunk: int = 0,
        delay: float = 0.0,
        close: bool = True,
    ) -> None:
        """Write ``messages`` from a thread, ``chunk`` at a time with ``delay`` between."""

        def run() -> None:
            assert self.proc.stdin is not None
            size = chunk or len(messages) or 1
            try:
                for start in range(0, len(messages), size):
                    part = messages[start : start + size]
                    self.proc.stdin.write(encode_lines(part))
                    self.proc.stdin.flush()
                    self.fed_lines += len(part)
                    if delay and start + size < len(messages):
                        time.sleep(delay)  # input paced over time: the scenario, not a wait
                if close:
                    self.proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass  # the target stopped reading (failed or was killed): that is the test

        self._feeder = threading.Thread(target=run, daemon=True)
        self._feeder.start()

    def write(self, messages: Sequence[dict[str, Any] | str | bytes]) -> None:
        """Write ``messages`` to the target's input now (from the test's thread)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(encode_lines(messages))
        self.proc.stdin.flush()
        self.fed_lines += len(messages)

    def close_input(self) -> None:
        if self._feeder is not None:
            self._feeder.join(30)
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def states(self) -> list[dict[str, Any]]:
        return [json.loads(line) for _, line in list(self.stdout_lines) if line.strip()]

    @property
    def stderr(self) -> str:
        return "".join(line for _, line in list(self.stderr_lines))

    def wait(self, timeout: float = 60) -> Result:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(
                f"target did not finish within {timeout} s (a hang); stderr:\n{self.stderr[-3000:]}"
            ) from None
        for reader in self._readers:
            reader.join(10)
        return Result(
            code,
            "".join(line for _, line in self.stdout_lines),
            self.stderr,
            time.monotonic() - self.started,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def feed_with_faults(
    target: TargetProcess,
    workload: Workload,
    faults: Sequence[Callable[[], None]],
    stored: Callable[[], int],
    timeout: float = 30,
) -> None:
    """Write the input in ``len(faults) + 1`` parts of as many records; inject fault ``i``
    right after part ``i`` (while its events are pending or in flight) and wait until the
    hub holds the records of every part so far before the next: every fault strikes, in
    order, during the run, whatever the machine's speed. Closes the input at the end."""
    per_part = len(workload.record_lines) // (len(faults) + 1)
    written: list[dict[str, Any] | str] = []
    for i, fault in enumerate(faults, start=1):
        head, _ = workload.split(per_part * i)
        target.write(head[len(written) :])
        written = head
        fault()
        assert wait_until(lambda n=per_part * i: stored() >= n, timeout), (
            f"after fault {i}: {stored()} of {per_part * i} events stored\n" + target.stderr[-3000:]
        )
    target.write(workload.messages[len(written) :])
    target.close_input()


def run_target(
    tmp_path: Path,
    config: dict[str, Any],
    messages: Sequence[dict[str, Any] | str | bytes],
    timeout: float = 60,
) -> Result:
    target = TargetProcess(tmp_path, config)
    try:
        target.feed(messages)
        return target.wait(timeout)
    finally:
        target.kill()


# Reading the hub back ------------------------------------------------------------------------


def record_line_of(event: ReadEvent) -> int:
    return int(json.loads(event.body)["attributes"]["line"])


def covered_lines(result: Result) -> list[int]:
    """For each STATE written, the highest record line it covers (over all streams)."""
    covered = []
    for state in result.states:
        bookmarks = state.get("bookmarks", {})
        covered.append(max((b.get("line", 0) for b in bookmarks.values()), default=0))
    return covered


def assert_no_secrets(texts: dict[str, str], secrets: Sequence[str] = SECRET_FRAGMENTS) -> None:
    for where, text in texts.items():
        for secret in secrets:
            # Report where, never the secret itself.
            assert secret not in text, (
                f"a secret (or part of one, {len(secret)} chars) is in {where}"
            )


def assert_clear_error(result: Result) -> None:
    """A failure is one readable ERROR line, not a bare stack trace."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert errors, f"no ERROR line in stderr:\n{result.stderr[-3000:]}"


@dataclass
class Outcome:
    scenario: str
    records_sent: int
    records_in_hub: int
    duplicates: int
    exit_codes: list[int]
    seconds: float
    events: list[ReadEvent]
    covered: int


def check_delivery(
    scenario: str,
    workload: Workload,
    first: Result,
    read_conn: str,
    *,
    tmp_path: Path,
    expect_success: bool,
    stopped_early: bool = False,
    rerun_config: dict[str, Any] | None = None,
    invalid_lines: Iterable[int] = (),
    max_duplicates: int = 0,
    files: Sequence[Path] = (),
    allow_traceback: bool = False,
) -> Outcome:
    """The end-of-scenario check; see the module docstring. Returns what it measured.

    ``expect_success``: exit 0 and the last STATE covers every record. Otherwise the run
    must exit non-zero: 143 with ``stopped_early`` (a clean stop on SIGTERM).
    ``rerun_config``: re-run the remainder after the last STATE when records are missing.
    """
    invalid = set(invalid_lines)
    expected = [line for line in workload.record_lines if line not in invalid]
    runs = [first]
    texts = {"stdout": first.stdout, "stderr": first.stderr}
    texts.update({str(p): p.read_text(errors="replace") for p in files if p.exists()})
    assert_no_secrets(texts)
    if not allow_traceback:
        assert "Traceback" not in first.stderr, first.stderr[-3000:]

    covers = covered_lines(first)
    assert covers == sorted(covers), f"STATE went backwards: {covers}"
    covered = covers[-1] if covers else 0
    if expect_success:
        assert first.returncode == 0, first.stderr[-3000:]
        assert covered == workload.last_record_line, (
            f"exit 0 but the last STATE covers line {covered}, not {workload.last_record_line}"
        )
    elif stopped_early:  # stopped on SIGTERM with everything read accepted: 128 + 15
        assert first.returncode == 128 + signal.SIGTERM, first.stderr[-3000:]
    else:
        assert first.returncode != 0, "the run was expected to fail"

    events = read_all(read_conn, HUB, timeout=30)
    in_hub = Counter(record_line_of(e) for e in events)
    for event in events:
        assert event.message_id == hashlib.sha256(event.body).hexdigest()[:32]
    unsent_but_covered = [line for line in expected if line <= covered and line not in in_hub]
    assert not unsent_but_covered, (
        f"STATE covers line {covered} but records at lines {unsent_but_covered[:10]} "
        f"({len(unsent_but_covered)} in all) are not in the hub: data loss"
    )
    assert not invalid & set(in_hub), f"invalid records reached the hub: {invalid & set(in_hub)}"

    # A re-run resends every record after the last STATE, including those already stored:
    # those duplicates are by design; ``max_duplicates`` bounds the others (retried sends).
    resent_by_design = 0
    if rerun_config is not None and any(line not in in_hub for line in expected):
        resent_by_design = sum(1 for line in in_hub if line > covered)
        rerun = run_target(tmp_path, rerun_config, workload.remainder(covered))
        runs.append(rerun)
        assert_no_secrets({"re-run stdout": rerun.stdout, "re-run stderr": rerun.stderr})
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        rerun_covers = covered_lines(rerun)
        assert rerun_covers and rerun_covers[-1] == workload.last_record_line
        events = read_all(read_conn, HUB, timeout=30)
        in_hub = Counter(record_line_of(e) for e in events)

    if expect_success or rerun_config is not None:
        missing = [line for line in expected if line not in in_hub]
        assert not missing, f"{len(missing)} records never arrived, e.g. lines {missing[:10]}"
    duplicates = sum(count - 1 for count in in_hub.values())
    assert len({e.message_id for e in events}) == len(in_hub)  # ids identify records
    assert duplicates <= resent_by_design + max_duplicates, (
        f"{duplicates} duplicates: {resent_by_design} re-sent after the last STATE by design, "
        f"bound on the rest {max_duplicates}"
    )

    outcome = Outcome(
        scenario=scenario,
        records_sent=len(workload.record_lines),
        records_in_hub=len(in_hub),
        duplicates=duplicates,
        exit_codes=[r.returncode for r in runs],
        seconds=round(sum(r.seconds for r in runs), 1),
        events=events,
        covered=covered,
    )
    write_report(outcome)
    return outcome


def write_report(outcome: Outcome) -> None:
    path = os.environ.get("RELIABILITY_REPORT")
    if not path:
        return
    row = {
        "scenario": outcome.scenario,
        "records_sent": outcome.records_sent,
        "records_in_hub": outcome.records_in_hub,
        "duplicates": outcome.duplicates,
        "exit_codes": outcome.exit_codes,
        "seconds": outcome.seconds,
    }
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
