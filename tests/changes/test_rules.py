"""The rules of change tracking (`changes.diff`), the decisions of a run (`ChangeTracker`,
with a real SQLite store) and the store itself, SQLite and PostgreSQL alike."""

from __future__ import annotations

import socket
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from target_azure_eventhubs.changes import open_store
from target_azure_eventhubs.changes.diff import (
    Decision,
    Delivered,
    Given,
    diff_profile,
    exit_missing,
    fingerprint,
    identity_json,
)
from target_azure_eventhubs.changes.store import DEFAULT_STORE, Missing, safe_location
from target_azure_eventhubs.changes.tracker import ChangeTracker, Counts, Options, Refused
from target_azure_eventhubs.errors import ChangeStoreError, ConfigurationError, SnapshotGuardError
from target_azure_eventhubs.events import ProfileEvent
from target_azure_eventhubs.events.settings import ConversionSettings
from target_azure_eventhubs.sink import HeldRows, settings_tag
from tests.changes.support import PG_PASSWORD, StoreView, utc_now
from tests.waiting import wait_until

S = "audiences"
NOW = "2026-03-01T12:00:00Z"
T0 = "2025-01-01T00:00:00Z"
T1 = "2025-06-01T08:30:00Z"
IDS = {"email_lc_sha256": ["h1"]}
ATTRS = {"person": {"name": {"firstName": "Ann", "lastName": "Lee"}}}


def delivered(members: dict[str, str], ids=IDS, attrs=ATTRS) -> Delivered:
    return Delivered(
        identity_json({ns: list(v) for ns, v in ids.items()}), fingerprint(attrs), dict(members)
    )


def diff(before, identities, attributes, memberships, now, *, carry=True):
    return diff_profile(before, Given.of(identities, attributes, memberships), now, carry=carry)


def realized(when: str) -> dict[str, str]:
    return {"status": "realized", "lastQualificationTime": when}


def existing(when: str) -> dict[str, str]:
    return {"status": "existing", "lastQualificationTime": when}


def exited(when: str) -> dict[str, str]:
    return {"status": "exited", "lastQualificationTime": when}


def assert_counted(decision: Decision) -> None:
    """A decision counts exactly the statuses its event carries."""
    found = Counter(entry["status"] for entry in decision.memberships.values())
    assert (decision.realized, decision.existing, decision.exited) == (
        found["realized"],
        found["existing"],
        found["exited"],
    )


# The diff: before -> input -> event and after ------------------------------------------------

# (name, before, identities, attributes, input memberships, event memberships or None
#  for "no event", the memberships the store keeps after)
DIFF_CASES = [
    ("enter at the run's time", None, IDS, ATTRS, {"A": {}}, {"A": realized(NOW)}, {"A": NOW}),
    (
        "enter at the input's time",
        None,
        IDS,
        ATTRS,
        {"A": {"lastQualificationTime": T1}},
        {"A": realized(T1)},
        {"A": T1},
    ),
    ("stay: unchanged, no event", delivered({"A": T0}), IDS, ATTRS, {"A": {}}, None, None),
    (
        "stay keeps the delivered time whatever the input says",
        delivered({"A": T0}),
        IDS,
        ATTRS,
        {"A": {"lastQualificationTime": T1, "status": "realized"}},
        None,
        None,
    ),
    (
        "a new membership next to a delivered one",
        delivered({"A": T0}),
        IDS,
        ATTRS,
        {"A": {}, "B": {}},
        {"A": existing(T0), "B": realized(NOW)},
        {"A": T0, "B": NOW},
    ),
    (
        "delivered memberships the input does not name are carried as existing",
        delivered({"A": T0, "B": T1}),
        IDS,
        ATTRS,
        {"C": {"lastQualificationTime": T1}},
        {"A": existing(T0), "B": existing(T1), "C": realized(T1)},
        {"A": T0, "B": T1, "C": T1},
    ),
    (
        "explicit exit of a delivered membership, at the input's time",
        delivered({"A": T0, "B": T0}),
        IDS,
        ATTRS,
        {"B": {"status": "exited", "lastQualificationTime": T1}},
        {"A": existing(T0), "B": exited(T1)},
        {"A": T0},
    ),
    (
        "explicit exit of a delivered membership, at the run's time",
        delivered({"A": T0}),
        IDS,
        ATTRS,
        {"A": {"status": "exited"}},
        {"A": exited(NOW)},
        {},
    ),
    (
        "explicit exit of a membership never delivered: nothing to end",
        delivered({"A": T0}),
        IDS,
        ATTRS,
        {"X": {"status": "exited", "lastQualificationTime": T1}},
        None,
        None,
    ),
    (
        "a new profile whose only membership is an unknown exit: nothing to tell, no event",
        None,
        IDS,
        ATTRS,
        {"X": {"status": "exited"}},
        None,
        None,
    ),
    (
        "a new profile with no membership at all: no event",
        None,
        IDS,
        ATTRS,
        {},
        None,
        None,
    ),
    (
        "attribute-only change",
        delivered({"A": T0}),
        IDS,
        {"person": {"name": {"firstName": "Anna", "lastName": "Lee"}}},
        {"A": {}},
        {"A": existing(T0)},
        {"A": T0},
    ),
    (
        "identity-only change",
        delivered({"A": T0}),
        {"email_lc_sha256": ["h2"]},
        ATTRS,
        {"A": {}},
        {"A": existing(T0)},
        {"A": T0},
    ),
    (
        "identity order does not matter",
        delivered({"A": T0}, ids={"email_lc_sha256": ["h1", "h2"], "crmId": ["c1"]}),
        {"crmId": ["c1"], "email_lc_sha256": ["h2", "h1"]},
        ATTRS,
        {"A": {}},
        None,
        None,
    ),
    (
        "attribute key order does not matter",
        delivered({"A": T0}),
        IDS,
        {"person": {"name": {"lastName": "Lee", "firstName": "Ann"}}},
        {"A": {}},
        None,
        None,
    ),
    (
        "the membership's name travels with it",
        None,
        IDS,
        ATTRS,
        {"A": {"name": "Gold tier", "lastQualificationTime": T1}},
        {"A": {"name": "Gold tier", **realized(T1)}},
        {"A": T1},
    ),
]


