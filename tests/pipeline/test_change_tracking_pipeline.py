"""Change tracking in a real pipeline: a "current members" view without statuses ->
Meltano (tap-postgres, FULL_TABLE) -> target (change_tracking, snapshot_end: end_of_input,
a PostgreSQL change store) -> local hub.

Three `meltano run` runs over the same view:

1. the first sends every current membership as `realized` (the store is new);
2. after members are deleted and added in the database, the second sends exactly the
   exits and entries (and nothing for the profiles that did not change);
3. the third, with nothing changed, sends nothing.

The same Meltano project as the incremental pipeline test (installed once per session);
the view's stream, FULL_TABLE and the target's change-tracking settings come from the
environment, and the run has its own state id.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHubProcess

from target_azure_eventhubs.delivery.partitioning import partition_for_key
from target_azure_eventhubs.events import hash_identity
from target_azure_eventhubs.testing import ReadEvent
from tests.pipeline.conftest import HubLog, MeltanoProject
from tests.postgres import PostgresServer, find_server_bin
from tests.services import service_missing

pytestmark = pytest.mark.slow

HUB = "profiles"
PARTITIONS = 4
STREAM = "public-current_audience_members"
CUSTOMERS = 300
AUDIENCES = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"audience:{n}")) for n in range(6)]
SCHEMA = """
CREATE TABLE customers (customer_id text PRIMARY KEY, email text NOT NULL,
                        first_name text, last_name text);
CREATE TABLE audience_members (customer_id text REFERENCES customers, segment_id text,
                               PRIMARY KEY (customer_id, segment_id));
CREATE VIEW current_audience_members AS
    SELECT m.customer_id, c.email, c.first_name, c.last_name, m.segment_id
    FROM audience_members m JOIN customers c USING (customer_id);
