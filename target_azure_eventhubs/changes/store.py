"""The change store: what consumers were last sent for each profile, per stream.

Rows change only once Event Hubs accepted the event that told consumers about them (the
tracker calls `commit` when a checkpoint is released). During a complete snapshot, the
memberships seen are noted in a temporary table of the store's session (`mark_seen`), and
the missing ones are found there with SQL set operations (`find_missing`), so a snapshot
of millions of profiles is never loaded into the target's memory.

Two stores share this interface: SQLite (`sqlite:///PATH`, one run at a time) and
PostgreSQL (`postgresql://...`, several runners at once).
"""

from __future__ import annotations

import abc
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

from target_azure_eventhubs.changes.diff import Delivered
from target_azure_eventhubs.errors import ChangeStoreError, ConfigurationError

DEFAULT_STORE = "sqlite:///.target-azure-eventhubs/changes.sqlite"
SCHEMA_VERSION = "2"
# Stores of version 1 lack `rows_digest`; opening one for writing adds it.
UPGRADABLE_VERSION = "1"
_T = TypeVar("_T")

# A row to write: (stream, profile key, the delivered state, or None to delete the row).
Row = tuple[str, str, Delivered | None]
# What `digests` reads of a profile: its digest and its rows digest (see Delivered).
Stored = tuple[str, str | None]
# An unchanged profile's rows digest to keep: (profile key, its stored digest, rows digest).
RowsDigest = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Missing:
    """A delivered profile with memberships the completed snapshot lacks."""

    key: str
    before: Delivered
    missing: list[str]
    present: bool  # the profile itself was in the snapshot


decode_row = Delivered.stored


def row_columns(stream: str, key: str, after: Delivered) -> tuple[object, ...]:
    """A state's columns, in the order the stores' upserts read them."""
    memberships = after.memberships
    return (
        stream,
        key,
        after.identity_json,
        after.attributes_fp,
        memberships,
        len(memberships),
        after.digest,
        after.rows_digest,
    )


# A profile seen in a snapshot: its key, and the memberships its rows held, or None when
# they held every membership delivered before (then none of them can be missing).
Seen = tuple[str, list[str] | None]


_UNREADABLE = (
    "change_store cannot be read as a URL without showing a part of it: characters such as "
    "/ # ? @ in its user name or password must be percent-encoded (/ as %2F, # as %23, "
    "? as %3F, @ as %40)"
)


