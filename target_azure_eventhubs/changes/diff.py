"""The diff: what a profile's event says, given what consumers were last sent for it.

Pure code. The rules, as Adobe Real-Time CDP applies them to audience memberships:

- A membership seen for the first time is `realized`, at the input's time or else at the
  run's time (`now`).
- A membership delivered before and still present is `existing`, at its delivered time.
  With incremental input it is carried in every event of the profile (delivered and not
  ended is all there is to know); with complete snapshots (`carry` False) an event names
  only the memberships of its rows: one missing from them may still come in a later row,
  or exit when the snapshot completes.
- `exited` in the input ends a delivered membership, at the input's time or `now`; an
  exit of a membership never delivered ends nothing and is not sent.
- A profile whose memberships, identities and mapped attributes are all unchanged gets no
  event (`diff_profile` returns None); nor does a profile never delivered whose event
  would name no membership.
- A complete snapshot that lacks a delivered membership exits it at `now`
  (`exit_missing`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# Keys of an input membership that travel with it into the event (see events.body).
_CARRIED = frozenset({"name", "createdAt", "updatedAt", "mappingCreatedAt", "mappingUpdatedAt"})
_SORTED = orjson.OPT_SORT_KEYS
_sha256 = hashlib.sha256
_UNREAD = "(not read: the stored digest is the input's)"


class Delivered:
    """What consumers were last sent for one profile: a row of the change store.

    `digest` covers the identities, the attributes' fingerprint and the membership ids:
    an unchanged profile is recognised by it alone, without reading its memberships.
    `rows_digest` is that of the input rows whose event made this state, when the state is
    exactly what they say (see `tracker.Held`): the same rows again need not be compared.
    """

    __slots__ = (
        "_memberships",
        "_memberships_json",
        "attributes_fp",
        "digest",
        "identity_json",
        "rows_digest",
    )

    def __init__(
        self,
        identity_json: str,  # the identity map as sent (JSON): hashed namespaces stay hashed
        attributes_fp: str,  # a fingerprint of the mapped attributes, never their values
        memberships: dict[str, str] | None = None,  # segment id -> lastQualificationTime
        *,
        memberships_json: str | None = None,  # or as the store keeps them, read on demand
        digest: str | None = None,
    ) -> None:
        self.identity_json = identity_json
        self.attributes_fp = attributes_fp
        self._memberships = memberships
        self._memberships_json = memberships_json
        self.digest = digest or content_digest(identity_json, attributes_fp, self.memberships)
        self.rows_digest: str | None = None

    @classmethod
    def stored(
        cls, identity_json: str, attributes_fp: str, memberships_json: str, digest: str
    ) -> Delivered:
        """A row as the store reads it: the memberships are decoded when first needed."""
        row = cls.__new__(cls)
        row.identity_json, row.attributes_fp, row.digest = identity_json, attributes_fp, digest
        row._memberships, row._memberships_json = None, memberships_json
        row.rows_digest = None
        return row

    @classmethod
    def known(cls, given: Given) -> Delivered:
        """A stored row whose digest is `given`'s: the same identities, attributes and
        memberships, so its columns need not be read (nor may its times be asked for)."""
        return cls.stored(given.identity_json, given.attributes_fp, _UNREAD, given.digest)

    @property
    def memberships(self) -> dict[str, str]:
        if self._memberships is None:
            if self._memberships_json is _UNREAD:
                raise RuntimeError("memberships of a row known only by its digest")
            self._memberships = dict(orjson.loads(self._memberships_json or "{}"))
        return self._memberships

    @property
    def identity_map(self) -> dict[str, list[str]]:
        return dict(orjson.loads(self.identity_json))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Delivered):
            return NotImplemented
        return (self.identity_json, self.attributes_fp, self.memberships) == (
            other.identity_json,
            other.attributes_fp,
            other.memberships,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Delivered({self.identity_json}, {self.attributes_fp!r}, {self.memberships})"


def short_digest(data: bytes) -> str:
    """128 bits of SHA-256, as hex (`.digest().hex()` is quicker than `.hexdigest()`)."""
    return _sha256(data).digest()[:16].hex()


def content_digest(identity_json: str, attributes_fp: str, segments: Iterable[str]) -> str:
    return short_digest("\x00".join((identity_json, attributes_fp, *sorted(segments))).encode())


@dataclass(slots=True)
class Decision:
    """A profile's event, and the row the store keeps once Event Hubs accepts it."""

    memberships: dict[str, dict[str, Any]]  # the event's memberships, statuses set
    after: Delivered | None  # None: the profile leaves the store
    realized: int = 0
    existing: int = 0
    exited: int = 0


def fingerprint(attributes: Mapping[str, Any]) -> str:
    """A digest of the mapped attributes as they are sent (key order does not matter)."""
    return short_digest(orjson.dumps(attributes, option=_SORTED, default=str))


def identity_json(identities: Mapping[str, list[str]]) -> str:
    """The identity map as the store keeps it (and as the event carries it)."""
    if not all(identities.values()):
        identities = {ns: ids for ns, ids in identities.items() if ids}
    return orjson.dumps(identities).decode()