"""

Pair = tuple[str, str]  # (customer id, audience id)


def tracking_env(project: MeltanoProject, pg: PostgresServer, hub: LocalHubProcess) -> dict:
    store = f"postgresql://{pg.user}:{pg.password}@127.0.0.1:{pg.port}/changes"
    return project.env(
        TAP_POSTGRES_PORT=str(pg.port),
        TAP_POSTGRES_PASSWORD=pg.password,
        TAP_POSTGRES__SELECT=json.dumps([f"{STREAM}.*"]),
        TAP_POSTGRES__METADATA=json.dumps(
            {
                STREAM: {
                    "replication-method": "FULL_TABLE",
                    "table-key-properties": ["customer_id", "segment_id"],
                }
            }
        ),
        TARGET_AZURE_EVENTHUBS_CONNECTION_STRING=hub.connection_string(),
        TARGET_AZURE_EVENTHUBS_CHANGE_TRACKING="true",
        TARGET_AZURE_EVENTHUBS_SNAPSHOT_END="end_of_input",
        TARGET_AZURE_EVENTHUBS_CHANGE_STORE=store,
        TARGET_AZURE_EVENTHUBS_GROUP_BY_PROFILE="true",
        TARGET_AZURE_EVENTHUBS_PARTITION_KEY_FIELD="customer_id",
        TARGET_AZURE_EVENTHUBS_IDENTITY_FIELDS=json.dumps(
            {"email": "email_lc_sha256", "customer_id": "crmId"}
        ),
    )


def load_source(pg: PostgresServer, rng: random.Random) -> tuple[dict[str, str], set[Pair]]:
    pg.psql(SCHEMA)
    emails = {f"c{n:04d}": f"Customer.{n}@Example.com " for n in range(CUSTOMERS)}
    pg.copy_in(
        "customers",
        ["customer_id", "email", "first_name", "last_name"],
        [(cid, email, "Ada", f"Lovelace{cid}") for cid, email in emails.items()],
    )
    members = {(cid, seg) for cid in emails for seg in rng.sample(AUDIENCES, rng.choice([1, 2, 3]))}
    pg.copy_in("audience_members", ["customer_id", "segment_id"], sorted(members))
    return emails, members


def run(project: MeltanoProject, env: dict, name: str) -> str:
    proc = project.run(
        "run",
        "--state-id-suffix",
        "tracking",
        "tap-postgres",
        "target-azure-eventhubs",
        env=env,
        timeout=300,
        log_name=name,
    )
    assert proc.returncode == 0, f"meltano run ({name}) failed:\n{proc.stderr[-6000:]}"
    assert env["TAP_POSTGRES_PASSWORD"] not in proc.stdout + proc.stderr
    return proc.stderr


def statuses(events: list[ReadEvent], emails: dict[str, str]) -> dict[str, dict[Pair, int]]:
    """status -> (customer, audience) -> how often an event said it; checks each event's
    identities and partition on the way."""
    found: dict[str, dict[Pair, int]] = defaultdict(lambda: defaultdict(int))
    for event in events:
        body = json.loads(event.body)
        cid = body["identityMap"]["crmId"][0]["id"]
        assert body["identityMap"]["email_lc_sha256"] == [
            {"id": hash_identity("email_lc_sha256", emails[cid])}
        ]
        assert event.partition_id == str(partition_for_key(cid, PARTITIONS))
        assert event.properties["stream"] == STREAM
        for seg, membership in body["segmentMembership"]["ups"].items():
            assert set(membership) == {"status", "lastQualificationTime"}
            found[membership["status"]][(cid, seg)] += 1
    return found


@pytest.fixture
def pg_bin() -> Path:
    bin_dir = find_server_bin()
    if bin_dir is None:
        service_missing("PostgreSQL server binaries (initdb, pg_ctl, psql) not found")
    return bin_dir


def test_current_members_view_sends_only_entries_and_exits(
    pg_bin: Path, meltano_project: MeltanoProject, tmp_path: Path
):
    rng = random.Random(20251201)
    with PostgresServer(pg_bin) as pg, LocalHubProcess({HUB: PARTITIONS}) as hub:
        pg.psql("CREATE DATABASE changes", database="postgres")
        emails, members = load_source(pg, rng)
        env = tracking_env(meltano_project, pg, hub)
        log = HubLog(hub.connection_string(), HUB)

        # Run 1: a new store; every current membership is realized, exactly once.
        stderr = run(meltano_project, env, "tracking-1")
        assert "every profile is new in this run" in stderr
        first = statuses(log.new_events(), emails)
        assert set(first) <= {"realized", "existing"}
        assert first["realized"] == dict.fromkeys(members, 1)
        stored = pg.psql(
            "SELECT count(*), sum(membership_count) FROM change_tracking_profiles",
            database="changes",
        )
        assert stored.strip() == f"{CUSTOMERS}|{len(members)}"

        # Run 2: some members leave, some join; exactly those changes are sent.
        gone = set(rng.sample(sorted(members), 40))
        joined = {(cid, seg) for cid in rng.sample(sorted(emails), 30) for seg in AUDIENCES[:1]}
        joined -= members
        for cid, seg in gone:
            pg.psql(
                f"DELETE FROM audience_members WHERE customer_id = '{cid}' AND segment_id = '{seg}'"
            )
        pg.copy_in("audience_members", ["customer_id", "segment_id"], sorted(joined))
        members = (members - gone) | joined
        run(meltano_project, env, "tracking-2")
        second_events = log.new_events()
        second = statuses(second_events, emails)
        assert second["exited"] == dict.fromkeys(gone, 1)
        assert second["realized"] == dict.fromkeys(joined, 1)
        changed = {cid for cid, _ in gone | joined}
        sent_to = {json.loads(e.body)["identityMap"]["crmId"][0]["id"] for e in second_events}
        assert sent_to == changed  # the others got nothing
        for cid, seg in second["existing"]:
            assert (cid, seg) in members

        # Run 3: nothing changed, nothing is sent.
        stderr = run(meltano_project, env, "tracking-3")
        assert log.new_events() == []
        profiles = len({cid for cid, _ in members})
        assert (
            "0 events (memberships: 0 realized, 0 existing, 0 exited), "
            f"{profiles} profiles unchanged"
        ) in stderr
        stored = pg.psql(
            "SELECT sum(membership_count) FROM change_tracking_profiles", database="changes"
        )
        assert int(stored) == len(members)
