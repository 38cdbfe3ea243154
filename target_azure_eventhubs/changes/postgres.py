"""The PostgreSQL change store: for runners whose disk does not survive between runs, and
for several runners sharing one store.

Runners on disjoint profiles write disjoint rows; a snapshot of a stream (`snapshot_end`)
is owned by one run at a time, through a session advisory lock per stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import orjson

from target_azure_eventhubs.changes.diff import Delivered
from target_azure_eventhubs.changes.store import (
    SCHEMA_VERSION,
    UPGRADABLE_VERSION,
    ChangeStore,
    Missing,
    Row,
    RowsDigest,
    Seen,
    Stored,
    decode_row,
    row_columns,
)
from target_azure_eventhubs.errors import ChangeStoreError

_CONNECT_TIMEOUT_SECONDS = 10

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS change_tracking_meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE IF NOT EXISTS change_tracking_profiles (
        stream text NOT NULL,
        profile_key text NOT NULL,
        identity_map text NOT NULL,
        attributes_fp text NOT NULL,
        memberships text NOT NULL,
        membership_count integer NOT NULL,
        digest text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        rows_digest text,
        PRIMARY KEY (stream, profile_key))""",
    """CREATE TABLE IF NOT EXISTS change_tracking_runs (
        stream text PRIMARY KEY, started_at text NOT NULL, finished boolean NOT NULL)""",
    "INSERT INTO change_tracking_meta VALUES ('schema_version', %s) ON CONFLICT DO NOTHING",
]
_SESSION = [
    """CREATE TEMP TABLE IF NOT EXISTS change_tracking_seen (
        stream text NOT NULL, profile_key text NOT NULL, complete boolean NOT NULL,
        segments text)""",
    "CREATE INDEX IF NOT EXISTS change_tracking_seen_key ON change_tracking_seen "
    "(stream, profile_key)",
]
# Rows travel as one JSON array per statement: PostgreSQL parses them, and the runner's
# Python does no per-row work beyond encoding the array (measured faster than COPY, and
# than arrays bound per column). As jsonb, each row is parsed once: `->>` on json parses
# the row's text again for every field (twice the server's time for a batch).
_UPSERT = """
INSERT INTO change_tracking_profiles
    (stream, profile_key, identity_map, attributes_fp, memberships, membership_count, digest,
     rows_digest)
SELECT r->>0, r->>1, r->>2, r->>3, (r->4)::text, (r->>5)::integer, r->>6, r->>7
FROM jsonb_array_elements(%s::jsonb) AS r
ON CONFLICT (stream, profile_key) DO UPDATE SET
    identity_map = excluded.identity_map,
    attributes_fp = excluded.attributes_fp,
    memberships = excluded.memberships,
    membership_count = excluded.membership_count,
    digest = excluded.digest,
    rows_digest = excluded.rows_digest,
    updated_at = now()
"""
_NOTE_ROWS = """
UPDATE change_tracking_profiles AS p SET rows_digest = r->>2
FROM jsonb_array_elements(%s::jsonb) AS r
WHERE p.stream = %s AND p.profile_key = r->>0 AND p.digest = r->>1
"""
_DELETE = """
DELETE FROM change_tracking_profiles AS p USING jsonb_array_elements(%s::jsonb) AS r
WHERE p.stream = r->>0 AND p.profile_key = r->>1
"""
_SEEN = """
INSERT INTO change_tracking_seen
SELECT %s, r->>0, jsonb_typeof(r->1) = 'null',
    CASE jsonb_typeof(r->1) WHEN 'array' THEN (r->1)::text END
FROM jsonb_array_elements(%s::jsonb) AS r
"""
# The keys lead and the primary key finds each one: with `profile_key = ANY(...)` the
# planner scans the whole stream once a batch holds a few thousand keys.
_BY_KEYS = """
SELECT p.profile_key, {} FROM jsonb_array_elements_text(%s::jsonb) AS k
JOIN change_tracking_profiles AS p ON p.stream = %s AND p.profile_key = k
"""
_ROW = "p.identity_map, p.attributes_fp, p.memberships, p.digest"
# Profiles with a complete seen row are ruled out first; the memberships no seen row
# holds are looked for only in the others.
_FIND_MISSING = """
CREATE TEMP TABLE change_tracking_exits AS
WITH candidates AS MATERIALIZED (
    SELECT p.* FROM change_tracking_profiles p
    WHERE p.stream = %s AND p.membership_count > 0 AND NOT EXISTS (
        SELECT 1 FROM change_tracking_seen s
        WHERE s.stream = p.stream AND s.profile_key = p.profile_key AND s.complete)
)
SELECT * FROM (
    SELECT c.profile_key, c.identity_map, c.attributes_fp, c.memberships, c.digest,
        EXISTS (SELECT 1 FROM change_tracking_seen s
                WHERE s.stream = c.stream AND s.profile_key = c.profile_key) AS present,
        ARRAY(SELECT m FROM jsonb_object_keys(c.memberships::jsonb) AS m
              WHERE NOT EXISTS (
                SELECT 1 FROM change_tracking_seen s,
                    jsonb_array_elements_text(s.segments::jsonb) AS k
                WHERE s.stream = c.stream AND s.profile_key = c.profile_key
                  AND k = m)) AS missing
    FROM candidates c
) AS found WHERE cardinality(missing) > 0
"""