def _split(url: str) -> SplitResult:
    """`url` split into its parts; ConfigurationError, quoting none of it, when a password
    holding / # ? or @ would be read (here or by libpq) as a host, port, path or query."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError when the "port" is not a number)
    except ValueError:
        raise ConfigurationError(_UNREADABLE) from None
    after_scheme = url.partition("://")[2]
    if parts.netloc and (
        parts.netloc.count("@") > 1 or ("@" not in parts.netloc and "@" in after_scheme)
    ):
        raise ConfigurationError(_UNREADABLE)
    return parts


def _query_passwords(query: str) -> list[str]:
    return [value for key, value in parse_qsl(query) if key == "password"]


def safe_location(url: str) -> str:
    """The store's URL without a password (in the user info or as a `password` query
    parameter), for logs and errors."""
    parts = _split(url)
    query = "&".join(p for p in parts.query.split("&") if p.partition("=")[0] != "password")
    if parts.password is None and query == parts.query:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def sqlite_path(url: str) -> Path:
    """`sqlite:///relative/path` or `sqlite:////absolute/path` (SQLAlchemy's form)."""
    return Path(url.removeprefix("sqlite:///"))


class ChangeStore(abc.ABC):
    """One store, used from the target's main thread and the thread that releases
    checkpoints: every call holds the store's lock."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.location = safe_location(url)
        self.created = False  # the store had no tables before this run
        # A dry run reads the store and writes nothing to it: a store that does not exist
        # yet stands in as empty tables of the session.
        self.read_only = read_only
        parts = urlsplit(url)
        self._secrets = [s for s in (parts.password, *_query_passwords(parts.query)) if s]
        self._lock = threading.RLock()
        # Commits (the release thread) have a connection and a lock of their own: writing
        # never waits for the main thread's reads, nor they for it.
        self._write_lock = threading.Lock()

    def _guard(self, what: str, call: Callable[[], _T], *, write: bool = False) -> _T:
        with self._write_lock if write else self._lock:
            try:
                return call()
            except ChangeStoreError:
                raise
            except Exception as exc:
                raise ChangeStoreError(self.describe(what, exc)) from exc

    def describe(self, what: str, exc: BaseException) -> str:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return f"change store {self.location}: cannot {what}: {text}"

    # The operations, each in its own transaction -------------------------------------

    def load(self, stream: str, keys: Sequence[str]) -> dict[str, Delivered]:
        return self._guard("read", lambda: self._load(stream, keys))

    def digests(self, stream: str, keys: Sequence[str]) -> dict[str, Stored]:
        """The digests of each stored profile of `keys`: an unchanged one needs no more."""
        return self._guard("read", lambda: self._digests(stream, keys))

    def note_rows(self, stream: str, rows: Sequence[RowsDigest]) -> None:
        """Keep the rows digests of unchanged profiles, each only while the profile's
        stored digest is still the one given (a commit since then wins)."""
        if rows:
            self._guard("write", lambda: self._note_rows(stream, rows), write=True)

    def commit(self, rows: Sequence[Row]) -> None:
        if rows:
            self._guard("write", lambda: self._commit(rows), write=True)

    def begin_snapshot(self, stream: str) -> None:
        """Claim `stream`'s snapshot for this run before its first event is decided: a
        run that cannot must fail before it sends anything."""
        self._guard("begin the snapshot", lambda: self._begin_snapshot(stream))

    def mark_seen(self, stream: str, seen: Sequence[Seen]) -> None:
        if seen:
            self._guard("note the snapshot", lambda: self._mark_seen(stream, seen))

    def find_missing(self, stream: str) -> dict[str, tuple[int, int]]:
        """Per segment of the stream: (its delivered memberships, those the snapshot
        lacks)."""
        return self._guard("compare the snapshot", lambda: self._find_missing(stream))

    def iter_missing(self, stream: str, batch: int = 1000) -> Iterator[list[Missing]]:
        after = ""
        while rows := self._guard(
            "read the exits", functools.partial(self._next_missing, after, batch)
        ):
            after = rows[-1].key
            yield rows

    def end_snapshot(self, stream: str, *, record: bool) -> None:
        self._guard("end the snapshot", lambda: self._end_snapshot(stream, record))

    def run_time(self, stream: str, now: str, *, record: bool) -> str:
        """The time of this run's decisions for `stream`: an unfinished run's, so that a
        run after a failure sends identical events (same message ids), else `now`."""
        return self._guard("start the run", lambda: self._run_time(stream, now, record))

    def finish_run(self, streams: Sequence[str]) -> None:
        if streams:
            self._guard("finish the run", lambda: self._finish_run(streams))

    def has_profiles(self, stream: str) -> bool:
        """Whether any profile of `stream` was delivered before."""
        return self._guard("read", lambda: self._has_profiles(stream))

    def close(self) -> None:
        with self._lock, self._write_lock:
            self._close()

    # What each store implements -----------------------------------------------------

    @abc.abstractmethod
    def _load(self, stream: str, keys: Sequence[str]) -> dict[str, Delivered]: ...

    @abc.abstractmethod
    def _digests(self, stream: str, keys: Sequence[str]) -> dict[str, Stored]: ...

    @abc.abstractmethod
    def _note_rows(self, stream: str, rows: Sequence[RowsDigest]) -> None: ...

    @abc.abstractmethod
    def _commit(self, rows: Sequence[Row]) -> None: ...

    @abc.abstractmethod
    def _begin_snapshot(self, stream: str) -> None: ...

    @abc.abstractmethod
    def _mark_seen(self, stream: str, seen: Sequence[Seen]) -> None: ...

    @abc.abstractmethod
    def _find_missing(self, stream: str) -> dict[str, tuple[int, int]]: ...

    @abc.abstractmethod
    def _next_missing(self, after: str, batch: int) -> list[Missing]: ...

    @abc.abstractmethod
    def _end_snapshot(self, stream: str, record: bool) -> None: ...

    @abc.abstractmethod
    def _run_time(self, stream: str, now: str, record: bool) -> str: ...

    @abc.abstractmethod
    def _finish_run(self, streams: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def _has_profiles(self, stream: str) -> bool: ...

    @abc.abstractmethod
    def _close(self) -> None: ...