@pytest.mark.parametrize(
    ("before", "identities", "attributes", "memberships", "event", "after"),
    [case[1:] for case in DIFF_CASES],
    ids=[case[0] for case in DIFF_CASES],
)
def test_diff_profile(before, identities, attributes, memberships, event, after) -> None:
    decision = diff(before, identities, attributes, memberships, NOW)
    if event is None:
        assert decision is None
        return
    assert decision is not None
    assert decision.memberships == event
    assert_counted(decision)
    assert decision.after == Delivered(identity_json(identities), fingerprint(attributes), after)


def test_leave_then_reenter_is_realized_again_at_the_new_time() -> None:
    first = diff(None, IDS, ATTRS, {"A": {}, "B": {}}, T0)
    assert first is not None and first.after is not None
    left = exit_missing(first.after, ["B"], T1, present=True)
    assert left.memberships == {"A": existing(T0), "B": exited(T1)}
    assert left.after is not None
    back = diff(left.after, IDS, ATTRS, {"A": {}, "B": {}}, NOW)
    assert back is not None
    assert back.memberships == {"A": existing(T0), "B": realized(NOW)}
    assert back.after == delivered({"A": T0, "B": NOW})


EXIT_CASES = [
    (
        "absent from the snapshot, every membership missing: leaves the store",
        {"A": T0, "B": T1},
        ["A", "B"],
        False,
        {"A": exited(NOW), "B": exited(NOW)},
        None,
    ),
    (
        "absent from the snapshot, one membership missing: keeps the other",
        {"A": T0, "B": T1},
        ["A"],
        False,
        {"A": exited(NOW), "B": existing(T1)},
        {"A": None, "B": T1},
    ),
    (
        "present in the snapshot, every membership missing: keeps its row",
        {"A": T0},
        ["A"],
        True,
        {"A": exited(NOW)},
        {},
    ),
]


@pytest.mark.parametrize(
    ("members", "missing", "present", "event", "kept"),
    [case[1:] for case in EXIT_CASES],
    ids=[case[0] for case in EXIT_CASES],
)
def test_exit_missing(members, missing, present, event, kept) -> None:
    before = delivered(members, ids={"email_lc_sha256": ["h9"], "crmId": ["c9"]})
    decision = exit_missing(before, missing, NOW, present=present)
    assert decision.memberships == event
    assert_counted(decision)
    if kept is None:
        assert decision.after is None
    else:
        kept = {seg: when for seg, when in kept.items() if when is not None}
        # The stored identity map and attributes fingerprint stay: nothing new was sent.
        assert decision.after == Delivered(before.identity_json, before.attributes_fp, kept)


# The tracker, on a real SQLite store ------------------------------------------------------


def profile(members: dict[str, dict], ids=IDS, attrs=ATTRS) -> ProfileEvent:
    return ProfileEvent({ns: list(v) for ns, v in ids.items()}, dict(attrs), members)


def sqlite_view(tmp_path: Path) -> StoreView:
    path = tmp_path / "changes.sqlite"
    return StoreView(f"sqlite:///{path}", path)


def tracker_on(view: StoreView, **options) -> ChangeTracker:
    return ChangeTracker(open_store(view.url), Options(**options))


def test_later_rows_of_a_profile_see_the_uncommitted_decision(tmp_path: Path) -> None:
    view = sqlite_view(tmp_path)
    tracker = tracker_on(view)
    before = utc_now()
    [first] = tracker.decide(S, [("p1", profile({"A": {}}))])
    after = utc_now()
    assert isinstance(first, tuple)
    when = first[0].memberships["A"]["lastQualificationTime"]
    assert first[0].memberships == {"A": realized(when)}
    assert before <= when <= after
    assert view.rows() == {}  # nothing accepted yet: nothing in the store

    [second] = tracker.decide(S, [("p1", profile({"A": {}, "B": {}}))])
    assert isinstance(second, tuple)
    assert second[0].memberships == {"A": existing(when), "B": realized(when)}
    [third] = tracker.decide(S, [("p1", profile({"A": {}, "B": {}}))])
    assert third is None  # unchanged against the overlay
    assert view.rows() == {}

    tracker.register(1, [first[1], second[1]])
    tracker.commit_through(1)
    assert view.memberships() == {"p1": {"A": when, "B": when}}  # the latest state counts
    tracker.close()


