"""One record -> `ProfileEvent` (identities, attributes, memberships), and merging the rows
of one profile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from target_azure_eventhubs.events.attributes import attributes_of
from target_azure_eventhubs.events.errors import InvalidRecordError
from target_azure_eventhubs.events.identities import (
    add_identity_field,
    normalise_identity,
    read_identity_map,
)
from target_azure_eventhubs.events.memberships import (
    read_segment_membership,
    read_segments_field,
    row_membership,
    segment_id,
)
from target_azure_eventhubs.events.namespaces import read_identity_list, row_namespace
from target_azure_eventhubs.events.settings import ConversionSettings


def _copy_dicts(value: Any) -> Any:
    if type(value) is dict:
        return {k: _copy_dicts(v) for k, v in value.items()}
    return value


def _deep_merge(dst: dict[str, Any], src: Mapping[str, Any]) -> None:
    """Later values win; objects merge key by key."""
    for key, value in src.items():
        current = dst.get(key)
        if type(current) is dict and type(value) is dict:
            _deep_merge(current, value)
        else:
            # Copy so that later merges into self never mutate `src`'s objects.
            dst[key] = _copy_dicts(value)


@dataclass(slots=True)
class ProfileEvent:
    """One profile's identities, attributes and segment memberships, before encoding."""

    identities: dict[str, list[str]] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    memberships: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Memberships in segment namespaces other than the stream's (`segment_namespace_field`).
    others: dict[str, dict[str, dict[str, Any]]] | None = None

    def merge(self, later: ProfileEvent) -> None:
        """Fold a later row of the same profile into this one (for group_by_profile)."""
        for namespace, ids in later.identities.items():
            known = self.identities.get(namespace)
            if known is None:
                self.identities[namespace] = list(ids)
            else:
                known.extend(i for i in ids if i not in known)
        if later.attributes:
            _deep_merge(self.attributes, later.attributes)
        self.memberships.update(later.memberships)  # a later row for a segment wins
        if later.others:
            if self.others is None:
                self.others = {}
            for namespace, entries in later.others.items():
                self.others.setdefault(namespace, {}).update(entries)

    def first_identity(self) -> str | None:
        """`namespace:id` of the first identity (a default partition key)."""
        for namespace, ids in self.identities.items():
            if ids:
                return f"{namespace}:{ids[0]}"
        return None

    def segment_ids(self) -> list[str]:
        ids = list(self.memberships)
        if self.others:
            for entries in self.others.values():
                ids += entries
        return ids

    def all_memberships(self) -> dict[str, dict[str, Any]]:
        """Every membership; those outside the stream's namespace keyed `namespace:id`."""
        if not self.others:
            return self.memberships
        entries = dict(self.memberships)
        for namespace, more in self.others.items():
            entries.update((f"{namespace}:{seg}", entry) for seg, entry in more.items())
        return entries


def convert_record(record: Mapping[str, Any], settings: ConversionSettings) -> ProfileEvent:
    """One RECORD -> ProfileEvent; raises InvalidRecordError with a safe reason."""
    if not isinstance(record, Mapping):
        raise InvalidRecordError(f"a record must be an object, got {type(record).__name__}")
    get = record.get
    membership_in = get("segmentMembership")
    identity_map_in = get("identityMap")
    event_shaped = membership_in is not None or identity_map_in is not None

    identities: dict[str, list[str]] = {}
    if identity_map_in is not None:
        read_identity_map(identity_map_in, identities, settings._kind_of)
    if settings.identity_list_field is not None:
        listed = get(settings.identity_list_field)
        if listed is not None:
            read_identity_list(listed, identities, settings._kind_of, settings.identity_list_field)
    for name, namespace, kind in settings._identity_items:
        value = get(name)
        if value is None or value == "":
            continue
        if type(value) is str:  # the common case, inlined
            nid = normalise_identity(kind, value)
            if nid:
                known = identities.get(namespace)
                if known is None:
                    identities[namespace] = [nid]
                elif nid not in known:
                    known.append(nid)
        else:
            add_identity_field(identities, namespace, kind, value, name)
    if not identities:
        reason = settings._no_identity_reason
        raise InvalidRecordError(reason + (" and identityMap is empty" if event_shaped else ""))

    row_ns: str | None = None  # the row's own segment namespace, when not the stream's
    if settings.segment_namespace_field is not None:
        named = get(settings.segment_namespace_field)
        if type(named) is str and named and not named[0].isspace() and not named[-1].isspace():
            row_ns = named  # the common case, inlined (row_namespace)
        else:
            row_ns = row_namespace(named, settings.segment_namespace_field)
        if row_ns == settings.segment_namespace:
            row_ns = None
    memberships = _memberships_of(record, settings, membership_in, row_ns)

    attributes = attributes_of(record, settings, event_shaped)
    if row_ns is not None and memberships:
        return ProfileEvent(identities, attributes, {}, {row_ns: memberships})
    return ProfileEvent(identities, attributes, memberships)


def _memberships_of(
    record: Mapping[str, Any],
    settings: ConversionSettings,
    membership_in: Any,
    row_ns: str | None,
) -> dict[str, dict[str, Any]]:
    """The row's memberships from the three shapes; a row with none of the fields holding
    a value is invalid where `memberships_required` (events.mapping)."""
    memberships: dict[str, dict[str, Any]] = {}
    get = record.get
    if membership_in is not None:
        read_segment_membership(membership_in, memberships, settings, row_ns)
    segments = get(settings.segments_field)
    if segments is not None:
        read_segments_field(segments, memberships, settings)
    raw_id = get(settings.segment_id_field)
    if raw_id is not None:
        where = f"field {settings.segment_id_field!r}"
        seg_id = segment_id(raw_id, where)
        memberships[seg_id] = row_membership(
            get(settings.segment_status_field),
            get(settings.segment_time_field),
            get(settings.segment_name_field),
            seg_id,
            where,
            settings.require_status,
        )
    elif get(settings.segment_status_field) is not None:
        raise InvalidRecordError(
            f"the record has a {settings.segment_status_field!r} but its "
            f"{settings.segment_id_field!r} is empty"
        )
    elif (
        membership_in is None
        and (segments is None or (type(segments) is str and not segments.strip()))
        and settings.memberships_required
    ):
        raise InvalidRecordError(settings._no_membership_reason)
    return memberships
