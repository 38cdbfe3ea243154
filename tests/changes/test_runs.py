"""Change tracking end to end: sequences of runs of the real command into the local hub,
each run's events read back with the official consumer and compared with the change the
run had to send, the store read directly after each run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eventhubs_localhub import LocalHub

from tests.changes.support import (
    STREAM,
    T_A,
    HubLog,
    StoreView,
    body,
    by_profile,
    change_counts,
    check_envelope,
    counts,
    email_of,
    hashed_email,
    profile_of,
    row,
    sha,
    snapshot,
    statuses,
    stream_schema,
    target_config,
    utc_now,
)
from tests.integration.target_runner import Result, record, run_target, state

NEW_STORE = "every profile is new in this run"


def run(tmp_path: Path, config: dict[str, Any], messages: list) -> tuple[Result, str, str]:
    """A run that must succeed; returns it with the clock before and after it."""
    before = utc_now()
    result = run_target(tmp_path, config, messages, timeout=60)
    after = utc_now()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result, before, after


def sent(result: Result) -> int:
    """Events sent, from the summary line."""
    line = next(x for x in result.stderr.splitlines() if "Summary:" in x)
    return int(line.split(" records read, ")[1].split(" events sent")[0])


def run_time_of(event, segment: str, before: str, after: str) -> str:
    """The time of a membership decided at the run's time, checked to be the run's."""
    when = statuses(event)[segment][1]
    assert when is not None and before <= when <= after, (when, before, after)
    return when


def test_enter_stay_leave_reenter(store: StoreView, local_hub: LocalHub, tmp_path: Path) -> None:
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, store.url, snapshot_end="end_of_input")

    # 1. An empty store: every membership is new. A has the input's time, B the run's.
    first, before, after = run(
        tmp_path,
        config,
        snapshot({"p1": ["A", "B"], "p2": ["A"], "p3": ["B"]}, times={"A": T_A}, bookmark=1),
    )
    assert first.states == [{"bookmarks": {STREAM: {"run": 1}}}]
    assert NEW_STORE in first.stderr
    events = log.new()
    check_envelope(events)
    got = by_profile(events)
    assert set(got) == {"p1", "p2", "p3"}
    t1 = run_time_of(got["p1"], "B", before, after)
    assert statuses(got["p1"]) == {"A": ("realized", T_A), "B": ("realized", t1)}
    assert statuses(got["p2"]) == {"A": ("realized", T_A)}
    assert statuses(got["p3"]) == {"B": ("realized", t1)}
    assert body(got["p1"])["identityMap"] == {"email_lc_sha256": [{"id": sha("p1@example.com")}]}
    assert body(got["p1"])["person"] == {"name": {"firstName": "P1"}}
    assert change_counts(first.stderr) == counts(3, 4, 0, 0, 0)
    assert sent(first) == 3
    assert store.rows() == {
        "p1": (hashed_email("p1"), {"A": T_A, "B": t1}),
        "p2": (hashed_email("p2"), {"A": T_A}),
        "p3": (hashed_email("p3"), {"B": t1}),
    }
    # Each state keeps the digest of the records that made it: the same records again
    # are known unchanged without being converted.
    digests = store.rows_digests()
    assert set(digests) == {"p1", "p2", "p3"}
    assert all(len(d or "") == 32 for d in digests.values())
    raw = store.raw_text()
    assert sha(email_of("p1")).encode() in raw  # the grep below reads the stored rows
    assert b"@example.com" not in raw and b"P1" not in raw  # no email, no attribute value

    # 2. Stay: only p1 changed (C is new); its delivered memberships come as existing.
    second, before, after = run(
        tmp_path,
        config,
        snapshot({"p1": ["A", "B", "C"], "p2": ["A"], "p3": ["B"]}, bookmark=2),
    )
    assert second.states == [{"bookmarks": {STREAM: {"run": 2}}}]
    assert NEW_STORE not in second.stderr
    events = log.new()
    check_envelope(events)
    [p1] = events
    assert profile_of(p1) == "p1"
    t2 = run_time_of(p1, "C", before, after)
    assert statuses(p1) == {"A": ("existing", T_A), "B": ("existing", t1), "C": ("realized", t2)}
    assert change_counts(second.stderr) == counts(1, 1, 2, 0, 2)
    assert store.memberships()["p1"] == {"A": T_A, "B": t1, "C": t2}
    # p2's record lost its time: compared, unchanged, its stored state and digest kept.
    second_digests = store.rows_digests()
    assert second_digests["p2"] == digests["p2"] and second_digests["p3"] == digests["p3"]
    assert second_digests["p1"] not in (None, digests["p1"])

    # 3. Leave: p1 lost B, p3 is gone from the input altogether (2 of 5 memberships exit).
    third, before, after = run(
        tmp_path, config, snapshot({"p1": ["A", "C"], "p2": ["A"]}, bookmark=3)
    )
    assert third.states == [{"bookmarks": {STREAM: {"run": 3}}}]
    events = log.new()
    check_envelope(events)
    got = by_profile(events)
    assert set(got) == {"p1", "p3"}
    t3 = run_time_of(got["p1"], "B", before, after)
    assert statuses(got["p1"]) == {
        "A": ("existing", T_A),
        "B": ("exited", t3),
        "C": ("existing", t2),
    }
    assert statuses(got["p3"]) == {"B": ("exited", t3)}
    # An exit event carries the identity map the store kept, and no attribute.
    assert body(got["p3"])["identityMap"] == {"email_lc_sha256": [{"id": sha("p3@example.com")}]}
    assert set(body(got["p3"])) == {"segmentMembership", "identityMap"}
    assert change_counts(third.stderr) == counts(2, 0, 2, 2, 2)
    assert store.memberships() == {"p1": {"A": T_A, "C": t2}, "p2": {"A": T_A}}
    # p1 lost B to the snapshot's end, not to its records: it is compared next time.
    assert store.rows_digests() == {"p1": None, "p2": digests["p2"]}

    # 4. Re-enter: B is back for p1 and p3, realized again at this run's time.
    fourth, before, after = run(
        tmp_path,
        config,
        snapshot({"p1": ["A", "B", "C"], "p2": ["A"], "p3": ["B"]}, bookmark=4),
    )
    assert fourth.states == [{"bookmarks": {STREAM: {"run": 4}}}]
    events = log.new()
    check_envelope(events)
    got = by_profile(events)
    assert set(got) == {"p1", "p3"}
    t4 = run_time_of(got["p3"], "B", before, after)
    assert t4 >= t3 >= t2 >= t1
    assert statuses(got["p1"]) == {
        "A": ("existing", T_A),
        "B": ("realized", t4),
        "C": ("existing", t2),
    }
    assert statuses(got["p3"]) == {"B": ("realized", t4)}
    assert body(got["p3"])["person"] == {"name": {"firstName": "P3"}}
    assert change_counts(fourth.stderr) == counts(2, 2, 2, 0, 1)
    assert store.memberships() == {
        "p1": {"A": T_A, "B": t4, "C": t2},
        "p2": {"A": T_A},
        "p3": {"B": t4},
    }
    assert store.rows_digests() == {  # the records of runs 2 and 1 again
        "p1": second_digests["p1"],
        "p2": digests["p2"],
        "p3": digests["p3"],
    }
    # The official consumer reads the same 8 events; each a different change, no id twice.
    everything = log.verify()
    assert len({e.message_id for e in everything}) == len(everything) == 8
    assert b"@example.com" not in store.raw_text()


def test_attribute_and_identity_only_changes(local_hub: LocalHub, tmp_path: Path) -> None:
    store = StoreView(f"sqlite:///{tmp_path}/changes.sqlite", tmp_path / "changes.sqlite")
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, store.url)
    run(
        tmp_path,
        config,
        [
            stream_schema(),
            row("p1", "A", time=T_A, first_name="Ann"),
            row("p2", "A", time=T_A),
            row("p3", "A", time=T_A),
            state({"n": 1}),
        ],
    )
    assert len(log.new()) == 3
    second, _, _ = run(
        tmp_path,
        config,
        [
            stream_schema(),
            row("p1", "A", time=T_A, first_name="Anna"),  # an attribute changed
            row("p2", "A", time=T_A, email="p2.new@example.com"),  # an identity changed
            row("p3", "A", email="  P3@Example.COM "),  # the same identity once normalised
            state({"n": 2}),
        ],
    )
    assert second.states == [{"n": 2}]
    events = log.new()
    check_envelope(events)
    got = by_profile(events)
    assert set(got) == {"p1", "p2"}
    assert statuses(got["p1"]) == {"A": ("existing", T_A)}
    assert body(got["p1"])["person"] == {"name": {"firstName": "Anna"}}
    assert body(got["p1"])["identityMap"] == {"email_lc_sha256": [{"id": sha("p1@example.com")}]}
    assert statuses(got["p2"]) == {"A": ("existing", T_A)}
    assert body(got["p2"])["identityMap"] == {
        "email_lc_sha256": [{"id": sha("p2.new@example.com")}]
    }
    assert change_counts(second.stderr) == counts(2, 0, 2, 0, 1)
    rows = store.rows()
    assert rows["p2"] == ({"email_lc_sha256": [sha("p2.new@example.com")]}, {"A": T_A})
    assert rows["p3"] == (hashed_email("p3"), {"A": T_A})
    assert b"Anna" not in store.raw_text() and b"@example.com" not in store.raw_text()
    assert len(log.verify()) == 5


def test_explicit_exits_without_a_snapshot(local_hub: LocalHub, tmp_path: Path) -> None:
    store = StoreView(f"sqlite:///{tmp_path}/changes.sqlite", tmp_path / "changes.sqlite")
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, store.url)  # snapshot_end: none
    run(tmp_path, config, snapshot({"p1": ["A", "B"], "p2": ["A"], "p3": ["A"], "p4": ["C"]}))
    first = by_profile(log.new())
    t1 = statuses(first["p1"])["A"][1]
    assert set(first) == {"p1", "p2", "p3", "p4"}

    t_x = "2025-07-01T09:00:00Z"
    second, before, after = run(
        tmp_path,
        config,
        [
            stream_schema(),
            row("p1", "B", status="exited", time=t_x),  # delivered: ends, at the input's time
            row("p1", "Z", status="exited"),  # never delivered: nothing to end
            row("p2", "A", status="exited"),  # delivered: ends at the run's time
            row("p3", "Y", status="exited"),  # never delivered, the rest unchanged: no event
            # p4 is not in the input: without a snapshot, nothing happens to it
            state({"n": 2}),
        ],
    )
    assert second.states == [{"n": 2}]
    events = log.new()
    check_envelope(events)
    got = by_profile(events)
    assert set(got) == {"p1", "p2"}
    assert statuses(got["p1"]) == {"A": ("existing", t1), "B": ("exited", t_x)}
    t2 = run_time_of(got["p2"], "A", before, after)
    assert statuses(got["p2"]) == {"A": ("exited", t2)}
    assert change_counts(second.stderr) == counts(2, 0, 1, 2, 1)
    assert store.memberships() == {"p1": {"A": t1}, "p2": {}, "p3": {"A": t1}, "p4": {"C": t1}}

    # p2 comes back; p1's B is no longer delivered, so exiting it again sends nothing.
    third, before, after = run(
        tmp_path,
        config,
        [stream_schema(), row("p2", "A"), row("p1", "B", status="exited"), state({"n": 3})],
    )
    [p2] = log.new()
    check_envelope([p2])
    assert profile_of(p2) == "p2"
    t3 = run_time_of(p2, "A", before, after)
    assert statuses(p2) == {"A": ("realized", t3)}
    assert change_counts(third.stderr) == counts(1, 1, 0, 0, 1)
    assert store.memberships()["p2"] == {"A": t3}
    assert len(log.verify()) == 7


def test_baseline_sends_nothing_then_only_changes(local_hub: LocalHub, tmp_path: Path) -> None:
    store = StoreView(f"sqlite:///{tmp_path}/changes.sqlite", tmp_path / "changes.sqlite")
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, store.url, snapshot_end="end_of_input")
    baseline, before, after = run(
        tmp_path,
        {**config, "change_tracking_baseline": True},
        snapshot({"p1": ["A", "B"], "p2": ["A"]}, times={"A": T_A}),
    )
    assert baseline.states == [{"bookmarks": {STREAM: {"run": 1}}}]
    assert "change_tracking_baseline is on" in baseline.stderr
    assert "(recorded without sending: baseline)" in baseline.stderr
    assert change_counts(baseline.stderr) == counts(2, 3, 0, 0, 0)
    assert sent(baseline) == 0
    assert log.new() == []
    stored = store.memberships()
    t0 = stored["p1"]["B"]
    assert before <= t0 <= after
    assert stored == {"p1": {"A": T_A, "B": t0}, "p2": {"A": T_A}}

    second, before, after = run(
        tmp_path, config, snapshot({"p1": ["A"], "p2": ["A"], "p3": ["C"]}, bookmark=2)
    )
    assert second.states == [{"bookmarks": {STREAM: {"run": 2}}}]
    events = log.new()
    check_envelope(events)
    got = by_profile(events)
    assert set(got) == {"p1", "p3"}
    t2 = run_time_of(got["p3"], "C", before, after)
    assert statuses(got["p1"]) == {"A": ("existing", T_A), "B": ("exited", t2)}
    assert statuses(got["p3"]) == {"C": ("realized", t2)}
    assert change_counts(second.stderr) == counts(2, 1, 1, 1, 2)
    assert store.memberships() == {"p1": {"A": T_A}, "p2": {"A": T_A}, "p3": {"C": t2}}
    assert len(log.verify()) == 2


def test_every_input_shape_without_status(local_hub: LocalHub, tmp_path: Path) -> None:
    store = StoreView(f"sqlite:///{tmp_path}/changes.sqlite", tmp_path / "changes.sqlite")
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, store.url, snapshot_end="end_of_input")
    email = {"email": email_of("p1")}
    ids = {"identityMap": {"email_lc_sha256": [{"id": email_of("p1")}]}}

    def shapes(rows: list[str], segments: Any, membership: dict, n: int) -> list:
        return [
            stream_schema("rows"),
            stream_schema("lists"),
            stream_schema("events"),
            *[row("p1", seg, stream="rows", time=T_A if seg == "A" else None) for seg in rows],
            record("lists", {"profile_id": "p1", **email, "segments": segments}),
            record("events", {"profile_id": "p1", **ids, "segmentMembership": {"ups": membership}}),
            state({"n": n}),
        ]

    first, before, after = run(
        tmp_path,
        config,
        shapes(
            ["A", "B"],
            ["A", {"id": "B", "lastQualificationTime": T_A}, {"segment_id": "C"}],
            {"A": {}, "B": {"lastQualificationTime": T_A}},
            1,
        ),
    )
    assert first.states == [{"n": 1}]
    events = log.new()
    got = {e.properties["stream"]: e for e in events}
    assert len(events) == 3 and set(got) == {"rows", "lists", "events"}
    for stream, event in got.items():
        check_envelope([event], stream)
        assert profile_of(event) == "p1"
        assert body(event)["identityMap"] == {"email_lc_sha256": [{"id": sha(email_of("p1"))}]}
    # Each stream stamps its own events: within the run, not necessarily the same second.
    now = run_time_of(got["rows"], "B", before, after)
    now_lists = run_time_of(got["lists"], "A", before, after)
    now_events = run_time_of(got["events"], "A", before, after)
    assert statuses(got["rows"]) == {"A": ("realized", T_A), "B": ("realized", now)}
    assert statuses(got["lists"]) == {
        "A": ("realized", now_lists),
        "B": ("realized", T_A),
        "C": ("realized", now_lists),
    }
    assert statuses(got["events"]) == {"A": ("realized", now_events), "B": ("realized", T_A)}
    for stream in ("rows", "lists", "events"):
        assert change_counts(first.stderr, stream)["events"] == 1

    # Each shape drops one segment (a map of segments this time): one exit per stream.
    second, before, after = run(
        tmp_path,
        config,
        shapes(["A"], {"A": None, "C": {}}, {"B": {}}, 2),
    )
    assert second.states == [{"n": 2}]
    events = log.new()
    got = {e.properties["stream"]: e for e in events}
    assert len(events) == 3 and set(got) == {"rows", "lists", "events"}
    for stream, event in got.items():
        check_envelope([event], stream)
    later = run_time_of(got["rows"], "B", before, after)
    later_lists = run_time_of(got["lists"], "B", before, after)
    later_events = run_time_of(got["events"], "A", before, after)
    assert statuses(got["rows"]) == {"A": ("existing", T_A), "B": ("exited", later)}
    assert statuses(got["lists"]) == {
        "A": ("existing", now_lists),
        "B": ("exited", later_lists),
        "C": ("existing", now_lists),
    }
    assert statuses(got["events"]) == {"A": ("exited", later_events), "B": ("existing", T_A)}
    assert change_counts(second.stderr, "rows") == counts(1, 0, 1, 1, 1)
    assert change_counts(second.stderr, "lists") == counts(1, 0, 2, 1, 1)
    assert change_counts(second.stderr, "events") == counts(1, 0, 1, 1, 1)
    assert store.memberships("rows") == {"p1": {"A": T_A}}
    assert store.memberships("lists") == {"p1": {"A": now_lists, "C": now_lists}}
    assert store.memberships("events") == {"p1": {"B": T_A}}
    assert b"@example.com" not in store.raw_text()
    assert len(log.verify()) == 6


def versioned(stream: str, data: dict[str, Any], version: int) -> dict[str, Any]:
    return {**record(stream, data), "version": version}


def activate(version: int) -> dict[str, Any]:
    return {"type": "ACTIVATE_VERSION", "stream": STREAM, "version": version}


def full_table(audience: dict[str, list[str]], version: int, *, closing: bool) -> list:
    """A full-table sync: ACTIVATE_VERSION, records of that version, STATE, and with
    ``closing`` (classic taps) the ACTIVATE_VERSION again."""
    messages: list = [stream_schema(), activate(version)]
    for profile, segments in audience.items():
        messages += [
            versioned(STREAM, row(profile, seg, time=T_A)["record"], version) for seg in segments
        ]
    messages.append(state({"version": version}))
    if closing:
        messages.append(activate(version))
    return messages


def test_activate_version_completes_a_snapshot(local_hub: LocalHub, tmp_path: Path) -> None:
    store = StoreView(f"sqlite:///{tmp_path}/changes.sqlite", tmp_path / "changes.sqlite")
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, store.url, snapshot_end="activate_version")
    full = {"p1": ["A", "B"], "p2": ["A"], "p3": ["A"]}
    first, _, _ = run(tmp_path, config, full_table(full, 101, closing=True))
    assert first.states == [{"version": 101}]
    assert "ACTIVATE_VERSION 101 of stream 'audiences' opens a snapshot" in first.stderr
    assert "ACTIVATE_VERSION 101: the snapshot of stream 'audiences' is complete" in first.stderr
    assert set(by_profile(log.new())) == {"p1", "p2", "p3"}

    # Classic tap: the closing ACTIVATE_VERSION exits what the version lacks.
    second, before, after = run(
        tmp_path, config, full_table({"p1": ["A"], "p2": ["A"]}, 102, closing=True)
    )
    assert second.states == [{"version": 102}]
    events = log.new()
    check_envelope(events)
    got = by_profile(events)
    assert set(got) == {"p1", "p3"}
    now = run_time_of(got["p3"], "A", before, after)
    assert statuses(got["p1"]) == {"A": ("existing", T_A), "B": ("exited", now)}
    assert statuses(got["p3"]) == {"A": ("exited", now)}
    assert change_counts(second.stderr) == counts(2, 0, 1, 2, 2)
    assert store.memberships() == {"p1": {"A": T_A}, "p2": {"A": T_A}}

    # singer-sdk taps send one ACTIVATE_VERSION, before the records: no snapshot ends.
    third, _, _ = run(tmp_path, config, full_table({"p1": ["A"]}, 103, closing=False))
    assert third.states == [{"version": 103}]
    assert "opens a snapshot" in third.stderr and "is complete" not in third.stderr
    assert log.new() == []
    assert change_counts(third.stderr) == counts(0, 0, 0, 0, 1)
    assert store.memberships() == {"p1": {"A": T_A}, "p2": {"A": T_A}}
    assert len(log.verify()) == 5


def test_a_refused_record_keeps_its_profile_out_of_the_snapshots_exits(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    """With on_invalid_record skip, a profile whose row was refused is not known to have
    left: its memberships stay. A profile never delivered whose row names only an exit has
    nothing to tell consumers: no event, no row in the store."""
    store = StoreView(f"sqlite:///{tmp_path}/changes.sqlite", tmp_path / "changes.sqlite")
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(
        log.conn_str, store.url, snapshot_end="end_of_input", on_invalid_record="skip"
    )
    run(tmp_path, config, snapshot({"p1": ["A", "B"], "p2": ["A"], "p3": ["A"]}))
    first = by_profile(log.new())
    t1 = statuses(first["p1"])["A"][1]
    second, _, _ = run(
        tmp_path,
        config,
        [
            stream_schema(),
            row("p1", "A"),
            row("p1", "B", status="maybe"),  # refused: p1's B must not exit
            row("p2", "A"),
            row("p9", "Z", status="exited"),  # never delivered, nothing to tell
            # p3 is gone from the snapshot: its A exits
            state({"n": 2}),
        ],
    )
    assert "invalid status 'maybe'" in second.stderr and "skipped" in second.stderr
    got = by_profile(log.new())
    assert set(got) == {"p3"}
    assert statuses(got["p3"])["A"][0] == "exited"
    assert store.memberships() == {"p1": {"A": t1, "B": t1}, "p2": {"A": t1}}
    assert change_counts(second.stderr) == counts(1, 0, 0, 1, 2)  # p1, p2
    assert "1 profiles not sent (their input only exits memberships never delivered)" in (
        second.stderr
    )


def test_a_record_refused_when_its_batch_drains_stops_a_failing_run(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    """Tracked records keyed by a field are converted when their batch is drained (an
    unchanged profile never is): with on_invalid_record fail, a record the conversion
    refuses stops the run there, named by stream, line and reason. No STATE is written,
    nothing is recorded that was not sent, and the next run delivers what is missing."""
    store = StoreView(f"sqlite:///{tmp_path}/changes.sqlite", tmp_path / "changes.sqlite")
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, store.url, snapshot_end="end_of_input")
    rows = [row("p1", "A"), row("p2", "A", status="maybe"), row("p3", "A")]
    failed = run_target(tmp_path, config, [stream_schema(), *rows, state({"n": 1})], timeout=60)
    assert failed.returncode == 1
    [error] = [line for line in failed.stderr.splitlines() if "| ERROR " in line]
    assert f"Invalid record profile_id=p2 in stream '{STREAM}' at input line 3: " in error
    assert "invalid status 'maybe'" in error
    assert "Traceback" not in failed.stderr
    assert failed.states == []
    first = by_profile(log.new())
    assert set(first) <= {"p1", "p3"}
    assert set(store.memberships()) <= set(first)  # nothing recorded that was not sent

    mended, _, _ = run(
        tmp_path, config, [stream_schema(), row("p1", "A"), row("p2", "A"), row("p3", "A")]
    )
    assert mended.returncode == 0
    second = by_profile(log.new())
    assert "p2" in second and statuses(second["p2"])["A"][0] == "realized"
    for key in set(first) & set(second):  # sent again: an at-least-once duplicate
        assert first[key].message_id == second[key].message_id
    assert set(first) | set(second) == {"p1", "p2", "p3"}
    assert set(store.memberships()) == {"p1", "p2", "p3"}