def test_commit_through_writes_only_the_marks_up_to_it(tmp_path: Path) -> None:
    view = sqlite_view(tmp_path)
    tracker = tracker_on(view)
    changes = {}
    for key in ("p1", "p2", "p3"):
        [(_, change)] = tracker.decide(S, [(key, profile({"A": {"lastQualificationTime": T1}}))])
        changes[key] = change
    tracker.register(1, [changes["p1"]])
    tracker.register(2, [changes["p2"]])
    tracker.register(3, [changes["p3"]])
    tracker.commit_through(2)
    assert view.memberships() == {"p1": {"A": T1}, "p2": {"A": T1}}
    assert tracker.uncommitted() == 1
    tracker.commit_through(2)  # released again: nothing more
    assert set(view.rows()) == {"p1", "p2"}
    tracker.commit_through(3)
    assert view.memberships() == {key: {"A": T1} for key in ("p1", "p2", "p3")}
    assert tracker.uncommitted() == 0
    # A decision never registered (its event never submitted) is never written.
    tracker.decide(S, [("p4", profile({"A": {}}))])
    tracker.commit_through(9)
    assert "p4" not in view.rows()
    tracker.close()


def test_counts_of_a_batch(tmp_path: Path) -> None:
    view = sqlite_view(tmp_path)
    tracker = tracker_on(view)
    seed = tracker.decide(
        S,
        [
            ("p1", profile({"A": {"lastQualificationTime": T0}, "B": {}})),
            ("p2", profile({"A": {}})),
        ],
    )
    tracker.register(1, [r[1] for r in seed if isinstance(r, tuple)])
    tracker.commit_through(1)
    tracker.finish()
    tracker.close()

    tracker = tracker_on(view)
    results = tracker.decide(
        S,
        [
            ("p1", profile({"A": {}, "B": {"status": "exited"}, "C": {}})),  # 1/1/1
            ("p2", profile({"A": {}})),  # unchanged
            ("p3", profile({"A": {}, "B": {}})),  # 2 realized
        ],
    )
    assert results[1] is None
    assert tracker.counts == {S: Counts(events=2, realized=3, existing=1, exited=1, unchanged=1)}
    tracker.close()


def test_baseline_records_without_events(tmp_path: Path) -> None:
    view = sqlite_view(tmp_path)
    tracker = tracker_on(view, baseline=True)
    results = tracker.decide(
        S,
        [("p1", profile({"A": {"lastQualificationTime": T1}})), ("p2", profile({"B": {}}))],
    )
    assert results == [None, None]  # nothing to send
    assert tracker.uncommitted() == 0
    stored = view.memberships()  # committed at once
    assert stored["p1"] == {"A": T1}
    assert list(stored["p2"]) == ["B"]
    assert tracker.counts[S] == Counts(events=2, realized=2)
    tracker.close()


def seed_store(view: StoreView, audience: dict[str, dict[str, str]]) -> None:
    tracker = tracker_on(view)
    results = tracker.decide(
        S,
        [
            (key, profile({seg: {"lastQualificationTime": t} for seg, t in members.items()}))
            for key, members in audience.items()
        ],
    )
    tracker.register(1, [r[1] for r in results if isinstance(r, tuple)])
    tracker.commit_through(1)
    tracker.finish()
    tracker.close()


def test_snapshot_guard_exits_nothing_and_keeps_the_store(tmp_path: Path) -> None:
    view = sqlite_view(tmp_path)
    seed_store(view, {"p1": {"A": T0, "B": T0}, "p2": {"A": T0}, "p3": {"C": T0}})
    stored = view.rows()

    tracker = tracker_on(view, snapshot_end="end_of_input", max_exit_fraction=0.5)
    assert tracker.decide(S, [("p1", profile({"A": {}}))]) == [None]  # B is carried
    with pytest.raises(SnapshotGuardError) as raised:
        next(tracker.exits(S))
    message = str(raised.value)
    assert f"stream '{S}'" in message
    assert "3 of its 4 delivered memberships (75%; the most in segment 'A': 1 of 2)" in message
    assert "max_exit_fraction 0.5 allows" in message and "at least 0.75" in message
    assert view.rows() == stored
    tracker.close()

    # The same shrink allowed: the exits come, absent profiles leave the store on commit.
    tracker = tracker_on(view, snapshot_end="end_of_input", max_exit_fraction=1)
    assert tracker.decide(S, [("p1", profile({"A": {}}))]) == [None]
    now = tracker.store.run_time(S, "unused", record=False)  # the failed run's time
    out = [item for batch in tracker.exits(S) for item in batch]
    events = {key: decision.memberships for key, _, decision, _ in out}
    assert events == {
        "p1": {"A": existing(T0), "B": exited(now)},
        "p2": {"A": exited(now)},
        "p3": {"C": exited(now)},
    }
    for _, event_profile, _, _ in out:
        assert event_profile.identities == IDS  # as stored
        assert event_profile.attributes == {}
    assert view.rows() == stored  # not before their events are accepted
    tracker.register(1, [change for *_, change in out])
    tracker.commit_through(1)
    assert view.memberships() == {"p1": {"A": T0}}
    assert tracker.counts[S] == Counts(events=3, existing=1, exited=3, unchanged=1)
    tracker.close()


