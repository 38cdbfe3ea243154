"""The SQLite change store: a file on the runner's disk, one run at a time.

A second run on the same file fails at once with a clear error (an exclusive lock on a
sidecar `.lock` file), rather than interleaving two snapshots. WAL journaling keeps the file
consistent through a crash or SIGKILL at any point.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from types import ModuleType
from typing import IO, Any

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
    sqlite_path,
)
from target_azure_eventhubs.errors import ChangeStoreError

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: the store cannot lock its file (see _exclusive_lock)
    fcntl = None

_BUSY_TIMEOUT_SECONDS = 30.0
# CROSS JOIN: the keys lead and the primary key finds each one (left to itself, the
# planner may scan the table once per key).
_BY_KEY = "WHERE p.stream = ? AND p.profile_key = j.value"

_TABLES = """
CREATE TABLE IF NOT EXISTS change_tracking_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS change_tracking_profiles (
    stream TEXT NOT NULL,
    profile_key TEXT NOT NULL,
    identity_map TEXT NOT NULL,
    attributes_fp TEXT NOT NULL,
    memberships TEXT NOT NULL,
    membership_count INTEGER NOT NULL,
    digest TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    rows_digest TEXT,
    PRIMARY KEY (stream, profile_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS change_tracking_runs (
    stream TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished INTEGER NOT NULL
);
"""
_SESSION = """
CREATE TEMP TABLE IF NOT EXISTS change_tracking_seen (
    stream TEXT NOT NULL, profile_key TEXT NOT NULL, complete INTEGER NOT NULL, segments TEXT
);
CREATE INDEX IF NOT EXISTS temp.change_tracking_seen_key
    ON change_tracking_seen (stream, profile_key);
"""

# One statement per commit: the rows travel as one JSON array, so SQLite parses them with
# the GIL released instead of Python binding each row (the commit runs beside the reader).
_UPSERT = """
INSERT INTO change_tracking_profiles
    (stream, profile_key, identity_map, attributes_fp, memberships, membership_count, digest,
     rows_digest, updated_at)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
    json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
    json_extract(value, '$[6]'), json_extract(value, '$[7]'),
    strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
FROM json_each(?) WHERE true
ON CONFLICT (stream, profile_key) DO UPDATE SET
    identity_map = excluded.identity_map,
    attributes_fp = excluded.attributes_fp,
    memberships = excluded.memberships,
    membership_count = excluded.membership_count,
    digest = excluded.digest,
    rows_digest = excluded.rows_digest,
    updated_at = excluded.updated_at
"""
_NOTE_ROWS = """
UPDATE change_tracking_profiles AS p SET rows_digest = json_extract(r.value, '$[2]')
FROM json_each(?) AS r
WHERE p.stream = ? AND p.profile_key = json_extract(r.value, '$[0]')
    AND p.digest = json_extract(r.value, '$[1]')
"""
_DELETE = """
DELETE FROM change_tracking_profiles WHERE (stream, profile_key) IN
    (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))
"""
_SEEN = """
INSERT INTO change_tracking_seen
SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]') IS NULL,
    json_extract(value, '$[1]')
