"""Change tracking during a run: decisions per profile, commits once Event Hubs accepted.

`decide` compares a drained batch of profiles with what the store says consumers were sent,
and returns the events to send (None for an unchanged profile). Until their events are
accepted, decisions live in an overlay in memory (later rows of a profile see them), never
in the store. The target registers the decisions of the events it submits under a
checkpoint mark (`register`); when delivery releases that mark, `commit_through` writes
them to the store, before any STATE the mark covers is written.

A failed send leaves the store as it was, so the next run derives the same change again;
a run after a failed one decides at the failed run's time, so the event it re-sends is
identical, with the same message id.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import threading
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from target_azure_eventhubs.changes.background import Background
from target_azure_eventhubs.changes.diff import (
    Decision,
    Delivered,
    Given,
    diff_profile,
    exit_missing,
)
from target_azure_eventhubs.changes.store import ChangeStore, RowsDigest, Seen, Stored
from target_azure_eventhubs.errors import SnapshotGuardError
from target_azure_eventhubs.events import ProfileEvent

SNAPSHOT_ENDS = ("none", "end_of_input", "activate_version")


class Change(NamedTuple):
    """A decision waiting for its event's acceptance."""

    stream: str
    key: str
    after: Delivered | None
    version: int  # of the overlay entry it made


@dataclass(frozen=True, slots=True)
class Refused:
    """A profile whose event cannot be made (its attributes cannot be written as JSON)."""

    reason: str


Result = tuple[Decision, Change] | Refused | None


class Held(Protocol):
    """A profile as the sink holds it: its input rows, converted only when asked for.

    A profile whose stored state was made by these very rows (the same `digest`) is
    unchanged: it is neither converted nor compared. That is what makes a run on an
    unchanged snapshot cheaper than sending it.
    """

    @property
    def digest(self) -> str:
        """Of the rows as they came; "" when they cannot be recognised again (a row was
        refused, or they cannot be written as JSON)."""

    @property
    def profile(self) -> ProfileEvent | None:
        """The rows converted and merged; None when every row was refused."""


Item = ProfileEvent | Held


def _profile(item: Item) -> ProfileEvent | None:
    return item if isinstance(item, ProfileEvent) else item.profile


@dataclass(slots=True)
class Counts:
    """Per stream: events decided and what they say, profiles without an event."""

    events: int = 0
    realized: int = 0
    existing: int = 0
    exited: int = 0
    unchanged: int = 0
    # Profiles never delivered whose input only exits memberships: nothing to tell.
    only_exits: int = 0

    def add(self, decision: Decision) -> None:
        self.events += 1
        self.realized += decision.realized
        self.existing += decision.existing
        self.exited += decision.exited


@dataclass(frozen=True, slots=True)
class Options:
    snapshot_end: str = "none"
    baseline: bool = False  # record what the input says without sending anything
    record: bool = True  # False for a dry run: the store is only read
    max_exit_fraction: float = 0.5


def _given(profile: ProfileEvent | None) -> Given | Refused:
    if profile is None:  # the sink reports each of its rows
        return Refused("none of its rows could be converted")
    try:
        return Given.of(profile.identities, profile.attributes, profile.memberships)
    except TypeError as exc:  # orjson: attributes nested beyond its limit
        return Refused(f"its attributes cannot be written as JSON: {exc}")


def _note_rows(after: Delivered | None, item: Item, given: Given) -> None:
    """Keep the rows' digest with a state that is exactly what they say: the same rows
    in a later run are then known unchanged without being converted."""
    if after is None or isinstance(item, ProfileEvent) or not given.whole:
        return
    if after.digest == given.digest:
        after.rows_digest = item.digest or None