# The store, SQLite and PostgreSQL -----------------------------------------------------------

D1 = delivered({"A": T0, "B": T1})
D2 = delivered({"C": T1}, ids={"crmId": ["c2"]})
D3 = delivered({}, attrs={})


def test_store_load_commit_delete(store: StoreView) -> None:
    first = open_store(store.url)
    assert first.created
    first.commit([(S, "p1", D1), (S, "p2", D2), ("other", "p1", D3)])
    assert first.load(S, ["p1", "p2", "p3"]) == {"p1": D1, "p2": D2}
    assert first.load("other", ["p1", "p2"]) == {"p1": D3}
    first.commit([(S, "p1", None), (S, "p2", D1)])
    assert first.load(S, ["p1", "p2"]) == {"p2": D1}
    first.commit([(S, "p9", D1), ("other", "p9", D2), (S, "p9", D3)])  # the last write wins
    assert first.load(S, ["p9"]) == {"p9": D3} and first.load("other", ["p9"]) == {"p9": D2}
    first.commit([(S, "p9", None), ("other", "p9", None)])
    many = [(S, f"k{n:04}", D2) for n in range(1200)]  # more keys than one query takes
    first.commit(many)
    assert len(first.load(S, [key for _, key, _ in many])) == 1200
    assert first.has_profiles(S) and not first.has_profiles("nothing")
    first.close()
    again = open_store(store.url)
    assert not again.created
    assert again.load("other", ["p1"]) == {"p1": D3}
    again.close()
    assert store.memberships("other") == {"p1": {}}


def test_store_compares_a_snapshot(store: StoreView) -> None:
    db = open_store(store.url)
    db.commit(
        [
            (S, "p1", delivered({"A": T0, "B": T0})),
            (S, "p2", delivered({"A": T0})),
            (S, "p3", delivered({"C": T0})),
            (S, "p4", delivered({})),  # seen below, no membership: stays
            (S, "p5", delivered({"D": T1})),
            (S, "p7", delivered({})),  # not seen, no membership: removed at the end
            ("other", "p2", delivered({"A": T0})),
        ]
    )
    db.mark_seen(S, [("p1", ["A"]), ("p3", ["C"])])
    db.mark_seen(S, [("p4", []), ("p6", ["X"]), ("p3", ["E"])])
    assert db.find_missing(S) == {"A": (2, 1), "B": (1, 1), "C": (1, 0), "D": (1, 1)}
    pages = list(db.iter_missing(S, batch=2))
    assert pages == [
        [
            Missing("p1", delivered({"A": T0, "B": T0}), ["B"], True),
            Missing("p2", delivered({"A": T0}), ["A"], False),
        ],
        [Missing("p5", delivered({"D": T1}), ["D"], False)],
    ]
    db.mark_seen("other", [("p2", ["A"])])  # another stream's snapshot, under way
    db.end_snapshot(S, record=True)
    assert set(store.rows()) == {"p1", "p2", "p3", "p4", "p5"}
    assert set(store.rows("other")) == {"p2"}
    # The seen memberships are gone with the snapshot: now everything is missing.
    assert db.find_missing(S) == {"A": (2, 2), "B": (1, 1), "C": (1, 1), "D": (1, 1)}
    db.end_snapshot(S, record=False)
    # The other stream's seen rows outlive the end of this one's snapshot.
    assert db.find_missing("other") == {"A": (1, 0)}
    db.end_snapshot("other", record=True)
    assert db.find_missing("other") == {"A": (1, 1)}
    db.end_snapshot("other", record=False)
    db.close()


def test_store_run_time(store: StoreView) -> None:
    db = open_store(store.url)
    assert db.run_time(S, "2026-01-01T00:00:01Z", record=True) == "2026-01-01T00:00:01Z"
    db.close()
    db = open_store(store.url)  # the run above never finished: its time is reused
    assert db.run_time(S, "2026-01-02T00:00:00Z", record=True) == "2026-01-01T00:00:01Z"
    assert db.run_time("other", "2026-01-02T00:00:00Z", record=False) == "2026-01-02T00:00:00Z"
    db.finish_run([S])
    assert db.run_time(S, "2026-01-03T00:00:00Z", record=True) == "2026-01-03T00:00:00Z"
    # A dry run (record=False) leaves no run behind.
    assert db.run_time("other", "2026-01-04T00:00:00Z", record=True) == "2026-01-04T00:00:00Z"
    db.close()


