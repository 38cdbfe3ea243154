"""Change tracking under faults: the target SIGKILLed between Event Hubs' acknowledgement and
the store's commit, the hub or PostgreSQL gone mid-run, a truncated snapshot, runners side
by side, and the store's password kept out of every output.

Each scenario ends with the same check: over all its runs, the hub received exactly the
expected changes (an event twice only as an identical re-send, same message id), and the
store never records what the hub did not receive.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from eventhubs_localhub import LocalHub

from target_azure_eventhubs.changes import open_store
from target_azure_eventhubs.changes.tracker import ChangeTracker, Options
from target_azure_eventhubs.checkpoints import Checkpoints
from target_azure_eventhubs.delivery.connection import connection_from_config
from target_azure_eventhubs.delivery.encoding import Outbound
from target_azure_eventhubs.delivery.policy import options_from_config
from target_azure_eventhubs.delivery.sender import Delivery
from target_azure_eventhubs.events import ProfileEvent
from target_azure_eventhubs.testing import ReadEvent
from tests.changes.conftest import sqlite_store
from tests.changes.support import (
    HUB,
    PG_PASSWORD,
    STREAM,
    T_A,
    HubLog,
    StoreView,
    alive,
    assert_no_password,
    by_profile,
    change_counts,
    check_envelope,
    child_pids,
    counts,
    hashed_email,
    kill_with_children,
    profile_of,
    profile_record,
    row,
    snapshot,
    statuses,
    stream_schema,
    target_config,
    utc_now,
)
from tests.integration.target_runner import Result, run_target, state
from tests.postgres import PostgresServer
from tests.reliability.checks import (
    TargetProcess,
    assert_clear_error,
    hub_process,
    stored_count,
    wait_until,
)

T_B = "2025-05-05T11:00:00Z"
T_X = "2025-05-06T12:00:00Z"

Change = tuple[str, tuple[tuple[str, tuple[str, str | None]], ...]]


def change_of(event: ReadEvent) -> Change:
    return profile_of(event), tuple(sorted(statuses(event).items()))


def expected_change(profile: str, members: dict[str, tuple[str, str | None]]) -> Change:
    return profile, tuple(sorted(members.items()))


def assert_exact_changes(events: list[ReadEvent], expected: set[Change]) -> int:
    """The events are exactly the expected changes, each possibly more than once but then
    as the same event (same message id). Returns the number of duplicates."""
    ids: dict[Change, set[str | None]] = defaultdict(set)
    for event in events:
        ids[change_of(event)].add(event.message_id)
    unexpected = set(ids) - expected
    missing = expected - set(ids)
    assert not unexpected, f"changes that should not have been sent: {sorted(unexpected)}"
    assert not missing, f"changes never delivered: {sorted(missing)}"
    differing = {change: found for change, found in ids.items() if len(found) != 1}
    assert not differing, f"a change re-sent as a different event: {differing}"
    return len(events) - len(ids)


def assert_store_behind_hub(store: StoreView, events: list[ReadEvent], start: dict) -> None:
    """Every stored profile is where its events in the hub leave it, or where an earlier of
    them did (not yet recorded): never ahead of the hub. ``start``: the store before."""
    per_profile: dict[str, list[ReadEvent]] = defaultdict(list)
    for event in sorted(events, key=lambda e: (e.partition_id, e.sequence_number)):
        per_profile[profile_of(event)].append(event)
    stored = store.memberships()
    for profile in set(stored) | set(per_profile):
        states = [start.get(profile)]
        for event in per_profile.get(profile, []):
            # An event of a complete snapshot names only its rows' memberships: the others
            # stay as they were; exits leave.
            state = dict(states[-1] or {})
            for seg, (status, when) in statuses(event).items():
                if status == "exited":
                    state.pop(seg, None)
                else:
                    state[seg] = when
            states.append(state)
        kept = stored.get(profile)
        assert kept in states or (kept is None and states[-1] == {}), (
            f"the store holds {kept} for {profile}, which the hub never received: {states}"
        )


def assert_covered_recorded(store: StoreView, result: Result, audience: dict) -> None:
    """The changes of the records a failed run's last STATE covers are in the store (the
    STATE of paced input counts records, one a profile)."""
    last = result.states[-1]["records"] if result.states else 0
    stored = store.memberships()
    for profile in list(audience)[:last]:
        assert set(audience[profile]) <= set(stored[profile]), (profile, stored[profile])


def run(tmp_path: Path, config: dict[str, Any], messages: list, ok: bool = True) -> Result:
    result = run_target(tmp_path, config, messages, timeout=90)
    assert_no_password(result.stdout, result.stderr)
    if ok:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
    return result


def process_result(target: TargetProcess, timeout: float = 60) -> Result:
    result = target.wait(timeout)
    assert_no_password(result.stdout, result.stderr)
    return result


def fault_between(target: TargetProcess, messages: list, arrived, fault) -> None:
    """Feed the first third of ``messages``; once ``arrived()``, inject ``fault``; then
    feed the rest and end the input."""
    split = len(messages) // 3
    target.feed(messages[:split], close=False)
    assert wait_until(arrived, 30), target.stderr
    fault()
    assert target._feeder is not None
    target._feeder.join(10)
    target.feed(messages[split:])


# SIGKILL between the acknowledgement and the store's commit ----------------------------------


def accepted(target: TargetProcess) -> int:
    """Events the target reports accepted by the hub (its batch_send_duration metrics)."""
    return sum(
        point["tags"]["events"]
        for _, line in list(target.stderr_lines)
        if "METRIC: " in line
        and (point := json.loads(line.split("METRIC: ", 1)[1]))["metric"] == "batch_send_duration"
    )


@contextlib.contextmanager
def write_lock(store: StoreView) -> Iterator[None]:
    """Hold the store's write lock from another connection: reads go on, commits wait."""
    if store.sqlite_file is not None:
        db = sqlite3.connect(store.sqlite_file, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()
    else:
        with psycopg.connect(store.url) as conn:
            conn.execute("LOCK TABLE change_tracking_profiles IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()


def test_sigkill_after_the_acknowledgement_before_the_commit(
    store: StoreView, local_hub: LocalHub, tmp_path: Path
) -> None:
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, store.url, max_latency_ms=150)  # snapshot_end: none
    part_a = [
        stream_schema(),
        row("p1", "A", time=T_A),
        row("p2", "A", time=T_A),
        row("p3", "A"),
        state({"part": "A"}),
    ]
    part_b = [
        row("p1", "B", time=T_B),  # p1 gains B
        row("p2", "A", status="exited", time=T_X),  # p2 leaves A
        row("p4", "C"),  # a new profile, at the run's time
        row("p5", "A", time=T_A),
        state({"part": "B"}),
    ]
    target = TargetProcess(tmp_path, config)
    try:
        target.feed(part_a, close=False)
        assert wait_until(lambda: target.states() == [{"part": "A"}], 30), target.stderr
        first = by_profile(log.new())
        assert set(first) == {"p1", "p2", "p3"}
        t_run = statuses(first["p3"])["A"][1]
        after_a = store.memberships()
        assert after_a == {"p1": {"A": T_A}, "p2": {"A": T_A}, "p3": {"A": t_run}}

        with write_lock(store):
            target._feeder.join(10)  # type: ignore[union-attr]
            target.feed([stream_schema(), *part_b], close=False)
            assert wait_until(lambda: local_hub.event_count("profiles") == 7, 30), target.stderr
            # The target has the acknowledgement of all 7: its commit waits for the lock.
            assert wait_until(lambda: accepted(target) == 7, 30), target.stderr
            assert target.states() == [{"part": "A"}]  # no STATE before the commit
            sender = child_pids(target.proc.pid)
            assert sender, "the sender process is gone already"
            kill_with_children(target.proc.pid)
            killed = process_result(target, 30)
        assert killed.returncode == -signal.SIGKILL
        assert wait_until(lambda: not any(alive(pid) for pid in sender), 10)
    finally:
        kill_with_children(target.proc.pid)
        target.kill()

    delivered = log.new()
    check_envelope(delivered)
    got = by_profile(delivered)
    assert set(got) == {"p1", "p2", "p4", "p5"}
    assert store.memberships() == after_a  # none of them recorded
    assert_store_behind_hub(store, log.all, {})

    # The next run, from the last STATE: the same events again, the store then complete.
    again = run(tmp_path, config, [stream_schema(), *part_b])
    assert again.states == [{"part": "B"}]
    assert "the last run did not finish; deciding at its time" in again.stderr
    resent = log.new()
    assert sorted((e.message_id, e.body) for e in resent) == sorted(
        (e.message_id, e.body) for e in delivered
    )
    assert change_counts(again.stderr) == counts(4, 3, 1, 1, 0)
    expected = {
        expected_change("p1", {"A": ("realized", T_A)}),
        expected_change("p2", {"A": ("realized", T_A)}),
        expected_change("p3", {"A": ("realized", t_run)}),
        expected_change("p1", {"A": ("existing", T_A), "B": ("realized", T_B)}),
        expected_change("p2", {"A": ("exited", T_X)}),
        expected_change("p4", {"C": ("realized", t_run)}),
        expected_change("p5", {"A": ("realized", T_A)}),
    }
    assert assert_exact_changes(log.verify(), expected) == 4
    assert store.memberships() == {
        "p1": {"A": T_A, "B": T_B},
        "p2": {},
        "p3": {"A": t_run},
        "p4": {"C": t_run},
        "p5": {"A": T_A},
    }


def test_sigkill_while_exits_wait_for_their_commit(
    pg_url: str, local_hub: LocalHub, tmp_path: Path
) -> None:
    """The exits of a complete snapshot accepted, the target killed before the store
    recorded them (PostgreSQL: only the exits write to the profiles table in this run)."""
    store = StoreView(pg_url)
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, pg_url, snapshot_end="end_of_input")
    run(tmp_path, config, snapshot({f"p{i}": ["A", "B"] for i in range(6)}, times={"A": T_A}))
    assert len(log.new()) == 6
    before = store.rows()
    t1 = before["p0"][1]["B"]

    # p0..p3 unchanged, p4 lost B, p5 is gone: 3 of 12 memberships exit.
    shrunk = {**{f"p{i}": ["A", "B"] for i in range(4)}, "p4": ["A"]}
    messages = snapshot(shrunk, times={"A": T_A}, bookmark=2)
    target = TargetProcess(tmp_path, config)
    try:
        with write_lock(store):
            target.feed(messages)
            assert wait_until(lambda: local_hub.event_count("profiles") == 8, 30), target.stderr
            # The target has the acknowledgement of the 2 exits: their commit waits for the lock.
            assert wait_until(lambda: accepted(target) == 2, 30), target.stderr
            kill_with_children(target.proc.pid)
            killed = process_result(target, 30)
    finally:
        kill_with_children(target.proc.pid)
    assert killed.returncode == -signal.SIGKILL
    exits = log.new()
    check_envelope(exits)
    got = by_profile(exits)
    assert set(got) == {"p4", "p5"}
    now = statuses(got["p5"])["A"][1]
    assert statuses(got["p4"]) == {"A": ("existing", T_A), "B": ("exited", now)}
    assert statuses(got["p5"]) == {"A": ("exited", now), "B": ("exited", now)}
    assert store.rows() == before  # not recorded

    again = run(tmp_path, config, messages)
    assert again.states == [{"bookmarks": {STREAM: {"run": 2}}}]
    resent = log.new()
    assert sorted((e.message_id, e.body) for e in resent) == sorted(
        (e.message_id, e.body) for e in exits
    )
    assert change_counts(again.stderr) == counts(2, 0, 1, 3, 5)
    assert store.memberships() == {
        **{f"p{i}": {"A": T_A, "B": t1} for i in range(4)},
        "p4": {"A": T_A},
    }
    assert len(log.verify()) == 10