FROM json_each(?)
"""

# Each delivered profile of the stream, with the memberships no seen row of it holds;
# a complete seen row (one that held every delivered membership) rules the profile out.
_FIND_MISSING = """
CREATE TEMP TABLE change_tracking_exits AS
SELECT profile_key, identity_map, attributes_fp, memberships, digest, present, missing FROM (
    SELECT p.profile_key, p.identity_map, p.attributes_fp, p.memberships, p.digest,
        EXISTS (SELECT 1 FROM change_tracking_seen s
                WHERE s.stream = p.stream AND s.profile_key = p.profile_key) AS present,
        (SELECT json_group_array(j.key) FROM json_each(p.memberships) AS j
         WHERE NOT EXISTS (
            SELECT 1 FROM change_tracking_seen s, json_each(s.segments) AS k
            WHERE s.stream = p.stream AND s.profile_key = p.profile_key AND k.value = j.key
         )) AS missing
    FROM change_tracking_profiles p
    WHERE p.stream = ? AND p.membership_count > 0 AND NOT EXISTS (
        SELECT 1 FROM change_tracking_seen s
        WHERE s.stream = p.stream AND s.profile_key = p.profile_key AND s.complete
    )
) WHERE missing <> '[]'
"""


class SQLiteStore(ChangeStore):
    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(url, read_only=read_only)
        self.path = sqlite_path(url).expanduser().resolve()
        self.location = f"sqlite:///{self.path}"
        self._lock_file: IO[bytes] | None = None
        self._db: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None  # commits
        self._stale: set[str] = set()  # streams whose seen rows are of an ended snapshot
        self._rows_digest = "p.rows_digest"  # "NULL" in a dry run on a version 1 store
        self._guard("open", self._open)

    def _open(self) -> None:
        if self.read_only:
            self._open_read_only()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._exclusive_lock()
        db = self._db = self._connect(str(self.path))
        self.created = not self._has_table("change_tracking_profiles")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash never corrupts the file
        db.executescript(_TABLES + _SESSION)
        self._check_version()
        self._writer = self._connect(str(self.path))
        self._writer.execute("PRAGMA synchronous=NORMAL")  # per connection, not per file

    def _open_read_only(self) -> None:
        exists = self.path.exists()
        self._db = self._connect(f"{self.path.as_uri()}?mode=ro" if exists else ":memory:")
        self.created = not exists or not self._has_table("change_tracking_profiles")
        tables = _TABLES.replace("CREATE TABLE", "CREATE TEMP TABLE") if self.created else ""
        self._db.executescript(tables + _SESSION)
        self._check_version()

    def _connect(self, target: str) -> sqlite3.Connection:
        return sqlite3.connect(
            target,
            timeout=_BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,  # every call holds the store's lock
            uri=target.startswith("file:"),
        )

    def _check_version(self) -> None:
        assert self._db is not None
        version = self._db.execute(
            "SELECT value FROM change_tracking_meta WHERE key = 'schema_version'"
        ).fetchone()
        if version is None:
            self._db.execute(
                "INSERT INTO change_tracking_meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )
        elif version[0] == UPGRADABLE_VERSION and self.read_only:
            self._rows_digest = "NULL"
        elif version[0] == UPGRADABLE_VERSION:
            with self._transaction() as cursor:
                cursor.execute("ALTER TABLE change_tracking_profiles ADD COLUMN rows_digest TEXT")
                cursor.execute(
                    "UPDATE change_tracking_meta SET value = ? WHERE key = 'schema_version'",
                    (SCHEMA_VERSION,),
                )
        elif version[0] != SCHEMA_VERSION:
            raise ChangeStoreError(
                f"change store {self.location} has schema version {version[0]}; this version "
                f"of target-azure-eventhubs reads version {SCHEMA_VERSION}"
            )

    def _exclusive_lock(self) -> IO[bytes]:
        if fcntl is None:
            raise ChangeStoreError(
                f"change store {self.location}: the SQLite store locks its file with POSIX "
                "file locks, which this system lacks; run on Linux or macOS (on Windows, in "
                "WSL), or use a PostgreSQL store (change_store: postgresql://...)"
            )
        handle = open(f"{self.path}.lock", "a+b")  # noqa: SIM115  (held for the whole run)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ChangeStoreError(
                f"change store {self.location} is in use by another run of "
                "target-azure-eventhubs; a SQLite store serves one run at a time: wait for "
                "that run, or use a PostgreSQL store (change_store: postgresql://...) to run "
                "several at once"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()).encode())
        handle.flush()
        return handle

    def _has_table(self, name: str) -> bool:
        assert self._db is not None
        found = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return found is not None

    @contextlib.contextmanager
    def _transaction(self, connection: sqlite3.Connection | None = None) -> Any:
        connection = connection or self._db
        assert connection is not None
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def _load(self, stream: str, keys: Sequence[str]) -> dict[str, Delivered]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT p.profile_key, p.identity_map, p.attributes_fp, p.memberships, p.digest "
            f"FROM json_each(?) AS j CROSS JOIN change_tracking_profiles AS p {_BY_KEY}",
            (orjson.dumps(keys), stream),
        )
        return {key: decode_row(*row) for key, *row in rows}

    def _digests(self, stream: str, keys: Sequence[str]) -> dict[str, Stored]:
        assert self._db is not None
        rows = self._db.execute(
            f"SELECT p.profile_key, p.digest, {self._rows_digest} "
            f"FROM json_each(?) AS j CROSS JOIN change_tracking_profiles AS p {_BY_KEY}",
            (orjson.dumps(keys), stream),
        )
        return {key: (digest, rows_digest) for key, digest, rows_digest in rows}

    def _note_rows(self, stream: str, rows: Sequence[RowsDigest]) -> None:
        with self._transaction(self._writer) as cursor:
            cursor.execute(_NOTE_ROWS, (orjson.dumps(rows), stream))

    def _commit(self, rows: Sequence[Row]) -> None:
        final = {(stream, key): after for stream, key, after in rows}  # a later write wins
        # Memberships travel as JSON objects inside the array; SQLite stores their text.
        upserts = [row_columns(s, k, d) for (s, k), d in final.items() if d is not None]
        deletes = [key for key, after in final.items() if after is None]
        with self._transaction(self._writer) as cursor:
            if upserts:
                cursor.execute(_UPSERT, (orjson.dumps(upserts),))
            if deletes:
                cursor.execute(_DELETE, (orjson.dumps(deletes),))

    def _begin_snapshot(self, stream: str) -> None:
        """Nothing to claim: the file admits one run at a time."""

    def _mark_seen(self, stream: str, seen: Sequence[Seen]) -> None:
        # One statement, atomic alone; it writes only the temp schema, so it takes no lock
        # on the store a commit could be holding.
        assert self._db is not None
        self._forget_seen(stream)
        self._db.execute(_SEEN, (stream, orjson.dumps(seen)))

    def _find_missing(self, stream: str) -> dict[str, tuple[int, int]]:
        assert self._db is not None
        self._forget_seen(stream)
        self._db.execute("DROP TABLE IF EXISTS temp.change_tracking_exits")
        self._db.execute(_FIND_MISSING, (stream,))
        self._db.execute(
            "CREATE INDEX temp.change_tracking_exits_key ON change_tracking_exits (profile_key)"
        )
        tracked = self._db.execute(
            "SELECT j.key, count(*) FROM change_tracking_profiles p, json_each(p.memberships) j "
            "WHERE p.stream = ? AND p.membership_count > 0 GROUP BY j.key",
            (stream,),
        ).fetchall()
        missing = dict(
            self._db.execute(
                "SELECT j.value, count(*) FROM change_tracking_exits e, json_each(e.missing) j "
                "GROUP BY j.value"
            ).fetchall()
        )
        return {str(seg): (int(n), int(missing.get(seg, 0))) for seg, n in tracked}

    def _next_missing(self, after: str, batch: int) -> list[Missing]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT profile_key, identity_map, attributes_fp, memberships, digest, present, "
            "missing "
            "FROM change_tracking_exits WHERE profile_key > ? ORDER BY profile_key LIMIT ?",
            (after, batch),
        ).fetchall()
        return [
            Missing(key, decode_row(ids, fp, members, dg), _loads_list(missing), bool(present))
            for key, ids, fp, members, dg, present, missing in rows
        ]

    def _end_snapshot(self, stream: str, record: bool) -> None:
        with self._transaction() as cursor:
            if record:  # profiles with no membership left that the snapshot did not hold
                cursor.execute(
                    "DELETE FROM change_tracking_profiles WHERE stream = ? "
                    "AND membership_count = 0 AND NOT EXISTS (SELECT 1 FROM "
                    "change_tracking_seen s WHERE s.stream = change_tracking_profiles.stream "
                    "AND s.profile_key = change_tracking_profiles.profile_key)",
                    (stream,),
                )
            cursor.execute("DROP TABLE IF EXISTS temp.change_tracking_exits")
        # The session's seen rows go with its connection; a later snapshot of the stream in
        # this run forgets them first (a run's last snapshot needs no time for it).
        self._stale.add(stream)

    def _forget_seen(self, stream: str) -> None:
        if stream in self._stale:
            assert self._db is not None
            self._db.execute("DELETE FROM change_tracking_seen WHERE stream = ?", (stream,))
            self._stale.discard(stream)

    def _run_time(self, stream: str, now: str, record: bool) -> str:
        assert self._db is not None
        row = self._db.execute(
            "SELECT started_at, finished FROM change_tracking_runs WHERE stream = ?", (stream,)
        ).fetchone()
        if row is not None and not row[1]:
            return str(row[0])
        if record:
            with self._transaction() as cursor:
                cursor.execute(
                    "INSERT INTO change_tracking_runs VALUES (?, ?, 0) ON CONFLICT (stream) "
                    "DO UPDATE SET started_at = excluded.started_at, finished = 0",
                    (stream, now),
                )
        return now

    def _finish_run(self, streams: Sequence[str]) -> None:
        with self._transaction() as cursor:
            cursor.executemany(
                "UPDATE change_tracking_runs SET finished = 1 WHERE stream = ?",
                [(stream,) for stream in streams],
            )

    def _has_profiles(self, stream: str) -> bool:
        assert self._db is not None
        row = self._db.execute(
            "SELECT EXISTS (SELECT 1 FROM change_tracking_profiles WHERE stream = ?)", (stream,)
        ).fetchone()
        return bool(row[0])

    def _close(self) -> None:
        for connection in (self._db, self._writer):
            if connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
        self._db = self._writer = None
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None


def _loads_list(text: str) -> list[str]:
    return [str(item) for item in orjson.loads(text)]