def test_safe_location_hides_the_password() -> None:
    url = "postgresql://loader:s3cr%40t-pw@db.example.com:5433/crm?sslmode=require"
    shown = safe_location(url)
    assert shown == "postgresql://loader@db.example.com:5433/crm?sslmode=require"
    assert safe_location("sqlite:///x/changes.sqlite") == "sqlite:///x/changes.sqlite"
    assert safe_location("postgresql://db.example.com/crm") == "postgresql://db.example.com/crm"


# Passwords whose special characters are not percent-encoded: a URL parser reads a part of
# them as the host, port, path or query, and would show it.
UNREADABLE_URLS = [
    "postgresql://loader:Pw-part1/Pw-part2@db.example.com/crm",  # `/`: port "Pw-part1"
    "postgresql://loader:31337/Pw-part2@db.example.com/crm",  # `/`: port 31337, path shown
    "postgresql://loader:Pw-part1#Pw-part2@db.example.com/crm",  # `#`
    "postgresql://loader:31337?Pw-part2@db.example.com/crm",  # `?`: the rest is a query
    "postgresql://loader:Pw-part1@Pw-part2@db.example.com/crm",  # `@`: libpq's host "Pw-part2@..."
    "postgresql://loader:Pw-part1@[db.example.com/crm",  # not a URL at all
]