# The hub gone mid-snapshot --------------------------------------------------------------------


def audience(n: int, *, skip: range = range(0), gain_c: int = 0, lose_b: int = 0) -> dict:
    """Profiles p0..p{n-1} with A and B; every ``gain_c``-th also C, every ``lose_b``-th
    without B; those in ``skip`` absent."""
    out: dict[str, list[str]] = {}
    for i in range(n):
        if i in skip:
            continue
        segments = ["A"] if lose_b and i % lose_b == 0 else ["A", "B"]
        if gain_c and i % gain_c == 0:
            segments.append("C")
        out[f"p{i}"] = segments
    return out


def paced(audience: dict[str, list[str]], every: int) -> list:
    """A snapshot, one record a profile, with a STATE after every ``every`` records (and
    at the end)."""
    messages: list = [stream_schema()]
    for n, (profile, segments) in enumerate(audience.items(), start=1):
        messages.append(profile_record(profile, segments))
        if n % every == 0 or n == len(audience):
            messages.append(state({"records": n}))
    return messages


def test_hub_killed_mid_snapshot_then_the_next_run_fills_the_gap(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    with hub_process(tmp_path / "hub-data") as hub:
        log = HubLog(hub.connection_string())
        config = target_config(
            hub.connection_string(),
            store.url,
            snapshot_end="end_of_input",
            max_latency_ms=150,
            max_retries=2,
            retry_backoff_seconds=0.2,
            retry_backoff_max_seconds=0.5,
            send_timeout_seconds=2,
        )
        first = run(tmp_path, config, paced(audience(50), 25))
        assert change_counts(first.stderr) == counts(50, 100, 0, 0, 0)
        assert len(log.new()) == 50
        t1 = store.memberships()["p1"]["B"]
        before_outage = store.memberships()

        # Run 2: p0..p44 (every 3rd gains C, every 5th loses B), p50..p64 new; p45..p49 gone.
        changed = audience(65, skip=range(45, 50), gain_c=3, lose_b=5)
        messages = paced(changed, 10)
        started = utc_now()
        target = TargetProcess(tmp_path, config)
        try:
            # A third of the snapshot, the hub killed once some of it arrived, the rest.
            fault_between(target, messages, lambda: stored_count(hub) > 50, hub.kill)
            failed = process_result(target, 60)
        finally:
            kill_with_children(target.proc.pid)
        ended = utc_now()
        assert_clear_error(failed)
        [error] = [line.lower() for line in failed.stderr.splitlines() if "ERROR" in line]
        assert "event hub 'profiles'" in error and "gave up after 2 retries" in error, error
        final = {"records": len(changed)}
        assert final not in failed.states  # the snapshot's last STATE needs its exits

        hub.restart()
        outage = log.new()
        assert outage, "the outage came before any event of run 2"
        assert_store_behind_hub(store, outage, before_outage)
        assert_covered_recorded(store, failed, changed)

        third = run(tmp_path, config, messages)
        assert third.states[-1] == final
        rest = log.new()
        check_envelope(outage + rest)

    # Run 2's changes, decided at its time (run 3 decides at the same time).
    t2 = next(statuses(e)["B"][1] for e in rest + outage if profile_of(e) == "p51")
    assert started <= t2 <= ended
    expected: set[Change] = set()
    for i in range(65):
        profile = f"p{i}"
        if i >= 50:  # new: A at the input's time, the others at the run's
            realized = {s: ("realized", T_A if s == "A" else t2) for s in changed[profile]}
            expected.add(expected_change(profile, realized))
            continue
        was = {"A": ("existing", T_A), "B": ("existing", t1)}
        if i in range(45, 50):
            expected.add(expected_change(profile, {"A": ("exited", t2), "B": ("exited", t2)}))
            continue
        if i % 3 == 0:  # its event names its rows' memberships: B only if still there
            rows = {"A": was["A"], **({"B": was["B"]} if i % 5 else {})}
            expected.add(expected_change(profile, {**rows, "C": ("realized", t2)}))
            was["C"] = ("existing", t2)
        if i % 5 == 0:
            expected.add(expected_change(profile, {**was, "B": ("exited", t2)}))
    duplicates = assert_exact_changes(outage + rest, expected)
    assert duplicates <= len(outage)
    assert change_counts(third.stderr)["exited"] == 9 + 10  # no exit missed
    stored = store.memberships()
    assert set(stored) == {f"p{i}" for i in range(65) if i not in range(45, 50)}
    for profile, members in stored.items():
        assert set(members) == set(changed[profile]), (profile, members)
        assert members["A"] == T_A and members.get("B") in (None, t1, t2)


# PostgreSQL gone mid-run -----------------------------------------------------------------------


def test_postgres_stopped_mid_run(
    pg_server: PostgresServer, pg_url: str, local_hub: LocalHub, tmp_path: Path
) -> None:
    store = StoreView(pg_url)
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, pg_url, snapshot_end="end_of_input", max_latency_ms=150)
    run(tmp_path, config, paced({f"p{i}": ["A"] for i in range(40)}, 20))
    assert len(log.new()) == 40
    before = store.memberships()

    # Every profile gains B, p0..p3 are gone: paused PostgreSQL stops the run.
    changed = {f"p{i}": ["A", "B"] for i in range(4, 40)}
    messages = paced(changed, 6)
    target = TargetProcess(tmp_path, config)
    try:
        # A third of the input, PostgreSQL stopped once some of it arrived, the rest.
        fault_between(
            target, messages, lambda: local_hub.event_count("profiles") > 40, pg_server.pause
        )
        try:
            failed = process_result(target, 60)
        finally:
            pg_server.resume()
    finally:
        kill_with_children(target.proc.pid)
    assert_clear_error(failed)
    location = pg_url.replace(f":{PG_PASSWORD}@", "@")
    errors = [line for line in failed.stderr.splitlines() if "ERROR" in line]
    assert any(f"change store {location}: cannot" in line for line in errors), errors
    final = {"records": 36}
    assert final not in failed.states
    during = log.new()
    assert during
    assert_store_behind_hub(store, during, before)
    assert_covered_recorded(store, failed, changed)

    again = run(tmp_path, config, messages)
    assert again.states[-1] == final
    rest = log.new()
    check_envelope(during + rest)
    t2 = next(statuses(e)["B"][1] for e in during + rest if statuses(e).get("B"))
    expected = {
        expected_change(f"p{i}", {"A": ("existing", T_A), "B": ("realized", t2)})
        for i in range(4, 40)
    } | {expected_change(f"p{i}", {"A": ("exited", t2)}) for i in range(4)}
    duplicates = assert_exact_changes(during + rest, expected)
    assert duplicates <= len(during)
    assert len(log.verify()) == 40 + len(during) + len(rest)
    assert store.memberships() == {f"p{i}": {"A": T_A, "B": t2} for i in range(4, 40)}