def _renewal(key: str, item: Item, given: Given, row: Stored | None) -> RowsDigest | None:
    """(key, digest, rows digest) for an unchanged profile whose stored state is exactly
    what its rows say but has no rows digest (its last change was an exit found at the end
    of a snapshot, or the store predates rows digests)."""
    if row is None or row[1] is not None or isinstance(item, ProfileEvent):
        return None
    if not given.whole or row[0] != given.digest or not item.digest:
        return None
    return key, given.digest, item.digest


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ChangeTracker:
    def __init__(
        self, store: ChangeStore, options: Options, logger: logging.Logger | None = None
    ) -> None:
        self.store = store
        self.options = options
        self.logger = logger or logging.getLogger("target_azure_eventhubs.changes")
        self.counts: dict[str, Counts] = {}
        # Per stream, the last profile decided and whether it was unchanged: a profile
        # whose rows a flush split in two is one profile in the counts, not two.
        self._last: dict[str, tuple[str, bool]] = {}
        # Per stream and segment, the memberships this run's snapshot realized: consumers
        # did not know them before it, so they do not count for the exit guard.
        self._realized: dict[str, Counter[str]] = {}
        self._times: dict[str, str] = {}
        # Streams whose snapshot began with nothing delivered: every profile the store will
        # hold for them comes from the snapshot itself, so none can be missing from it.
        self._fresh: set[str] = set()
        self._overlay: dict[tuple[str, str], tuple[int, Delivered | None]] = {}
        self._versions = itertools.count(1)
        self._unmarked: list[Change] = []
        self._marked: deque[tuple[int, list[Change]]] = deque()
        self._lock = threading.Lock()
        self._background = Background(store)

    @property
    def snapshots(self) -> bool:
        return self.options.snapshot_end != "none"

    def counts_for(self, stream: str) -> Counts:
        return self.counts.setdefault(stream, Counts())

    # Deciding (the target's main thread) -------------------------------------------------

    def decide(self, stream: str, items: Sequence[tuple[str, Item]]) -> list[Result]:
        """Per item, the event to send and its pending change; None when unchanged."""
        now = self._run_time(stream)
        found, asked = self._overlaid(stream, items)
        stored = self._background.digests(stream, asked) if asked else None
        givens, answer = self._givens(items, stored)
        before = self._lookup(stream, items, givens, found, answer)
        counts = self.counts_for(stream)
        results: list[Result] = []
        seen: list[Seen] = []
        pending: list[Change] = []
        renewed: list[RowsDigest] = []
        carry = not self.snapshots
        # A first snapshot of a stream has nothing to compare at its end: no seen rows.
        noted = self.snapshots and stream not in self._fresh
        for (key, item), given in zip(items, givens, strict=True):
            if given is None:  # its stored state was made by these very rows
                self._count_unchanged(stream, key, counts)
                results.append(None)
                if noted:
                    seen.append((key, None))
                continue
            if isinstance(given, Refused):
                results.append(given)
                continue
            prior = before.get(key)
            if noted:
                seen.append((key, None if given.holds_all(prior) else given.present))
            decision = diff_profile(prior, given, now, carry=carry)
            if decision is None and prior is None:
                counts.only_exits += 1
                results.append(None)
                continue
            if decision is None:
                self._count_unchanged(stream, key, counts)
                results.append(None)
                if (renew := _renewal(key, item, given, answer.get(key))) is not None:
                    renewed.append(renew)
                continue
            before[key] = decision.after
            _note_rows(decision.after, item, given)
            self._count_change(stream, key, decision, counts)
            change = Change(stream, key, decision.after, next(self._versions))
            pending.append(change)
            results.append((decision, change))
        self._hold(pending)
        self._background.mark_seen(stream, seen)
        if self.options.record:
            self._background.note_rows(stream, renewed)
        return self._recorded(results)

    def _count_change(self, stream: str, key: str, decision: Decision, counts: Counts) -> None:
        counts.add(decision)
        if decision.realized and self.snapshots:
            realized = self._realized.setdefault(stream, Counter())
            realized.update(
                seg for seg, m in decision.memberships.items() if m.get("status") == "realized"
            )
        if self._last.get(stream) == (key, True):  # its first part was unchanged
            counts.unchanged -= 1
        self._last[stream] = (key, False)

    def _count_unchanged(self, stream: str, key: str, counts: Counts) -> None:
        """A profile's rows continued from the previous batch are the same profile."""
        if self._last.get(stream, ("", False))[0] != key:
            counts.unchanged += 1
            self._last[stream] = (key, True)

    def _recorded(self, results: list[Result]) -> list[Result]:
        """With `change_tracking_baseline`, decisions go to the store now, unsent."""
        if not self.options.baseline:
            return results
        self._commit([result[1] for result in results if isinstance(result, tuple)])
        return [result if isinstance(result, Refused) else None for result in results]

    def _run_time(self, stream: str) -> str:
        if stream not in self._times:
            if self.snapshots:
                self.store.begin_snapshot(stream)
            now = utc_now()
            when = self.store.run_time(stream, now, record=self.options.record)
            if when != now:
                self.logger.info(
                    "Stream '%s': the last run did not finish; deciding at its time %s so "
                    "that events it may have sent are sent again unchanged",
                    stream,
                    when,
                )
            empty = self.store.created or not self.store.has_profiles(stream)
            if empty and when == now and not self.store.created:
                self.logger.info(
                    "Change tracking: stream '%s' has no delivered profiles in %s yet: "
                    "every profile is new in this run",
                    stream,
                    self.store.location,
                )
            if empty and self.snapshots:
                self._fresh.add(stream)
            self._times[stream] = when
        return self._times[stream]

    def _overlaid(
        self, stream: str, items: Sequence[tuple[str, Item]]
    ) -> tuple[dict[str, Delivered | None], list[str]]:
        """The decisions not yet committed of these profiles, and the keys of the others."""
        found: dict[str, Delivered | None] = {}
        asked: dict[str, None] = {}
        with self._lock:
            for key, _ in items:
                entry = self._overlay.get((stream, key))
                if entry is not None:
                    found[key] = entry[1]
                else:
                    asked[key] = None
        return found, list(asked)

    def _givens(
        self, items: Sequence[tuple[str, Item]], stored: Future[dict[str, Stored]] | None
    ) -> tuple[list[Given | Refused | None], dict[str, Stored]]:
        """Each item's Given, or None for rows that made their profile's stored state."""
        if stored is None:
            return [_given(_profile(item)) for _, item in items], {}
        for _, item in items:  # while the store answers
            if not isinstance(item, ProfileEvent):
                _ = item.digest
        answer = stored.result()
        givens: list[Given | Refused | None] = []
        for key, item in items:
            row = answer.get(key)
            if row and row[1] and not isinstance(item, ProfileEvent) and row[1] == item.digest:
                givens.append(None)
            else:
                givens.append(_given(_profile(item)))
        return givens, answer

    def _lookup(
        self,
        stream: str,
        items: Sequence[tuple[str, Item]],
        givens: Sequence[Given | Refused | None],
        found: dict[str, Delivered | None],
        answer: dict[str, Stored],
    ) -> dict[str, Delivered | None]:
        """What consumers were last sent for each profile to compare: `found` in the
        overlay, else the store's rows. A stored row whose digest is the input's is not
        read."""
        same: dict[str, Given | None] = {}  # None: read the row whatever its digest
        for (key, _), given in zip(items, givens, strict=True):
            if given is None:
                continue  # unchanged: nothing to compare
            if key in same or not isinstance(given, Given) or not given.whole:
                same[key] = None
            else:
                same[key] = given
        read = []
        for key, (digest, _) in answer.items():
            if key not in same:
                continue
            held = same[key]
            if held is not None and digest == held.digest:
                found[key] = Delivered.known(held)
            else:  # changed, exiting memberships, or twice in the batch
                read.append(key)
        if read:
            found.update(self.store.load(stream, read))
        return found

    def _hold(self, changes: list[Change]) -> None:
        """Decisions not yet committed: later rows of their profiles see them."""
        with self._lock:
            for change in changes:
                self._overlay[(change.stream, change.key)] = (change.version, change.after)

    # Committing (any thread) -------------------------------------------------------------

    def register(self, mark: int, changes: list[Change]) -> None:
        """`changes` are those of events submitted before checkpoint `mark`."""
        if changes:
            with self._lock:
                self._marked.append((mark, changes))

    def commit_through(self, mark: int) -> None:
        """Write the changes of every mark up to `mark`: their events were accepted."""
        with self._lock:
            ready: list[Change] = []
            while self._marked and self._marked[0][0] <= mark:
                ready.extend(self._marked.popleft()[1])
        if ready:
            self._commit(ready)

    def _commit(self, changes: list[Change]) -> None:
        if self.options.record:  # a dry run only forgets them
            self.store.commit([(c.stream, c.key, c.after) for c in changes])  # last one wins
        with self._lock:
            for change in changes:
                slot = (change.stream, change.key)
                entry = self._overlay.get(slot)
                if entry is not None and entry[0] == change.version:
                    del self._overlay[slot]

    def uncommitted(self) -> int:
        with self._lock:
            return sum(len(changes) for _, changes in self._marked)

    # Completing a snapshot ---------------------------------------------------------------

    def exits(self, stream: str) -> Iterator[list[tuple[str, ProfileEvent, Decision, Change]]]:
        """The events of the memberships the completed snapshot lacks, in batches.

        Call once every event of the snapshot has been accepted and committed. Raises
        SnapshotGuardError, exiting nothing, when more than `max_exit_fraction` of the
        stream's delivered memberships would exit.
        """
        now = self._run_time(stream)
        if stream in self._fresh:  # nothing was delivered before it: nothing can be missing
            self._fresh.discard(stream)  # a later snapshot in this run is compared
            self.store.end_snapshot(stream, record=False)
            return
        self._background.settle()  # every seen row is in the store
        per_segment = self.store.find_missing(stream)
        # The guard weighs each segment's exits against what consumers knew of it before
        # this snapshot: the memberships it realized itself (committed by now, unless in a
        # dry run) do not dilute them.
        realized = self._realized.pop(stream, Counter()) if self.options.record else Counter()
        known = {
            seg: (tracked - min(tracked, realized[seg]), missing)
            for seg, (tracked, missing) in per_segment.items()
        }
        self._guard(stream, known)
        tracked = sum(n for n, _ in known.values())
        missing = sum(m for _, m in known.values())
        if missing:
            self.logger.info(
                "Stream '%s': the snapshot is complete; %d of %d delivered memberships are no "
                "longer in it and exit",
                stream,
                missing,
                tracked,
            )
        counts = self.counts_for(stream)
        for batch in self.store.iter_missing(stream):
            out = []
            for found in batch:
                decision = exit_missing(found.before, found.missing, now, present=found.present)
                counts.add(decision)
                change = Change(stream, found.key, decision.after, next(self._versions))
                identities = {ns: list(ids) for ns, ids in found.before.identity_map.items()}
                profile = ProfileEvent(identities, {}, decision.memberships)
                out.append((found.key, profile, decision, change))
            self._hold([change for *_, change in out])
            if self.options.baseline:
                self._commit([change for *_, change in out])
                continue
            yield out
        self.store.end_snapshot(stream, record=self.options.record)

    def _guard(self, stream: str, known: Mapping[str, tuple[int, int]]) -> None:
        """Refuse the snapshot when the stream would lose more than max_exit_fraction of
        the memberships delivered before it. The stream as a whole, not each segment: a
        small segment may empty for real, while a cut input shrinks every segment."""
        limit = self.options.max_exit_fraction
        tracked = sum(n for n, _ in known.values())
        missing = sum(m for _, m in known.values())
        if not tracked or missing / tracked <= limit:
            return
        self.store.end_snapshot(stream, record=False)
        seg, (seg_tracked, seg_missing) = max(known.items(), key=lambda item: item[1][1])
        raise SnapshotGuardError(
            f"stream '{stream}': the snapshot would exit {missing} of its {tracked} delivered "
            f"memberships ({missing / tracked:.0%}; the most in segment '{seg}': "
            f"{seg_missing} of {seg_tracked}), more than max_exit_fraction {limit:g} allows. "
            "Nothing was exited and the change store keeps them. If the input was cut short "
            "(a failed tap), run again once it is complete; if the audiences really shrank, "
            f"run once with max_exit_fraction of at least {missing / tracked:.2f} (1 allows "
            "any)"
        )

    def present(self, stream: str, key: str) -> None:
        """A profile of the snapshot whose record was refused (on_invalid_record skip or
        dead_letter): whatever it holds is not known, so none of it may exit."""
        if self.snapshots and stream not in self._fresh:
            self._background.mark_seen(stream, [(key, None)])

    def finish(self) -> None:
        """The run succeeded: the next one decides at a new time."""
        self._background.settle()
        if self.options.record:
            self.store.finish_run(sorted(self._times))

    def close(self) -> None:
        """Stop the store's background thread, then close the store."""
        try:
            self._background.close()
        finally:
            self.store.close()