@pytest.mark.parametrize("url", UNREADABLE_URLS)
def test_a_store_url_that_cannot_be_read_safely_is_refused_unshown(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        open_store(url)
    message = str(raised.value)
    assert "Pw-part" not in message and "31337" not in message
    assert "percent-encoded" in message


def test_a_password_given_as_a_query_parameter_is_hidden_too() -> None:
    url = "postgresql://loader@db.example.com/crm?sslmode=require&password=Pw-query-1"
    assert safe_location(url) == "postgresql://loader@db.example.com/crm?sslmode=require"


def test_postgres_store_never_shows_its_password(pg_url: str) -> None:
    db = open_store(pg_url)
    assert PG_PASSWORD not in db.location and "@127.0.0.1:" in db.location
    db.close()
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    url = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{closed}/crm"
    with pytest.raises(ChangeStoreError) as raised:
        open_store(url)
    message = str(raised.value)
    assert message.startswith(f"change store postgresql://postgres@127.0.0.1:{closed}/crm: ")
    assert "cannot open" in message
    assert PG_PASSWORD not in message
    with pytest.raises(ConfigurationError) as wrong:
        open_store(f"mysql://postgres:{PG_PASSWORD}@127.0.0.1/crm")
    assert PG_PASSWORD not in str(wrong.value) and "mysql://postgres@127.0.0.1/crm" in str(
        wrong.value
    )


def test_a_corrupt_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "changes.sqlite"
    path.write_bytes(b"this is not a database, " * 200)
    with pytest.raises(ChangeStoreError) as raised:
        open_store(f"sqlite:///{path}")
    message = str(raised.value)
    assert f"change store sqlite:///{path}: cannot open" in message
    assert "not a database" in message


def test_sqlite_store_serves_one_run_at_a_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/changes.sqlite"
    first = open_store(url)
    first.commit([(S, "p1", D1)])
    with pytest.raises(ChangeStoreError, match="is in use by another run") as raised:
        open_store(url)
    assert "PostgreSQL" in str(raised.value)  # says what to do instead
    first.close()
    second = open_store(url)
    assert second.load(S, ["p1"]) == {"p1": D1}
    second.close()
    with sqlite3.connect(tmp_path / "changes.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_without_posix_file_locks_the_sqlite_store_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on Windows, where `fcntl` does not exist: one clear reason, nothing created."""
    from target_azure_eventhubs.changes import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "fcntl", None)
    with pytest.raises(ChangeStoreError, match="POSIX file locks") as raised:
        open_store(f"sqlite:///{tmp_path}/changes.sqlite")
    assert "postgresql://" in str(raised.value)
    assert not (tmp_path / "changes.sqlite").exists()


def test_the_package_says_which_systems_it_runs_on() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[2]
    classifiers = tomllib.loads((root / "pyproject.toml").read_text())["project"]["classifiers"]
    systems = {c for c in classifiers if c.startswith("Operating System")}
    assert systems == {"Operating System :: POSIX :: Linux", "Operating System :: MacOS"}
    assert "Windows is not supported" in (root / "README.md").read_text()


def test_default_store_is_created_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = open_store(DEFAULT_STORE)
    path = tmp_path / ".target-azure-eventhubs" / "changes.sqlite"
    assert db.created and path.exists()
    assert db.location == f"sqlite:///{path}"
    db.close()


def test_postgres_snapshot_of_a_stream_is_owned_by_one_run(pg_url: str) -> None:
    first, second = open_store(pg_url), open_store(pg_url)
    first.begin_snapshot(S)  # the tracker claims it before deciding anything
    first.mark_seen(S, [("p1", ["A"])])
    for claim in (lambda: second.begin_snapshot(S), lambda: second.mark_seen(S, [("p2", [])])):
        with pytest.raises(ChangeStoreError) as raised:
            claim()
        message = str(raised.value)
        assert f"another run is taking a snapshot of stream '{S}'" in message
        assert PG_PASSWORD not in message
    second.mark_seen("other", [("p2", ["A"])])  # another stream is free
    first.end_snapshot(S, record=True)
    second.mark_seen(S, [("p2", ["A"])])  # released with the snapshot
    second.close()

    # Released when its session ends (the server notices the closed connection at once
    # or nearly: allow it a moment).
    def marked() -> bool:
        try:
            first.mark_seen("other", [("p3", ["A"])])
        except ChangeStoreError:
            return False
        return True

    assert wait_until(marked, 5)
    first.close()


def test_postgres_store_sessions_run_without_jit(pg_url: str) -> None:
    """The snapshot's comparison is estimated as costly enough for JIT, whose compiling
    took five times as long as the statement itself."""
    db = open_store(pg_url)
    try:
        sessions = [db._db, db._writer]  # the store's own connections
        assert [s.execute("SHOW jit").fetchone()[0] for s in sessions] == ["off", "off"]
    finally:
        db.close()


def test_memberships_realized_by_the_snapshot_do_not_dilute_the_guard(tmp_path: Path) -> None:
    """A wrong input as large as the right one, made only of new profiles, would exit every
    delivered membership: 100% of what consumers knew, not 50% of what the store holds."""
    view = sqlite_view(tmp_path)
    seed_store(view, {"p1": {"A": T0}, "p2": {"A": T0}})
    tracker = tracker_on(view, snapshot_end="end_of_input", max_exit_fraction=0.5)
    decided = tracker.decide(S, [("n1", profile({"A": {}})), ("n2", profile({"A": {}}))])
    tracker.register(1, [result[1] for result in decided if isinstance(result, tuple)])
    tracker.commit_through(1)  # the new profiles' events were accepted
    with pytest.raises(SnapshotGuardError) as raised:
        next(tracker.exits(S))
    assert "exit 2 of its 2 delivered memberships" in str(raised.value)
    tracker.close()


def test_the_default_guard_refuses_an_input_cut_to_a_quarter_of_its_profiles(
    tmp_path: Path,
) -> None:
    view = sqlite_view(tmp_path)
    audience = {f"p{i:03d}": {seg: T0 for seg in "ABC"[: 1 + i % 3]} for i in range(100)}
    seed_store(view, audience)
    stored = view.rows()
    tracker = ChangeTracker(open_store(view.url), Options(snapshot_end="end_of_input"))
    kept = list(audience)[:26]
    items = [(key, profile({seg: {} for seg in audience[key]})) for key in kept]
    assert tracker.decide(S, items) == [None] * 26
    with pytest.raises(SnapshotGuardError) as raised:
        next(tracker.exits(S))
    message = str(raised.value)
    # A would lose 74 of 100, B 49 of 66, C 25 of 33: how many of how many, where the
    # most, and the setting that would allow it.
    assert "exit 148 of its 199 delivered memberships (74%; " in message
    assert "the most in segment 'A': 74 of 100)" in message
    assert "max_exit_fraction of at least 0.74" in message
    assert "more than max_exit_fraction 0.5 allows" in message
    assert view.rows() == stored
    tracker.close()


def test_a_profile_twice_in_a_batch_is_read_whole(tmp_path: Path) -> None:
    """An unchanged profile is known by its stored digest alone, unless the batch names it
    again with other content: then its stored memberships are read."""
    view = sqlite_view(tmp_path)
    seed_store(view, {"p1": {"A": T0, "B": T0}, "p2": {"A": T0, "B": T0}})
    tracker = tracker_on(view)
    same = profile({"A": {}, "B": {}})
    adds_c = profile({"A": {}, "B": {}, "C": {"lastQualificationTime": T1}})
    leaves_b = profile({"A": {}, "B": {"status": "exited", "lastQualificationTime": T1}})
    results = tracker.decide(
        S, [("p1", adds_c), ("p1", same), ("p2", leaves_b), ("p2", profile({"A": {}}))]
    )
    assert isinstance(results[0], tuple)
    assert results[0][0].memberships == {"A": existing(T0), "B": existing(T0), "C": realized(T1)}
    assert results[1] is None  # C is carried: nothing changes
    assert isinstance(results[2], tuple)
    assert results[2][0].memberships == {"A": existing(T0), "B": exited(T1)}
    assert results[3] is None  # A alone: what p2 holds after its first row
    assert results[2][1].after == Delivered(identity_json(IDS), fingerprint(ATTRS), {"A": T0})
    tracker.close()


def test_snapshots_of_a_stream_one_after_another_in_one_run(tmp_path: Path) -> None:
    """Each snapshot is compared with the store on its own: what an earlier snapshot of
    the run held does not keep a profile in a later one, nor in an empty one."""
    view = sqlite_view(tmp_path)
    seed_store(view, {"p1": {"A": T0}, "p2": {"A": T0}, "p3": {"A": T0}})
    tracker = tracker_on(view, snapshot_end="activate_version", max_exit_fraction=1.0)

    def snapshot(keys: list[str], mark: int) -> set[str]:
        assert tracker.decide(S, [(key, profile({"A": {}})) for key in keys]) == [None] * len(keys)
        exited = set()
        for batch in tracker.exits(S):
            tracker.register(mark, [change for *_, change in batch])
            exited |= {key for key, *_ in batch}
        tracker.commit_through(mark)
        return exited

    assert snapshot(["p1", "p2", "p3"], 1) == set()
    assert snapshot(["p1", "p2"], 2) == {"p3"}
    assert set(view.rows()) == {"p1", "p2"}
    assert snapshot([], 3) == {"p1", "p2"}  # an empty snapshot: every membership exits
    assert view.rows() == {}
    tracker.close()


def test_a_profile_split_between_two_batches_is_counted_once(tmp_path: Path) -> None:
    """A flush may fall between two rows of one profile: the report counts profiles."""
    view = sqlite_view(tmp_path)
    tracker = tracker_on(view)
    seed = tracker.decide(S, [("p1", profile({"A": {}, "B": {}})), ("p2", profile({"A": {}}))])
    tracker.register(1, [r[1] for r in seed if isinstance(r, tuple)])
    tracker.commit_through(1)
    tracker.finish()
    tracker.close()

    tracker = tracker_on(view)
    # p1 unchanged in both parts, then p2 whose second part changes it.
    assert tracker.decide(S, [("p1", profile({"A": {}}))]) == [None]
    assert tracker.decide(S, [("p1", profile({"B": {}})), ("p2", profile({"A": {}}))]) == [
        None,
        None,
    ]
    changed = tracker.decide(S, [("p2", profile({"C": {}}))])
    assert isinstance(changed[0], tuple)
    assert tracker.counts == {S: Counts(events=1, realized=1, existing=1, unchanged=1)}
    tracker.close()


# Rows digests: records that made a stored state are unchanged without being converted -----

SETTINGS = ConversionSettings(require_status=False)
TAG = settings_tag(SETTINGS)


def rows_of(*segments: str, first_name: str = "Ann", times: dict | None = None) -> HeldRows:
    """One profile's records as the sink holds them: one membership per record."""
    records = [
        {
            "email": "ann@example.com",
            "first_name": first_name,
            "segment_id": seg,
            "last_qualification_time": (times or {}).get(seg),
        }
        for seg in segments
    ]
    rows = HeldRows(SETTINGS, TAG, records[0], 10)
    for line, record in enumerate(records[1:], start=11):
        rows.add(record, line)
    return rows


def snapshot_run(
    url: str, items: list[tuple[str, HeldRows]], *, record: bool = True
) -> tuple[list, dict[str, dict], Counts]:
    """One run of a complete snapshot: (results, exit events by key, counts), every event
    accepted."""
    options = Options(snapshot_end="end_of_input", record=record, max_exit_fraction=1)
    tracker = ChangeTracker(open_store(url, read_only=not record), options)
    try:
        results = tracker.decide(S, items)
        tracker.register(1, [r[1] for r in results if isinstance(r, tuple)])
        tracker.commit_through(1)
        exits = [item for batch in tracker.exits(S) for item in batch]
        tracker.register(2, [change for *_, change in exits])
        tracker.commit_through(2)
        tracker.finish()
        return results, {key: d.memberships for key, _, d, _ in exits}, tracker.counts[S]
    finally:
        tracker.close()


def test_records_that_made_a_state_are_known_unchanged_unconverted(store: StoreView) -> None:
    def p1(*segments: str) -> HeldRows:
        return rows_of(*segments, times=dict.fromkeys(segments, T1))

    # First run: both realized; each state keeps the digest of the records that made it.
    results, exits, _ = snapshot_run(store.url, [("p1", p1("A", "B")), ("p2", rows_of("A"))])
    assert [r[0].realized for r in results if isinstance(r, tuple)] == [2, 1]
    assert exits == {}
    assert store.rows_digests(S) == {"p1": p1("A", "B").digest, "p2": rows_of("A").digest}

    # The same records again: unchanged, never converted, nothing exits.
    again = [("p1", p1("A", "B")), ("p2", rows_of("A"))]
    results, exits, counts = snapshot_run(store.url, again)
    assert results == [None, None] and exits == {}
    assert counts == Counts(unchanged=2)
    assert not any(rows.converted for _, rows in again)

    # Other records with the same content (another order) are converted and compared:
    # unchanged. A changed attribute is sent, and its records' digest kept.
    reordered, renamed = p1("B", "A"), rows_of("A", first_name="Anna")
    results, exits, counts = snapshot_run(store.url, [("p1", reordered), ("p2", renamed)])
    assert results[0] is None and reordered.converted
    assert isinstance(results[1], tuple) and results[1][0].existing == 1
    assert store.rows_digests(S) == {"p1": p1("A", "B").digest, "p2": renamed.digest}

    # A membership that exits because the snapshot lacks it: the state is no longer what
    # any records said, so the next run compares the profile, and keeps its digest.
    results, exits, _ = snapshot_run(store.url, [("p1", p1("A")), ("p2", renamed)])
    assert results == [None, None]
    assert set(exits) == {"p1"} and exits["p1"]["B"]["status"] == "exited"
    assert store.rows_digests(S) == {"p1": None, "p2": renamed.digest}
    only_a = p1("A")
    results, exits, _ = snapshot_run(store.url, [("p1", only_a), ("p2", renamed)])
    assert results == [None, None] and exits == {} and only_a.converted
    assert store.rows_digests(S) == {"p1": only_a.digest, "p2": renamed.digest}
    memberships = store.memberships(S)
    assert memberships["p1"] == {"A": T1} and set(memberships["p2"]) == {"A"}


def test_other_settings_make_other_digests() -> None:
    other = ConversionSettings(require_status=False, segment_namespace="custom")
    rows = HeldRows(other, settings_tag(other), {"email": "a@example.com", "segment_id": "A"}, 1)
    same = HeldRows(SETTINGS, TAG, {"email": "a@example.com", "segment_id": "A"}, 1)
    assert rows.digest != same.digest
    assert settings_tag(ConversionSettings(require_status=False)) == TAG  # stable


def test_refused_records_are_reported_in_every_run(store: StoreView) -> None:
    def p1() -> HeldRows:
        rows = rows_of("A")
        rows.add({"email": "ann@example.com", "segment_id": "B", "status": "maybe"}, 11)
        return rows

    first = p1()
    [result] = snapshot_run(store.url, [("p1", first)])[0]
    assert isinstance(result, tuple) and set(result[0].memberships) == {"A"}
    [(line, reason, record)] = first.refused
    assert line == 11 and "maybe" in reason and record["segment_id"] == "B"
    assert store.rows_digests(S) == {"p1": None}  # not recognised without converting

    again = p1()
    assert snapshot_run(store.url, [("p1", again)])[0] == [None]
    assert again.converted and len(again.refused) == 1  # reported again

    nothing = HeldRows(SETTINGS, TAG, {"email": "", "segment_id": "A"}, 20)
    [refused] = snapshot_run(store.url, [("p1", p1()), ("p9", nothing)])[0][1:]
    assert isinstance(refused, Refused) and nothing.profile is None and nothing.refused


def test_a_version_1_store_is_read_by_a_dry_run_and_upgraded_by_a_run(store: StoreView) -> None:
    snapshot_run(store.url, [("p1", rows_of("A", times={"A": T1}))])
    store.execute(
        "ALTER TABLE change_tracking_profiles DROP COLUMN rows_digest",
        "UPDATE change_tracking_meta SET value = '1' WHERE key = 'schema_version'",
    )
    results, _, counts = snapshot_run(store.url, [("p1", rows_of("A"))], record=False)
    assert results == [None] and counts == Counts(unchanged=1)
    assert store._query("SELECT value FROM change_tracking_meta") == [("1",)]  # untouched

    results, _, _ = snapshot_run(store.url, [("p1", rows_of("A"))])
    assert results == [None]
    assert store._query("SELECT value FROM change_tracking_meta") == [("2",)]
    assert store.memberships(S) == {"p1": {"A": T1}}
    assert store.rows_digests(S) == {"p1": rows_of("A").digest}  # kept while unchanged


def test_a_first_snapshot_of_a_stream_has_nothing_to_compare(store: StoreView) -> None:
    """On a stream with nothing delivered, every stored profile comes from the snapshot
    itself: its end compares nothing. The next snapshot is compared as usual."""
    compared: list[str] = []

    def run(batches: list[list[tuple[str, HeldRows]]]) -> dict[str, dict]:
        options = Options(snapshot_end="end_of_input", max_exit_fraction=1)
        tracker = ChangeTracker(open_store(store.url), options)
        find_missing = tracker.store.find_missing
        tracker.store.find_missing = lambda s: compared.append(s) or find_missing(s)  # type: ignore[method-assign]
        try:
            for mark, batch in enumerate(batches, start=1):
                results = tracker.decide(S, batch)
                tracker.register(mark, [r[1] for r in results if isinstance(r, tuple)])
                tracker.commit_through(mark)  # later rows of p1 read its stored row
            exits = [item for batch in tracker.exits(S) for item in batch]
            tracker.register(99, [change for *_, change in exits])
            tracker.commit_through(99)
            tracker.finish()
            return {key: d.memberships for key, _, d, _ in exits}
        finally:
            tracker.close()

    # p1's rows arrive apart: both batches' memberships are kept, nothing exits.
    assert run([[("p1", rows_of("A")), ("p2", rows_of("A"))], [("p1", rows_of("B"))]]) == {}
    assert compared == []
    assert {k: set(v) for k, v in store.memberships(S).items()} == {"p1": {"A", "B"}, "p2": {"A"}}

    exits = run([[("p1", rows_of("A", "B"))]])
    assert compared == [S]
    assert set(exits) == {"p2"} and exits["p2"]["A"]["status"] == "exited"
    assert {k: set(v) for k, v in store.memberships(S).items()} == {"p1": {"A", "B"}}