# A truncated snapshot ----------------------------------------------------------------------


def test_truncated_snapshot_is_refused(local_hub: LocalHub, tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, store.url, snapshot_end="end_of_input")
    full = {f"p{i}": ["A", "B"] for i in range(10)}
    truncated = {f"p{i}": ["A", "B"] for i in range(4)}
    run(tmp_path, config, snapshot(full, times={"A": T_A}, bookmark="full"))
    assert len(log.new()) == 10
    stored = store.rows()

    # A STATE before the snapshot's first record, one inside it and one at its end.
    cut = snapshot(truncated, bookmark="cut")
    cut = [
        cut[0],
        state({"bookmarks": {STREAM: {"run": "before"}}}),
        *cut[1:4],
        state({"bookmarks": {STREAM: {"run": "inside"}}}),
        *cut[4:],
    ]
    refused = run(tmp_path, config, cut, ok=False)
    assert_clear_error(refused)
    assert refused.returncode == 1
    [error] = [line for line in refused.stderr.splitlines() if "ERROR" in line]
    assert f"stream '{STREAM}'" in error
    assert "would exit 12 of its 20 delivered memberships" in error
    assert "max_exit_fraction 0.5" in error
    assert "max_exit_fraction of at least 0.60" in error
    assert log.new() == []  # no exit event
    assert store.rows() == stored
    assert change_counts(refused.stderr) == counts(0, 0, 0, 0, 4)
    # A refused snapshot moves no bookmark: no STATE at or after its first record is
    # written, so the next run reads the whole snapshot again; the exits stay in the store.
    assert refused.states == [{"bookmarks": {STREAM: {"run": "before"}}}]

    complete = run(tmp_path, config, snapshot(full, times={"A": T_A}, bookmark="full"))
    assert complete.states == [{"bookmarks": {STREAM: {"run": "full"}}}]
    assert log.new() == []
    assert change_counts(complete.stderr) == counts(0, 0, 0, 0, 10)
    assert store.rows() == stored

    before = utc_now()
    shrink = run(tmp_path, {**config, "max_exit_fraction": 1}, snapshot(truncated, bookmark=3))
    after = utc_now()
    assert shrink.states == [{"bookmarks": {STREAM: {"run": 3}}}]
    exits = log.new()
    check_envelope(exits)
    got = by_profile(exits)
    assert set(got) == {f"p{i}" for i in range(4, 10)}
    when = statuses(got["p4"])["A"][1]
    assert when is not None and before <= when <= after
    for event in exits:
        assert statuses(event) == {"A": ("exited", when), "B": ("exited", when)}
    assert change_counts(shrink.stderr) == counts(6, 0, 0, 12, 4)
    assert set(store.rows()) == {f"p{i}" for i in range(4)}
    assert len(log.verify()) == 16


