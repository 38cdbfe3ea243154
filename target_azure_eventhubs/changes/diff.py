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
  event (`diff_profile` returns None).
- A complete snapshot that lacks a delivered membership exits it at `now`
  (`exit_missing`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# Keys of an input membership that travel with it into the event (see events.body).
_CARRIED = ("name", "createdAt", "updatedAt", "mappingCreatedAt", "mappingUpdatedAt")


@dataclass(frozen=True, slots=True)
class Delivered:
    """What consumers were last sent for one profile: a row of the change store."""

    identity_map: dict[str, list[str]]  # as sent: hashed namespaces stay hashed
    attributes_fp: str  # a fingerprint of the mapped attributes, never their values
    memberships: dict[str, str]  # segment id -> lastQualificationTime


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
    encoded = orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(encoded).hexdigest()[:32]


def same_identities(a: Mapping[str, list[str]], b: Mapping[str, list[str]]) -> bool:
    """Equal identity maps, whatever the order of namespaces and ids."""
    left = {ns: sorted(ids) for ns, ids in a.items() if ids}
    right = {ns: sorted(ids) for ns, ids in b.items() if ids}
    return left == right


def _carried(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in _CARRIED if key in entry}


def _membership(status: str, when: str, entry: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out = _carried(entry) if entry else {}
    out["status"] = status
    out["lastQualificationTime"] = when
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


def diff_profile(
    before: Delivered | None,
    identities: dict[str, list[str]],
    attributes: Mapping[str, Any],
    memberships: Mapping[str, Mapping[str, Any]],
    now: str,
    *,
    carry: bool = True,
) -> Decision | None:
    """The profile's event against `before`, or None when nothing changed."""
    delivered = before.memberships if before is not None else {}
    event: dict[str, dict[str, Any]] = {}
    kept = dict(delivered)
    changed = False
    for seg, entry in memberships.items():
        when = entry.get("lastQualificationTime")
        if entry.get("status") == "exited":
            if seg in delivered:
                event[seg] = _membership("exited", when or now, entry)
                del kept[seg]
                changed = True
        elif seg in delivered:
            event[seg] = _membership("existing", delivered[seg], entry)
        else:
            event[seg] = _membership("realized", when or now, entry)
            kept[seg] = when or now
            changed = True
    for seg, when in delivered.items() if carry else ():
        if seg not in event:
            event[seg] = _membership("existing", when)
    attributes_fp = fingerprint(attributes)
    if (
        not changed
        and before is not None
        and attributes_fp == before.attributes_fp
        and same_identities(identities, before.identity_map)
    ):
        return None
    after = Delivered({ns: list(ids) for ns, ids in identities.items() if ids}, attributes_fp, kept)
    return _count(Decision(event, after))


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
        else Delivered(before.identity_map, before.attributes_fp, kept)
    )
    return _count(Decision(event, after))
