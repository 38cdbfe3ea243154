"""Profile RECORDs -> Real-Time CDP-style segment-membership events. Pure code: no I/O.

The sink calls `convert_record` once per record, optionally `ProfileEvent.merge` to group
rows of one profile, then `build_event` and `encode_event` once per event. One module per
concept: `identities`, `statuses`, `times`, `memberships`, `attributes`, `settings`,
`profile` (record -> profile) and `body` (profile -> JSON); `namespaces` (namespaces marked
for hashing, identity lists, segment namespaces per row or stream), `properties` and
`metadata` (application properties, `_sdc_*` record metadata), `cloudevents`, and
`mapping` (whether a stream's records hold memberships where the settings look).

Decisions where the product spec is silent (the tests pin each of them):

- Input shapes are detected per record and may be combined. Membership precedence for the
  same segment id inside one record: `segmentMembership` (shape 3) < `segments` (shape 2)
  < the row's own segment fields (shape 1); later wins, like `merge`.
- A record in which none of the membership fields has a value is invalid, unless
  `allow_events_without_memberships` (then: an identity/attribute update with
  `segmentMembership: {<namespace>: {}}`) or change tracking (then: a profile in no
  segment). An empty list or object is a value: the profile is in no segment. A stream's
  first record is checked against the settings first (`mapping`).
- A status given while the row's segment id is empty is invalid (a lost membership would
  otherwise go unnoticed).
- Shape 3 is detected when `segmentMembership` or `identityMap` has a non-null value.
  Only the row's segment namespace (its `segment_namespace_field`, else the stream's) may
  carry memberships (others: invalid, unless empty); identityMap items keep only their `id`;
  identityMap identities come first, then those of `identity_list_field`, then the identity
  fields of the record (this decides `first_identity`). Unmapped top-level keys of a
  shape-3 record pass through at top level; mapped attribute paths win over passed-through
  leaves; a value-vs-object clash between them is a collision.
- Membership entries keep `status`, `lastQualificationTime`, `name` and the four catalog
  timestamp keys (normalised to epoch ms); other keys are dropped. `name` and timestamps
  are emitted only with `include_segment_names` / `include_segment_timestamps`; a row's own
  values win over the catalog.
- A `segments` value may also be a JSON string; a map value may be a bare status string.
- Identity values that normalise to nothing (blank, a phone without digits) are ignored;
  `hash_identity` returns "" for them. Booleans are not identities (invalid).
- Attribute path collisions are reported per record, only when both colliding fields have
  a value. `_sdc_*` fields in `attribute_fields`, and paths under `segmentMembership` /
  `identityMap`, are configuration errors (ValueError from ConversionSettings).
- Non-finite numbers and integers outside the 64-bit range (orjson's limit) in attributes
  are invalid rather than silently changed; None nested inside a value is kept as null.
- Time strings made only of digits (optionally signed, one dot) are epoch values, never
  compact dates such as `20200303`. Sub-millisecond precision is truncated.
- Catalog times given as numbers use the same seconds/milliseconds heuristic as records.
"""

from __future__ import annotations

from target_azure_eventhubs.events.body import build_event, encode_event
from target_azure_eventhubs.events.errors import InvalidRecordError
from target_azure_eventhubs.events.identities import hash_identity, is_hashed_namespace
from target_azure_eventhubs.events.profile import ProfileEvent, convert_record
from target_azure_eventhubs.events.settings import (
    DEFAULT_ATTRIBUTE_FIELDS,
    DEFAULT_IDENTITY_FIELDS,
    ConversionSettings,
)
from target_azure_eventhubs.events.statuses import STATUSES, normalise_status
from target_azure_eventhubs.events.times import to_iso_utc

__all__ = [
    "DEFAULT_ATTRIBUTE_FIELDS",
    "DEFAULT_IDENTITY_FIELDS",
    "STATUSES",
    "ConversionSettings",
    "InvalidRecordError",
    "ProfileEvent",
    "build_event",
    "convert_record",
    "encode_event",
    "hash_identity",
    "is_hashed_namespace",
    "normalise_status",
    "to_iso_utc",
]