# Runners side by side ---------------------------------------------------------------------


def test_two_runners_share_a_postgres_store(pg_url: str, local_hub: LocalHub, tmp_path: Path):
    store = StoreView(pg_url)
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, pg_url, max_latency_ms=150)  # snapshot_end: none
    before = utc_now()
    runners = []
    try:
        for half in (range(0, 20), range(20, 40)):
            messages = paced({f"p{i}": ["A", "B"] for i in half}, 8)
            runner = TargetProcess(tmp_path, config)
            runner.feed(messages[:10], close=False)  # 8 records and their STATE
            runners.append((runner, messages[10:]))
        # Both have recorded changes in the store and wait for more input: at once.
        for runner, _ in runners:
            assert wait_until(lambda r=runner: r.states() == [{"records": 8}], 30), runner.stderr
        for runner, rest in runners:
            assert runner._feeder is not None
            runner._feeder.join(10)
            runner.feed(rest, chunk=4, delay=0.05)
        results = [process_result(runner, 60) for runner, _ in runners]
    finally:
        for runner, _ in runners:
            kill_with_children(runner.proc.pid)
    after = utc_now()
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.states[-1] == {"records": 20}
        assert change_counts(result.stderr) == counts(20, 40, 0, 0, 0)
    events = log.verify()
    check_envelope(events)
    got = by_profile(events)
    assert set(got) == {f"p{i}" for i in range(40)}
    for event in events:
        when = statuses(event)["B"][1]
        assert when is not None and before <= when <= after
        assert statuses(event) == {"A": ("realized", T_A), "B": ("realized", when)}
    rows = store.rows()
    assert set(rows) == set(got)
    for profile, (ids, members) in rows.items():
        assert ids == hashed_email(profile)
        assert members == {"A": T_A, "B": statuses(got[profile])["B"][1]}