def same_identities(stored: str, sent: str) -> bool:
    """Equal identity maps, whatever the order of namespaces and ids."""
    if stored == sent:
        return True
    left, right = orjson.loads(stored), orjson.loads(sent)
    return {ns: sorted(ids) for ns, ids in left.items()} == {
        ns: sorted(ids) for ns, ids in right.items()
    }


def _membership(status: str, when: str, entry: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out = {"status": status, "lastQualificationTime": when}
    if entry and not _CARRIED.isdisjoint(entry):  # a name or catalog times, rarely
        out.update((key, entry[key]) for key in _CARRIED if key in entry)
    return out


def _count(decision: Decision) -> Decision:
    for entry in decision.memberships.values():
        status = entry["status"]
        if status == "realized":
            decision.realized += 1
        elif status == "existing":
            decision.existing += 1
        else:
            decision.exited += 1
    return decision


@dataclass(slots=True)
class Given:
    """What the input says of a profile, with what comparing it needs computed once."""

    identities: dict[str, list[str]]
    attributes: Mapping[str, Any]
    memberships: Mapping[str, Mapping[str, Any]]
    identity_json: str
    attributes_fp: str
    present: list[str]  # the memberships it holds (not exited)
    digest: str  # as `Delivered.digest` would be for exactly these

    @property
    def whole(self) -> bool:
        """It exits nothing: every membership it names is held."""
        return len(self.present) == len(self.memberships)

    @classmethod
    def of(
        cls,
        identities: dict[str, list[str]],
        attributes: Mapping[str, Any],
        memberships: Mapping[str, Mapping[str, Any]],
    ) -> Given:
        # identity_json, fingerprint and content_digest, inlined: this runs per profile.
        shown = identities
        if not all(identities.values()):
            shown = {ns: ids for ns, ids in identities.items() if ids}
        sent = orjson.dumps(shown).decode()
        fp = _sha256(orjson.dumps(attributes, option=_SORTED, default=str)).digest()[:16].hex()
        present = [seg for seg, entry in memberships.items() if entry.get("status") != "exited"]
        present.sort()
        digest = _sha256("\x00".join((sent, fp, *present)).encode()).digest()[:16].hex()
        return cls(identities, attributes, memberships, sent, fp, present, digest)

    def holds_all(self, before: Delivered | None) -> bool:
        """Whether it holds every membership delivered before (none can be missing)."""
        if before is None or before.digest == self.digest:
            return True
        return before.memberships.keys() <= set(self.present)


def _unchanged(before: Delivered, given: Given) -> bool:
    if before.digest == given.digest and given.whole:
        return True  # the same identities, attributes and memberships, no exit
    return (
        not _memberships_change(before.memberships, given.memberships)
        and given.attributes_fp == before.attributes_fp
        and same_identities(before.identity_json, given.identity_json)
    )


def _memberships_change(
    delivered: Mapping[str, str], memberships: Mapping[str, Mapping[str, Any]]
) -> bool:
    """Whether the input starts or ends a delivered membership."""
    for seg, entry in memberships.items():
        if (entry.get("status") == "exited") == (seg in delivered):
            return True
    return False


def diff_profile(
    before: Delivered | None, given: Given, now: str, *, carry: bool = True
) -> Decision | None:
    """The profile's event against `before`, or None when nothing changed."""
    if before is None:
        return _first(given, now)
    if _unchanged(before, given):
        return None
    delivered = before.memberships
    event: dict[str, dict[str, Any]] = {}
    kept = dict(delivered)
    for seg, entry in given.memberships.items():
        when = entry.get("lastQualificationTime")
        if entry.get("status") == "exited":
            if seg in delivered:
                event[seg] = _membership("exited", when or now, entry)
                del kept[seg]
        elif seg in delivered:
            event[seg] = _membership("existing", delivered[seg], entry)
        else:
            event[seg] = _membership("realized", when or now, entry)
            kept[seg] = when or now
    for seg, when in delivered.items() if carry else ():
        if seg not in event:
            event[seg] = _membership("existing", when)
    after = Delivered(given.identity_json, given.attributes_fp, kept)
    return _count(Decision(event, after))


def _first(given: Given, now: str) -> Decision | None:
    """A profile never delivered: what it holds is realized; its exits end nothing."""
    event: dict[str, dict[str, Any]] = {}
    kept: dict[str, str] = {}
    for seg, entry in given.memberships.items():
        if entry.get("status") != "exited":
            when = kept[seg] = entry.get("lastQualificationTime") or now
            event[seg] = _membership("realized", when, entry)
    if not event:
        return None  # no membership to tell of: nothing to send
    # It keeps exactly what it holds: its digest is the input's.
    after = Delivered(given.identity_json, given.attributes_fp, kept, digest=given.digest)
    return Decision(event, after, realized=len(event))


def exit_missing(
    before: Delivered, missing: Collection[str], now: str, *, present: bool
) -> Decision:
    """The event that exits `missing` memberships at `now`, carrying the others.

    A profile absent from the snapshot (`present` False) that has no membership left
    leaves the store.
    """
    event = {
        seg: _membership("exited", now) if seg in missing else _membership("existing", when)
        for seg, when in before.memberships.items()
    }
    kept = {seg: when for seg, when in before.memberships.items() if seg not in missing}
    after = (
        None
        if not kept and not present
        else Delivered(before.identity_json, before.attributes_fp, kept)
    )
    return _count(Decision(event, after))
