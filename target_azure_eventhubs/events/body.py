"""The event body: `build_event` lays a profile out as the event object, `encode_event`
writes its JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from target_azure_eventhubs.events.attributes import json_safe
from target_azure_eventhubs.events.profile import ProfileEvent
from target_azure_eventhubs.events.settings import ConversionSettings
from target_azure_eventhubs.events.times import TIMESTAMP_KEYS


def build_event(profile: ProfileEvent, settings: ConversionSettings) -> dict[str, Any]:
    """The event object: attributes at their paths, segmentMembership, identityMap."""
    event: dict[str, Any] = dict(profile.attributes)
    members = _members(profile.memberships, settings) if profile.memberships else {}
    if profile.others:
        event["segmentMembership"] = _namespaces(members, profile.others, settings)
    else:
        event["segmentMembership"] = {settings.segment_namespace: members}
    event["identityMap"] = {
        namespace: [{"id": i} for i in ids] for namespace, ids in profile.identities.items() if ids
    }
    return event


def _namespaces(
    members: dict[str, Any],
    others: dict[str, dict[str, dict[str, Any]]],
    settings: ConversionSettings,
) -> dict[str, Any]:
    """The stream's namespace first, then the others as rows named them; a namespace
    without memberships is left out unless none has any."""
    sections: dict[str, Any] = {settings.segment_namespace: members} if members else {}
    for namespace, entries in others.items():
        if entries:
            known = sections.get(namespace)
            if known is None:
                sections[namespace] = _members(entries, settings)
            else:
                known.update(_members(entries, settings))
    return sections or {settings.segment_namespace: members}


def _members(
    memberships: dict[str, dict[str, Any]], settings: ConversionSettings
) -> dict[str, Any]:
    names = settings.include_segment_names
    stamps = settings.include_segment_timestamps
    catalog = settings._catalog
    members: dict[str, dict[str, Any]] = {}
    for seg_id, entry in memberships.items():
        out: dict[str, Any] = {}
        when = entry.get("lastQualificationTime")
        if when is not None:
            out["lastQualificationTime"] = when
        out["status"] = entry["status"]
        if names or stamps:
            known = catalog.get(seg_id, {})
            if names:
                name = entry.get("name") or known.get("name")
                if name:
                    out["name"] = name
            if stamps:
                for key in TIMESTAMP_KEYS:
                    value = entry.get(key)
                    if value is None:
                        value = known.get(key)
                    if value is not None:
                        out[key] = value
        members[seg_id] = out
    return members


def _encode_default(value: Any) -> Any:
    # Only reached for values build_event never produces (Mappings, Decimal, ...).
    if isinstance(value, Mapping):
        return dict(value)
    return json_safe(value, "(event)")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; byte-identical for equal input (insertion order kept)."""
    # orjson returns its whole 4 KiB output buffer; bodies wait in memory until sent, so
    # keep a right-sized copy (measured: 4,098 -> 576 bytes held per 540-byte body).
    return bytes(memoryview(orjson.dumps(event, default=_encode_default)))