def test_a_second_snapshot_of_a_stream_on_postgres_is_refused(
    pg_url: str, local_hub: LocalHub, tmp_path: Path
) -> None:
    store = StoreView(pg_url)
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, pg_url, snapshot_end="end_of_input", max_latency_ms=150)
    first = TargetProcess(tmp_path, config)
    try:
        first.feed(
            [stream_schema(), profile_record("p1", ["A"]), state({"n": 1})], close=False
        )  # its snapshot of the stream has begun once p1's event is in the hub
        assert wait_until(lambda: len(local_hub.events("profiles")) == 1, 30), first.stderr
        assert first.states() == []  # a STATE inside the snapshot waits for its end
        second = run(tmp_path, config, paced({"p7": ["A"], "p8": ["A"]}, 1), ok=False)
        assert first._feeder is not None
        first._feeder.join(10)
        first.feed([profile_record("p2", ["A", "B"]), state({"n": 2})])
        done = process_result(first, 60)
    finally:
        kill_with_children(first.proc.pid)
    assert_clear_error(second)
    assert second.states == []
    [error] = [line for line in second.stderr.splitlines() if "ERROR" in line]
    assert f"another run is taking a snapshot of stream '{STREAM}'" in error
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.states in ([{"n": 2}], [{"n": 1}, {"n": 2}])  # both wait for its end
    events = log.verify()
    check_envelope(events)
    assert set(by_profile(events)) == {"p1", "p2"}  # nothing of the second run
    stored = store.memberships()
    assert set(stored) == {"p1", "p2"}
    assert stored["p1"] == {"A": T_A} and set(stored["p2"]) == {"A", "B"}