class PostgresStore(ChangeStore):
    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(url, read_only=read_only)
        self._url = url
        self._db: Any = None
        self._writer: Any = None  # commits
        self._snapshots: set[str] = set()  # streams whose advisory lock this session holds
        self._rows_digest = "p.rows_digest"  # "NULL" in a dry run on a version 1 store
        self._guard("open", self._open)

    def _open(self) -> None:
        try:
            import psycopg  # noqa: PLC0415  (only this store needs it)
        except ImportError:
            raise ChangeStoreError(
                f"change store {self.location} needs the psycopg package: "
                "pip install 'target-azure-eventhubs[postgres]'"
            ) from None
        self._db = self._connect(psycopg)
        with self._db.transaction():
            # Runners starting together must not race to create the tables.
            self._db.execute("SELECT pg_advisory_xact_lock(hashtext('target-azure-eventhubs'))")
            self.created = self._db.execute(
                "SELECT to_regclass('change_tracking_profiles') IS NULL"
            ).fetchone()[0]
            for statement in self._schema():
                self._db.execute(statement, (SCHEMA_VERSION,) if "%s" in statement else None)
            self._check_version()
        for statement in _SESSION:
            self._db.execute(statement)
        if not self.read_only:
            self._writer = self._connect(psycopg)

    def _check_version(self) -> None:
        version = self._db.execute(
            "SELECT value FROM change_tracking_meta WHERE key = 'schema_version'"
        ).fetchone()[0]
        if version == UPGRADABLE_VERSION and self.read_only:
            self._rows_digest = "NULL"
        elif version == UPGRADABLE_VERSION:
            self._db.execute(
                "ALTER TABLE change_tracking_profiles ADD COLUMN IF NOT EXISTS rows_digest text"
            )
            self._db.execute(
                "UPDATE change_tracking_meta SET value = %s WHERE key = 'schema_version'",
                (SCHEMA_VERSION,),
            )
        elif version != SCHEMA_VERSION:
            raise ChangeStoreError(
                f"change store {self.location} has schema version {version}; this version "
                f"of target-azure-eventhubs reads version {SCHEMA_VERSION}"
            )

    def _connect(self, psycopg: Any) -> Any:
        connection = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=_CONNECT_TIMEOUT_SECONDS,
            application_name="target-azure-eventhubs",
        )
        # Compiling a plan takes longer than running any of these statements: a snapshot's
        # comparison, estimated as costly, spent 1 s in JIT for 0.2 s of work. (A server
        # without JIT does not know the setting.)
        with contextlib.suppress(psycopg.Error):
            connection.execute("SET jit = off")
        return connection

    def _schema(self) -> list[str]:
        """The tables; a dry run on a store without them reads empty tables of its session."""
        if not self.read_only:
            return _SCHEMA
        if not self.created:
            return []
        return [s.replace("CREATE TABLE", "CREATE TEMP TABLE") for s in _SCHEMA]

    def _load(self, stream: str, keys: Sequence[str]) -> dict[str, Delivered]:
        rows = self._db.execute(_BY_KEYS.format(_ROW), (orjson.dumps(keys).decode(), stream))
        return {key: decode_row(*row) for key, *row in rows}

    def _digests(self, stream: str, keys: Sequence[str]) -> dict[str, Stored]:
        rows = self._db.execute(
            _BY_KEYS.format(f"p.digest, {self._rows_digest}"),
            (orjson.dumps(keys).decode(), stream),
        )
        return {key: (digest, rows_digest) for key, digest, rows_digest in rows}

    def _note_rows(self, stream: str, rows: Sequence[RowsDigest]) -> None:
        self._writer.execute(_NOTE_ROWS, (orjson.dumps(rows).decode(), stream))

    def _commit(self, rows: Sequence[Row]) -> None:
        final = {(stream, key): after for stream, key, after in rows}  # one write per row
        upserts = [row_columns(s, k, d) for (s, k), d in final.items() if d is not None]
        deletes = [key for key, after in final.items() if after is None]
        with self._writer.transaction():
            if upserts:
                self._writer.execute(_UPSERT, (orjson.dumps(upserts).decode(),))
            if deletes:
                self._writer.execute(_DELETE, (orjson.dumps(deletes).decode(),))

    def _mark_seen(self, stream: str, seen: Sequence[Seen]) -> None:
        self._begin_snapshot(stream)
        self._db.execute(_SEEN, (stream, orjson.dumps(seen).decode()))

    def _begin_snapshot(self, stream: str) -> None:
        if stream in self._snapshots or self.read_only:
            return
        owned = self._db.execute(
            "SELECT pg_try_advisory_lock(hashtext('target-azure-eventhubs snapshot'), "
            "hashtext(%s))",
            (stream,),
        ).fetchone()[0]
        if not owned:
            raise ChangeStoreError(
                f"change store {self.location}: another run is taking a snapshot of stream "
                f"'{stream}'; with snapshot_end, one run at a time owns a stream's snapshot"
            )
        self._snapshots.add(stream)

    def _find_missing(self, stream: str) -> dict[str, tuple[int, int]]:
        self._db.execute("DROP TABLE IF EXISTS change_tracking_exits")
        # Autovacuum never sees temporary tables: without statistics the planner takes the
        # snapshot for a hundred rows.
        self._db.execute("ANALYZE change_tracking_seen")
        self._db.execute(_FIND_MISSING, (stream,))
        tracked = self._db.execute(
            "SELECT m, count(*) FROM change_tracking_profiles p, "
            "jsonb_object_keys(p.memberships::jsonb) AS m "
            "WHERE p.stream = %s AND p.membership_count > 0 GROUP BY m",
            (stream,),
        ).fetchall()
        missing = dict(
            self._db.execute(
                "SELECT m, count(*) FROM change_tracking_exits, unnest(missing) AS m GROUP BY m"
            ).fetchall()
        )
        return {str(seg): (int(n), int(missing.get(seg, 0))) for seg, n in tracked}

    def _next_missing(self, after: str, batch: int) -> list[Missing]:
        rows = self._db.execute(
            "SELECT profile_key, identity_map, attributes_fp, memberships, digest, present, "
            "missing "
            "FROM change_tracking_exits WHERE profile_key > %s ORDER BY profile_key LIMIT %s",
            (after, batch),
        ).fetchall()
        return [
            Missing(key, decode_row(ids, fp, members, dg), list(missing), bool(present))
            for key, ids, fp, members, dg, present, missing in rows
        ]

    def _end_snapshot(self, stream: str, record: bool) -> None:
        with self._db.transaction():
            if record:  # profiles with no membership left that the snapshot did not hold
                self._db.execute(
                    "DELETE FROM change_tracking_profiles p WHERE p.stream = %s "
                    "AND p.membership_count = 0 AND NOT EXISTS (SELECT 1 FROM "
                    "change_tracking_seen s WHERE s.stream = p.stream "
                    "AND s.profile_key = p.profile_key)",
                    (stream,),
                )
            if self._snapshots <= {stream} and not self.read_only:  # no other stream's rows
                self._db.execute("TRUNCATE change_tracking_seen")
            else:
                self._db.execute("DELETE FROM change_tracking_seen WHERE stream = %s", (stream,))
            self._db.execute("DROP TABLE IF EXISTS change_tracking_exits")
        if stream in self._snapshots:
            self._db.execute(
                "SELECT pg_advisory_unlock(hashtext('target-azure-eventhubs snapshot'), "
                "hashtext(%s))",
                (stream,),
            )
            self._snapshots.discard(stream)

    def _run_time(self, stream: str, now: str, record: bool) -> str:
        row = self._db.execute(
            "SELECT started_at, finished FROM change_tracking_runs WHERE stream = %s", (stream,)
        ).fetchone()
        if row is not None and not row[1]:
            return str(row[0])
        if record:
            self._db.execute(
                "INSERT INTO change_tracking_runs VALUES (%s, %s, false) ON CONFLICT (stream) "
                "DO UPDATE SET started_at = excluded.started_at, finished = false",
                (stream, now),
            )
        return now

    def _finish_run(self, streams: Sequence[str]) -> None:
        self._db.execute(
            "UPDATE change_tracking_runs SET finished = true WHERE stream = ANY(%s)",
            (list(streams),),
        )

    def _has_profiles(self, stream: str) -> bool:
        row = self._db.execute(
            "SELECT EXISTS (SELECT 1 FROM change_tracking_profiles WHERE stream = %s)", (stream,)
        ).fetchone()
        return bool(row[0])

    def _close(self) -> None:
        for connection in (self._db, self._writer):
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()
        self._db = self._writer = None
