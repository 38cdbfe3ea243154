"""Whether a stream's records hold memberships where the settings look for them.

A misspelt `segment_id_field` or `segments_field` otherwise turns every record into an
event that names no segment. The rules:

- A stream is a membership stream when its first record has one of the membership fields
  (`segment_id_field`, `segments_field`, `segmentMembership`), whatever its value, or the
  stream's schema declares one. Any other stream is refused at its first record, naming
  the settings, the fields they expect and the fields the record has, unless
  `allow_events_without_memberships` is on (profile and identity updates).
- In a membership stream, a record whose first membership field has a segment id needs
  `segment_status_field` too (unless change tracking derives statuses), and
  `segment_namespace_field`, when set, must be a field of the record or the schema.
- Each record is then checked by `convert_record` (`ConversionSettings.
  memberships_required`): one in which no membership field has a value is invalid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from target_azure_eventhubs.events.settings import MEMBERSHIP_KEY, ConversionSettings

SHOWN_FIELDS = 30  # a record's fields listed in the error; the rest are counted
_NAME_CHARS = 60


def membership_fields(settings: ConversionSettings) -> tuple[tuple[str | None, str], ...]:
    """(setting, field) of each place memberships are read from; None: a fixed name."""
    return (
        ("segment_id_field", settings.segment_id_field),
        ("segments_field", settings.segments_field),
        (None, MEMBERSHIP_KEY),
    )


def field_list(names: Iterable[str]) -> str:
    """Sorted, each name shortened, at most SHOWN_FIELDS of them."""
    ordered = sorted(str(name) for name in names)
    if not ordered:
        return "none"
    shown = [n if len(n) <= _NAME_CHARS else n[: _NAME_CHARS - 3] + "..." for n in ordered]
    text = ", ".join(shown[:SHOWN_FIELDS])
    if len(shown) > SHOWN_FIELDS:
        text += f" and {len(shown) - SHOWN_FIELDS} more"
    return text


def _declared(schema: Mapping[str, Any] | None) -> frozenset[str]:
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    return frozenset(properties) if isinstance(properties, Mapping) else frozenset()


def first_record_problem(
    record: Mapping[str, Any], schema: Mapping[str, Any] | None, settings: ConversionSettings
) -> str | None:
    """Why the stream's records cannot map to memberships (see the module's rules), or None."""
    known = record.keys() | _declared(schema)
    has = f"the record's fields are: {field_list(record)}"
    sources = membership_fields(settings)
    if not any(field in known for _, field in sources):
        if settings.allow_events_without_memberships:
            return None
        expected = ", ".join(
            f"{setting} expects '{field}'" if setting else f"or a '{field}' object"
            for setting, field in sources
        )
        return (
            f"the stream's first record has no segment memberships where the settings look "
            f"for them ({expected}); {has}. Set segment_id_field or segments_field to the "
            "field holding the memberships, or allow_events_without_memberships to true to "
            "send profiles without memberships"
        )
    status = settings.segment_status_field
    if (
        settings.require_status
        and record.get(settings.segment_id_field) is not None
        and status not in known
    ):
        return (
            f"the stream's first record has a segment id in '{settings.segment_id_field}' "
            f"(segment_id_field) but no '{status}' (segment_status_field expects it); {has}. "
            "Set segment_status_field to the field holding each membership's status"
        )
    namespace = settings.segment_namespace_field
    if namespace is not None and namespace not in known:
        return (
            f"the stream's first record has no '{namespace}' (segment_namespace_field "
            f"expects it); {has}. Set segment_namespace_field to the field naming each "
            "row's segment namespace, or leave it empty"
        )
    return None