def test_a_second_runner_on_a_sqlite_store_is_refused(local_hub: LocalHub, tmp_path: Path):
    store = sqlite_store(tmp_path)
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, store.url)
    first = TargetProcess(tmp_path, config)
    try:
        first.feed([stream_schema(), row("p1", "A", time=T_A), state({"n": 1})], close=False)
        assert wait_until(lambda: first.states() == [{"n": 1}], 30), first.stderr
        second = run(tmp_path, config, snapshot({"p2": ["A"]}), ok=False)
        first._feeder.join(10)  # type: ignore[union-attr]
        first.feed([row("p3", "A", time=T_A), state({"n": 2})])
        done = process_result(first, 60)
    finally:
        kill_with_children(first.proc.pid)
    assert_clear_error(second)
    assert second.states == []
    [error] = [line for line in second.stderr.splitlines() if "ERROR" in line]
    assert f"change store {store.url} is in use by another run" in error
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.states == [{"n": 1}, {"n": 2}]
    events = log.verify()
    assert set(by_profile(events)) == {"p1", "p3"}
    assert store.memberships() == {"p1": {"A": T_A}, "p3": {"A": T_A}}
    assert store.sqlite_file is not None
    with contextlib.closing(sqlite3.connect(store.sqlite_file)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


# Secrets ----------------------------------------------------------------------------------


def test_the_store_password_never_shows(
    pg_server: PostgresServer, pg_url: str, local_hub: LocalHub, tmp_path: Path
) -> None:
    log = HubLog(local_hub.connection_string(), local_hub)
    config = target_config(log.conn_str, pg_url)
    ok = run(tmp_path, config, snapshot({"p1": ["A"]}))
    location = pg_url.replace(f":{PG_PASSWORD}@", "@")
    assert f"Change tracking: store {location}" in ok.stderr
    assert len(log.new()) == 1

    wrong = "Wrong-Password-v6Hs1Tq"
    refused = run(
        tmp_path, {**config, "change_store": pg_url.replace(PG_PASSWORD, wrong)}, [], ok=False
    )
    assert refused.returncode == 1
    assert_clear_error(refused)
    assert_no_password(refused.stdout, refused.stderr, password=wrong)
    assert f"change store {location}: cannot open" in refused.stderr

    unreachable = pg_url.replace(f":{pg_server.port}/", ":1/")
    down = run(tmp_path, {**config, "change_store": unreachable}, snapshot({"p2": ["A"]}), False)
    assert_clear_error(down)
    assert "cannot open" in down.stderr and "127.0.0.1:1/" in down.stderr
    assert log.new() == []  # nothing sent that the store could not record

    # A password whose `/` is not percent-encoded would be read as the host's port.
    cut = "Cut-Password/v6Hs1Tq"
    cut_url = pg_url.replace(PG_PASSWORD, cut)
    unreadable = run(tmp_path, {**config, "change_store": cut_url}, snapshot({"p3": ["A"]}), False)
    assert_clear_error(unreadable)
    assert_no_password(unreadable.stdout, unreadable.stderr, password=cut)
    assert "Cut-Pass" not in unreadable.stderr and "v6Hs1Tq" not in unreadable.stderr
    assert "must be percent-encoded" in unreadable.stderr
    assert len(log.verify()) == 1  # the first run's event only


# Flush: accepted and recorded ---------------------------------------------------------------


def test_flush_returns_once_the_accepted_changes_are_recorded(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    """A complete snapshot is compared with the store right after a flush: by then every
    accepted event's decisions must be in the store, even when writing them takes a while
    (here: the store's write lock held by another connection for a second)."""
    store = sqlite_store(tmp_path)
    tracker = ChangeTracker(open_store(store.url), Options())
    written: list[bytes] = []
    checkpoints = Checkpoints(written.append, tracker)
    config = {"connection_string": local_hub.connection_string(), "eventhub_name": "profiles"}
    delivery = Delivery(
        connection_from_config(config), options_from_config(config), checkpoints.post
    )
    try:
        [(decision, change)] = tracker.decide(
            STREAM, [("p1", ProfileEvent(hashed_email("p1"), {}, {"A": {}}))]
        )
        assert store.sqlite_file is not None
        locker = sqlite3.connect(store.sqlite_file, isolation_level=None, check_same_thread=False)
        locker.execute("BEGIN IMMEDIATE")
        delivery.submit(HUB, [("p1", Outbound(b'{"p": 1}', {"stream": STREAM}))])
        checkpoints.note([change])
        mark = checkpoints.place(b'{"n": 1}')
        assert mark is not None
        delivery.checkpoint(mark)
        assert wait_until(lambda: local_hub.event_count("profiles") == 1, 10)
        time.sleep(0.2)  # accepted; the commit waits for the lock
        unlock = threading.Timer(1.0, lambda: locker.execute("ROLLBACK"))
        unlock.start()
        assert delivery.flush(10)
        checkpoints.apply()  # the owner commits, waiting for the lock, then writes STATE
        assert store.memberships() == {"p1": decision.after.memberships}
        assert written == [b'{"n": 1}']
        unlock.join()
        locker.close()
    finally:
        delivery.close(5)
        tracker.close()
