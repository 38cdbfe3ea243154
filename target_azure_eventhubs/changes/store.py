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
from urllib.parse import urlsplit, urlunsplit

import orjson

from target_azure_eventhubs.changes.diff import Delivered
from target_azure_eventhubs.errors import ChangeStoreError

DEFAULT_STORE = "sqlite:///.target-azure-eventhubs/changes.sqlite"
SCHEMA_VERSION = "1"
_T = TypeVar("_T")

# A row to write: (stream, profile key, the delivered state, or None to delete the row).
Row = tuple[str, str, Delivered | None]


@dataclass(frozen=True, slots=True)
class Missing:
    """A delivered profile with memberships the completed snapshot lacks."""

    key: str
    before: Delivered
    missing: list[str]
    present: bool  # the profile itself was in the snapshot


def encode_row(delivered: Delivered) -> tuple[str, str, str, int, str]:
    """(identity map, attributes fingerprint, memberships, count, digest) as stored."""
    return (
        delivered.identity_json,
        delivered.attributes_fp,
        orjson.dumps(delivered.memberships).decode(),
        len(delivered.memberships),
        delivered.digest,
    )


def decode_row(identity_json: str, attributes_fp: str, memberships: str, digest: str) -> Delivered:
    return Delivered(identity_json, attributes_fp, memberships_json=memberships, digest=digest)


# A profile seen in a snapshot: its key, and the memberships its rows held, or None when
# they held every membership delivered before (then none of them can be missing).
Seen = tuple[str, list[str] | None]


def copy_text(*values: str | None) -> str:
    """One row of PostgreSQL's COPY text format."""
    return "\t".join(_COPY_NULL if v is None else v.translate(_COPY_ESCAPES) for v in values)


_COPY_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def safe_location(url: str) -> str:
    """The store's URL without a password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


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
        self._secret = urlsplit(url).password
        self._lock = threading.RLock()

    def _guard(self, what: str, call: Callable[[], _T]) -> _T:
        with self._lock:
            try:
                return call()
            except ChangeStoreError:
                raise
            except Exception as exc:
                raise ChangeStoreError(self.describe(what, exc)) from exc

    def describe(self, what: str, exc: BaseException) -> str:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        if self._secret:
            text = text.replace(self._secret, "***")
        return f"change store {self.location}: cannot {what}: {text}"

    # The operations, each in its own transaction -------------------------------------

    def load(self, stream: str, keys: Sequence[str]) -> dict[str, Delivered]:
        return self._guard("read", lambda: self._load(stream, keys))

    def commit(self, rows: Sequence[Row]) -> None:
        if rows:
            self._guard("write", lambda: self._commit(rows))

    def mark_seen(self, stream: str, seen: Sequence[Seen]) -> None:
        if seen:
            self._guard("note the snapshot", lambda: self._mark_seen(stream, seen))

    def find_missing(self, stream: str) -> tuple[int, int]:
        """(delivered memberships of the stream, those the snapshot lacks)."""
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

    def tracked_profiles(self, stream: str) -> int:
        return self._guard("read", lambda: self._tracked_profiles(stream))

    def close(self) -> None:
        with self._lock:
            self._close()

    # What each store implements -----------------------------------------------------

    @abc.abstractmethod
    def _load(self, stream: str, keys: Sequence[str]) -> dict[str, Delivered]: ...

    @abc.abstractmethod
    def _commit(self, rows: Sequence[Row]) -> None: ...

    @abc.abstractmethod
    def _mark_seen(self, stream: str, seen: Sequence[Seen]) -> None: ...

    @abc.abstractmethod
    def _find_missing(self, stream: str) -> tuple[int, int]: ...

    @abc.abstractmethod
    def _next_missing(self, after: str, batch: int) -> list[Missing]: ...

    @abc.abstractmethod
    def _end_snapshot(self, stream: str, record: bool) -> None: ...

    @abc.abstractmethod
    def _run_time(self, stream: str, now: str, record: bool) -> str: ...

    @abc.abstractmethod
    def _finish_run(self, streams: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def _tracked_profiles(self, stream: str) -> int: ...

    @abc.abstractmethod
    def _close(self) -> None: ...


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
