"""A real ELT pipeline: PostgreSQL -> Meltano (tap-postgres, INCREMENTAL) -> target -> hub.

One test, four `meltano run tap-postgres target-azure-eventhubs` runs against a throwaway
PostgreSQL server (tests/pipeline/postgres.py) and a local hub subprocess with a data dir,
at the target's default settings: a profile's rows read together become one event (
`group_by_profile`), so what is counted is memberships, each checked against the row it
came from:

1. initial load: every membership row arrives exactly once, in the documented shape
   (expected bodies computed here: SHA-256 of the normalised email, ISO-8601 UTC times),
   each profile's events on the partition `partition_for_key(profile_id, 4)`;
2. memberships inserted and statuses set to `exited` (updated_at bumped): only the changed
   rows arrive, plus the boundary rows that the tap's `updated_at >= bookmark` re-reads;
3. a large batch, the hub SIGKILLed once part of it was accepted: the run fails, and the
   bookmark Meltano stored covers only rows the hub holds;
4. the hub restarted from its data dir, the same command again: nothing is missing, and
   the duplicates are exactly the re-read rows that the killed run had already delivered.

The Meltano project is tests/pipeline/meltano_project (copied to a temp dir; state in its
systemdb). Rows, events and wall times are printed; with PIPELINE_REPORT=<file> a JSON
summary line is appended to that file.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHubProcess

from target_azure_eventhubs.delivery.partitioning import partition_for_key
from target_azure_eventhubs.testing import ReadEvent
from tests.pipeline.conftest import HubLog, MeltanoProject
from tests.postgres import PostgresServer, find_server_bin
from tests.services import service_missing
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

HUB = "profiles"
PARTITIONS = 4
STREAM = "public-profile_segment_memberships"
STATE_ID = "pipeline:tap-postgres-to-target-azure-eventhubs"
RUN = ("run", "tap-postgres", "target-azure-eventhubs")

INITIAL_PROFILES = 2000
CHANGED_EXITS = 200
CHANGED_NEW = 150
BOUNDARY_ROWS = 3  # run 1's newest rows share one updated_at (one load), see run 2
BIG_PROFILES = 3000
BIG_SEGMENTS_EACH = 8  # 24,000 rows in run 3: the tap checkpoints every 10,000 rows
KILL_AFTER = 1_600  # run-3 events (about 8 memberships each) the hub holds when killed

SEGMENT_NAMES = [
    "High value customers",
    "Newsletter subscribers",
    "Cart abandoners",
    "Lapsed buyers",
    "Loyalty gold",
    "Loyalty silver",
    "Mobile app users",
    "Store visitors last 30 days",
    "Discount seekers",
    "New customers",
    "Churn risk",
    "Gift buyers",
]
SEGMENTS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"segment:{n}")) for n in SEGMENT_NAMES]
FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kaito",
    "Lena",
    "Mateo",
    "Nora",
    "Omar",
    "Paula",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
]
LAST = [
    "Smith",
    "Müller",
    "García",
    "Rossi",
    "Dubois",
    "Nowak",
    "Kowalski",
    "Jensen",
    "O'Brien",
    "Silva",
    "Yilmaz",
    "Novak",
    "Larsen",
    "Ito",
    "Kim",
    "Dupont",
]

T0 = datetime(2025, 3, 3, 8, 0, 0, tzinfo=UTC)  # run 1 rows: T0 + n seconds
T1 = T0 + timedelta(days=1)  # run 2 changes
T2 = T0 + timedelta(days=2)  # run 3 batch: T2 + n milliseconds


@dataclass(frozen=True)
class Profile:
    profile_id: str
    email: str
    first_name: str
    last_name: str
    birth_date: date


@dataclass(frozen=True)
class Row:
    """One version of a membership row (a row updated later is a new version)."""

    membership_id: int
    profile_id: str
    segment_id: str
    status: str
    last_qualification_time: datetime
    updated_at: datetime


def iso_z(dt: datetime) -> str:
    dt = dt.astimezone(UTC).replace(tzinfo=None)
    spec = "seconds" if dt.microsecond < 1000 else "milliseconds"
    return dt.isoformat(timespec=spec) + "Z"


def canonical(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def expected_event(row: Row, profile: Profile) -> dict:
    """The event of one membership row, built from the event format, not from output."""
    return {
        "person": {
            "name": {"firstName": profile.first_name, "lastName": profile.last_name},
            "birthDate": profile.birth_date.isoformat(),
        },
        "segmentMembership": {
            "ups": {
                row.segment_id: {
                    "lastQualificationTime": iso_z(row.last_qualification_time),
                    "status": row.status,
                }
            }
        },
        "identityMap": {
            "email_lc_sha256": [
                {"id": hashlib.sha256(profile.email.strip().lower().encode()).hexdigest()}
            ],
            "crmId": [{"id": profile.profile_id}],
        },
    }


class Crm:
    """The source database: profiles, segment_memberships and the view the tap reads."""

    SCHEMA = """
    CREATE TABLE profiles (
        profile_id  text PRIMARY KEY,
        email       text NOT NULL,
        first_name  text,
        last_name   text,
        birth_date  date,
        updated_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE segment_memberships (
        membership_id            bigint PRIMARY KEY,
        profile_id               text NOT NULL REFERENCES profiles,
        segment_id               uuid NOT NULL,
        status                   text NOT NULL
                                 CHECK (status IN ('realized', 'existing', 'exited')),
        last_qualification_time  timestamptz NOT NULL,
        updated_at               timestamptz NOT NULL,
        UNIQUE (profile_id, segment_id)
    );
    CREATE INDEX segment_memberships_updated_at ON segment_memberships (updated_at);
    CREATE VIEW profile_segment_memberships AS
        SELECT m.membership_id, p.profile_id, p.email, p.first_name, p.last_name,
               p.birth_date, m.segment_id::text AS segment_id, m.status,
               m.last_qualification_time, m.updated_at
        FROM segment_memberships m JOIN profiles p USING (profile_id);
    """

    def __init__(self, pg: PostgresServer, seed: int = 20250303) -> None:
        self.pg = pg
        self.rng = random.Random(seed)
        self.profiles: dict[str, Profile] = {}
        self.rows: dict[int, Row] = {}  # current version of each membership
        self.next_id = 1
        pg.psql(self.SCHEMA)

    def add_profiles(self, count: int) -> list[Profile]:
        rng = self.rng
        new = []
        for _ in range(count):
            n = len(self.profiles) + 1
            first, last = rng.choice(FIRST), rng.choice(LAST)
            local = f"{first}.{last}".replace("'", "").lower()
            email = f"{local}{n}@example.com"
            if n % 7 == 0:  # as typed into a form: the target must normalise before hashing
                email = f"  {first}.{last.replace(chr(39), '')}{n}@Example.COM "
            profile = Profile(
                f"cust-{n:06d}",
                email,
                first,
                last,
                date(1950, 1, 1) + timedelta(days=rng.randrange(20000)),
            )
            self.profiles[profile.profile_id] = profile
            new.append(profile)
        self.pg.copy_in(
            "profiles",
            ["profile_id", "email", "first_name", "last_name", "birth_date"],
            [(p.profile_id, p.email, p.first_name, p.last_name, p.birth_date) for p in new],
        )
        return new

    def insert(self, rows: list[Row]) -> None:
        for row in rows:
            self.rows[row.membership_id] = row
        self.pg.copy_in(
            "segment_memberships",
            [
                "membership_id",
                "profile_id",
                "segment_id",
                "status",
                "last_qualification_time",
                "updated_at",
            ],
            [
                (
                    r.membership_id,
                    r.profile_id,
                    r.segment_id,
                    r.status,
                    r.last_qualification_time.isoformat(),
                    r.updated_at.isoformat(),
                )
                for r in rows
            ],
        )

    def new_row(
        self, profile_id: str, segment_id: str, status: str, lqt: datetime, updated_at: datetime
    ) -> Row:
        row = Row(self.next_id, profile_id, segment_id, status, lqt, updated_at)
        self.next_id += 1
        return row

    def exit_rows(self, ids: list[int], first_time: datetime) -> list[Row]:
        changed = []
        values = []
        for i, mid in enumerate(ids):
            when = first_time + timedelta(seconds=i)
            old = self.rows[mid]
            row = Row(mid, old.profile_id, old.segment_id, "exited", when, when)
            self.rows[mid] = row
            changed.append(row)
            values.append(f"({mid}, '{when.isoformat()}'::timestamptz)")
        self.pg.psql(
            "UPDATE segment_memberships m SET status = 'exited', "
            "last_qualification_time = v.t, updated_at = v.t "
            f"FROM (VALUES {', '.join(values)}) AS v(id, t) WHERE m.membership_id = v.id"
        )
        return changed

    def check_source(self) -> None:
        """The view holds exactly the rows this class believes it wrote."""
        got = self.pg.rows(
            "SELECT membership_id, status, extract(epoch FROM updated_at)::numeric(20,3) "
            "FROM profile_segment_memberships"
        )
        assert len(got) == len(self.rows)
        for mid, status, epoch in got:
            row = self.rows[int(mid)]
            assert (status, round(float(epoch), 3)) == (
                row.status,
                round(row.updated_at.timestamp(), 3),
            )

    def since(self, bookmark: datetime | None) -> list[Row]:
        """What the tap reads after `bookmark`: `updated_at >= bookmark`."""
        return [r for r in self.rows.values() if bookmark is None or r.updated_at >= bookmark]


def memberships_of(body: dict) -> list[dict]:
    """One event body per membership it carries, each as a lone row's event would be."""
    ups = body["segmentMembership"]["ups"]
    assert ups, f"an event without memberships: {body}"
    return [{**body, "segmentMembership": {"ups": {seg: m}}} for seg, m in ups.items()]


def match_events(events: list[ReadEvent], crm: Crm, versions: dict[str, Row]) -> Counter:
    """Map every membership of every event to the row version it carries (by exact body:
    identities, attributes, status and time); check each event's partition."""
    got: Counter = Counter()
    for event in events:
        body = json.loads(event.body)
        profile_id = body["identityMap"]["crmId"][0]["id"]
        expected_partition = str(partition_for_key(profile_id, PARTITIONS))
        assert event.partition_id == expected_partition, (
            f"{profile_id}'s event on partition {event.partition_id}, expected {expected_partition}"
        )
        assert event.properties.get("stream") == STREAM
        for single in memberships_of(body):
            row = versions.get(canonical(single))
            assert row is not None, f"a membership matches no row version: {single}"
            assert row.profile_id == profile_id
            got[(row.membership_id, row.updated_at)] += 1
    return got


def keys(rows: list[Row]) -> Counter:
    return Counter((r.membership_id, r.updated_at) for r in rows)


def get_bookmark(project: MeltanoProject) -> datetime | None:
    proc = project.run("state", "get", STATE_ID)
    if proc.returncode != 0:
        return None
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    value = state["singer_state"]["bookmarks"][STREAM]["replication_key_value"]
    return datetime.fromisoformat(value)


def run_meltano(project: MeltanoProject, env: dict[str, str], name: str) -> float:
    started = time.monotonic()
    proc = project.run(*RUN, env=env, timeout=300, log_name=name)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, (
        f"meltano run ({name}) failed with {proc.returncode}; log "
        f"{project.log_dir / (name + '.log')}\n{proc.stderr[-6000:]}"
    )
    return seconds


@pytest.fixture
def pg_bin() -> Path:
    """The PostgreSQL server binaries; the only reason to skip (before installing Meltano)."""
    bin_dir = find_server_bin()
    if bin_dir is None:
        service_missing(
            "PostgreSQL server binaries (initdb, pg_ctl, psql) not found under "
            "/usr/lib/postgresql/*/bin or on PATH"
        )
    return bin_dir


def test_postgres_meltano_incremental_pipeline(
    pg_bin: Path, meltano_project: MeltanoProject, tmp_path: Path
):
    bin_dir = pg_bin
    test_started = time.monotonic()
    project = meltano_project
    report: dict = {
        "test": "postgres_meltano_pipeline",
        "rows": {},
        "events": {},
        "seconds": {"meltano_install": round(project.install_seconds, 1)},
    }

    with (
        PostgresServer(bin_dir) as pg,
        LocalHubProcess({HUB: PARTITIONS}, data_dir=tmp_path / "hub-data") as hub,
    ):
        crm = Crm(pg)
        env = project.env(
            TAP_POSTGRES_PORT=str(pg.port),
            TAP_POSTGRES_PASSWORD=pg.password,
            TARGET_AZURE_EVENTHUBS_CONNECTION_STRING=hub.connection_string(),
        )
        log = HubLog(hub.connection_string(), HUB)
        versions: dict[str, Row] = {}

        def remember(rows: list[Row]) -> None:
            for r in rows:
                versions[canonical(expected_event(r, crm.profiles[r.profile_id]))] = r

        def record(name: str, rows: list[Row], events: list[ReadEvent], seconds: float) -> None:
            report["rows"][name] = len(rows)
            report["events"][name] = len(events)
            report["seconds"][name] = round(seconds, 1)
            print(f"{name}: rows={len(rows)} events={len(events)} wall={seconds:.1f}s")

        # ---- run 1: initial load ---------------------------------------------------------
        rng = crm.rng
        rows1 = []
        for profile in crm.add_profiles(INITIAL_PROFILES):
            for seg in rng.sample(SEGMENTS, rng.choice([1, 1, 2, 2, 3])):
                n = len(rows1)
                rows1.append(
                    crm.new_row(
                        profile.profile_id,
                        seg,
                        rng.choice(["realized", "existing"]),
                        T0 - timedelta(seconds=rng.randrange(1, 90 * 86400)),
                        T0 + timedelta(seconds=n),
                    )
                )
        # The newest rows of a load often share one timestamp: give the last three one.
        last = rows1[-BOUNDARY_ROWS].updated_at
        rows1[-BOUNDARY_ROWS:] = [
            Row(
                r.membership_id,
                r.profile_id,
                r.segment_id,
                r.status,
                r.last_qualification_time,
                last,
            )
            for r in rows1[-BOUNDARY_ROWS:]
        ]
        crm.insert(rows1)
        crm.check_source()
        remember(rows1)
        seconds = run_meltano(project, env, "run1")
        events1 = log.new_events()
        record("run1", rows1, events1, seconds)
        assert match_events(events1, crm, versions) == keys(rows1)  # each row exactly once
        bookmark1 = get_bookmark(project)
        assert bookmark1 == max(r.updated_at for r in rows1)
        per_profile = {}
        for e in events1:
            pid = json.loads(e.body)["identityMap"]["crmId"][0]["id"]
            per_profile.setdefault(pid, set()).add(e.partition_id)
        assert all(len(p) == 1 for p in per_profile.values())
        assert len({p for s in per_profile.values() for p in s}) == PARTITIONS

        # ---- run 2: incremental ----------------------------------------------------------
        older = [r for r in rows1 if r.updated_at < bookmark1]
        exits = crm.exit_rows(
            sorted(r.membership_id for r in rng.sample(older, CHANGED_EXITS)),
            T1,
        )
        held = {(r.profile_id, r.segment_id) for r in crm.rows.values()}
        new_rows = []
        while len(new_rows) < CHANGED_NEW:
            pid, seg = rng.choice(list(crm.profiles)), rng.choice(SEGMENTS)
            if (pid, seg) in held:
                continue
            held.add((pid, seg))
            when = T1 + timedelta(seconds=CHANGED_EXITS + len(new_rows))
            new_rows.append(crm.new_row(pid, seg, "realized", when, when))
        crm.insert(new_rows)
        crm.check_source()
        remember(exits + new_rows)
        # The tap reads `updated_at >= bookmark`: the rows sharing run 1's newest updated_at
        # (the bookmark) are read again. They are unchanged, so they re-send the very same
        # memberships: at-least-once at the bookmark's boundary.
        boundary = [r for r in crm.rows.values() if r.updated_at == bookmark1]
        assert len(boundary) == BOUNDARY_ROWS
        expected2 = crm.since(bookmark1)
        assert keys(expected2) == keys(exits + new_rows + boundary)
        seconds = run_meltano(project, env, "run2")
        events2 = log.new_events()
        record("run2", expected2, events2, seconds)
        report["rows"]["run2_changed"] = len(exits) + len(new_rows)
        report["rows"]["run2_boundary_resent"] = len(boundary)
        assert match_events(events2, crm, versions) == keys(expected2)
        exited = [
            m
            for e in events2
            for m in json.loads(e.body)["segmentMembership"]["ups"].values()
            if m["status"] == "exited"
        ]
        assert len(exited) == CHANGED_EXITS
        bookmark2 = get_bookmark(project)
        assert bookmark2 == max(r.updated_at for r in crm.rows.values())

        # ---- run 3: a large batch; the hub is SIGKILLed part-way -------------------------
        big = crm.add_profiles(BIG_PROFILES)
        rows3 = []
        for profile in big:
            for seg in rng.sample(SEGMENTS, BIG_SEGMENTS_EACH):
                rows3.append(
                    crm.new_row(
                        profile.profile_id,
                        seg,
                        rng.choice(["realized", "existing"]),
                        T2 - timedelta(seconds=rng.randrange(1, 30 * 86400)),
                        T2 + timedelta(milliseconds=len(rows3) + 1),
                    )
                )
        crm.insert(rows3)
        remember(rows3)
        expected3 = crm.since(bookmark2)  # rows3 + run 2's boundary row
        before = int(hub.control(f"count {HUB}").split()[1])
        # Fail fast once the hub is gone (the default retries for minutes).
        kill_env = {
            **env,
            "TARGET_AZURE_EVENTHUBS_MAX_RETRIES": "1",
            "TARGET_AZURE_EVENTHUBS_RETRY_BACKOFF_SECONDS": "0",
            "TARGET_AZURE_EVENTHUBS_RETRY_BACKOFF_MAX_SECONDS": "1",
            "TARGET_AZURE_EVENTHUBS_SEND_TIMEOUT_SECONDS": "5",
        }
        started = time.monotonic()
        proc = project.popen(*RUN, env=kill_env, log_name="run3-killed")
        killed_at = None

        def held() -> int:
            return int(hub.control(f"count {HUB}").split()[1]) - before

        # Killed as soon as it holds KILL_AFTER of run 3's events (unless the run ended).
        wait_until(lambda: proc.poll() is not None or held() >= KILL_AFTER, 240, interval=0.01)
        if proc.poll() is None and (held_now := held()) >= KILL_AFTER:
            hub.kill()
            killed_at = held_now
        try:
            code = proc.wait(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
        seconds3 = time.monotonic() - started
        assert killed_at is not None, (
            f"run 3 ended (exit {proc.returncode}) before the hub held {KILL_AFTER} of its "
            "events: make the batch larger"
        )
        assert code != 0, "meltano run must fail when the hub is gone"
        bookmark3 = get_bookmark(project)
        assert bookmark3 is not None
        hub.restart()  # same port, same data dir: what it accepted is still there
        events3 = log.new_events()
        record("run3_killed", expected3, events3, seconds3)
        report["events"]["run3_hub_count_when_killed"] = killed_at
        report["bookmarks"] = {"run2": bookmark2.isoformat(), "run3": bookmark3.isoformat()}
        got3 = match_events(events3, crm, versions)
        assert len(events3) >= killed_at
        assert all(n == 1 for n in got3.values())
        # The stored bookmark is one the tap checkpointed (run 2's, or the updated_at of its
        # 10,000th / 20,000th row: the tap writes STATE every 10,000 rows), and it is not past
        # what the hub holds: every row before it was delivered, including the rows of a
        # profile whose event merged rows from both sides of that STATE. Whether it moved
        # past run 2's depends on whether the events before the tap's mid-run STATE were
        # accepted before the hub died. Both are safe (at least once); the test records
        # which happened.
        in_order = sorted(expected3, key=lambda r: r.updated_at)
        checkpoints = {bookmark2} | {in_order[n - 1].updated_at for n in (10_000, 20_000)}
        assert bookmark3 in checkpoints, f"bookmark {bookmark3} is no checkpoint of the tap"
        assert bookmark3 < in_order[-1].updated_at, "the bookmark covers rows never accepted"
        before_bookmark = [r for r in expected3 if r.updated_at < bookmark3]
        missing = keys(before_bookmark) - got3
        assert not missing, f"{len(missing)} rows before the stored bookmark are not in the hub"
        report["bookmark_advanced_in_killed_run"] = bookmark3 > bookmark2
        print(
            f"run3: hub killed holding {killed_at} events; bookmark {bookmark3.isoformat()} "
            f"({'advanced' if bookmark3 > bookmark2 else 'not advanced'}) covers "
            f"{len(before_bookmark)} rows, all in the hub"
        )

        # ---- run 4: the same command after the hub is back --------------------------------
        expected4 = crm.since(bookmark3)
        seconds = run_meltano(project, env, "run4")
        events4 = log.new_events()
        record("run4_rerun", expected4, events4, seconds)
        got4 = match_events(events4, crm, versions)
        assert got4 == keys(expected4)  # exactly what `updated_at >= bookmark3` selects
        total = got3 + got4
        missing = keys(expected3) - total
        assert not missing, f"{len(missing)} rows never arrived"
        duplicates = sum(total.values()) - len(total)
        # Duplicates are exactly the rows read again from the bookmark that the killed run
        # had already delivered: at most what the hub accepted after that checkpoint.
        assert duplicates == sum(1 for k in keys(expected4) if k in got3)
        assert duplicates <= len(expected4)
        report["duplicates"] = duplicates
        print(
            f"after re-run: all {len(expected3)} rows of run 3 present; "
            f"{duplicates} duplicates (re-read from the bookmark, already delivered)"
        )
        assert get_bookmark(project) == rows3[-1].updated_at
        # Nothing else: the hub holds only memberships of known row versions.
        carried = sum(
            len(json.loads(e.body)["segmentMembership"]["ups"]) for e in events3 + events4
        )
        assert sum(total.values()) == carried

    report["seconds"]["test_total"] = round(time.monotonic() - test_started, 1)
    print("pipeline summary:", json.dumps(report))
    if os.environ.get("PIPELINE_REPORT"):
        with open(os.environ["PIPELINE_REPORT"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps(report) + "\n")
