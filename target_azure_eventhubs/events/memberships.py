"""Segment memberships from the three input shapes: row fields, a `segments` list or map,
and `segmentMembership`."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from target_azure_eventhubs.events.errors import InvalidRecordError, decode_json_text, quote
from target_azure_eventhubs.events.statuses import normalise_status
from target_azure_eventhubs.events.times import TIMESTAMP_KEYS, to_epoch_ms, to_iso_utc

if TYPE_CHECKING:
    from target_azure_eventhubs.events.settings import ConversionSettings


def segment_id(value: Any, where: str) -> str:
    if isinstance(value, str):
        text = value.strip()
        if text:
            return text
        raise InvalidRecordError(f"empty segment id in {where}")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    raise InvalidRecordError(f"segment id {quote(value)} in {where} is not a non-empty string")


def _first(obj: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value
    return None


def row_membership(  # noqa: PLR0917  (the row's three fields, then where they came from)
    status_raw: Any,
    time_raw: Any,
    name_raw: Any,
    seg_id: str,
    where: str,
    require_status: bool = True,
) -> dict[str, Any]:
    """One membership; without a status only when change tracking derives it."""
    entry: dict[str, Any] = {}
    if status_raw is None and require_status:
        raise InvalidRecordError(
            f"segment {quote(seg_id)} in {where} has no status (with change_tracking on, "
            "the status may be left out)"
        )
    try:
        if status_raw is not None:
            entry["status"] = normalise_status(status_raw)
        when = to_iso_utc(time_raw)
    except InvalidRecordError as exc:
        raise InvalidRecordError(f"segment {quote(seg_id)} in {where}: {exc.reason}") from None
    if when is not None:
        entry["lastQualificationTime"] = when
    if name_raw is not None and name_raw != "":
        if isinstance(name_raw, dict | list):
            raise InvalidRecordError(f"segment {quote(seg_id)} in {where}: name is not a string")
        entry["name"] = name_raw if type(name_raw) is str else str(name_raw)
    return entry


def _membership_of(
    obj: Any, seg_id: str, where: str, settings: ConversionSettings
) -> dict[str, Any]:
    if isinstance(obj, str):  # {"seg": "realized"}
        return row_membership(obj, None, None, seg_id, where)
    if obj is None and not settings.require_status:  # {"seg": null}: a member, no details
        return {}
    if not isinstance(obj, Mapping):
        raise InvalidRecordError(
            f"segment {quote(seg_id)} in {where} must be an object with a status, "
            f"got {type(obj).__name__}"
        )
    entry = row_membership(
        _first(obj, settings._status_keys),
        _first(obj, settings._time_keys),
        _first(obj, settings._name_keys),
        seg_id,
        where,
        settings.require_status,
    )
    for key in TIMESTAMP_KEYS:
        raw = obj.get(key)
        if raw is not None:
            try:
                ms = to_epoch_ms(raw)
            except (ValueError, ArithmeticError):
                raise InvalidRecordError(
                    f"segment {quote(seg_id)} in {where}: invalid {key} {quote(raw)}"
                ) from None
            if ms is not None:
                entry[key] = ms
    return entry


def read_segments_field(
    value: Any, memberships: dict[str, dict[str, Any]], settings: ConversionSettings
) -> None:
    where = f"field {settings.segments_field!r}"
    if (value := decode_json_text(value, where)) is None:
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if not settings.require_status and isinstance(item, str | int | Decimal):
                memberships[segment_id(item, f"{where}[{index}]")] = {}  # a bare segment id
                continue
            if not isinstance(item, Mapping):
                raise InvalidRecordError(
                    f"{where}[{index}] must be an object with id and status, "
                    f"got {type(item).__name__}"
                )
            raw_id = _first(item, settings._id_keys)
            if raw_id is None:
                raise InvalidRecordError(f"{where}[{index}] has no segment id")
            seg_id = segment_id(raw_id, f"{where}[{index}]")
            memberships[seg_id] = _membership_of(item, seg_id, where, settings)
    elif isinstance(value, Mapping):
        for raw_id, item in value.items():
            seg_id = segment_id(raw_id, where)
            memberships[seg_id] = _membership_of(item, seg_id, where, settings)
    else:
        raise InvalidRecordError(
            f"{where} must be a list of segments or an object keyed by segment id, "
            f"got {type(value).__name__}"
        )


def read_segment_membership(
    value: Any,
    memberships: dict[str, dict[str, Any]],
    settings: ConversionSettings,
    namespace_in: str | None = None,
) -> None:
    """Memberships under the row's namespace (`namespace_in`, else the stream's)."""
    accepted = namespace_in or settings.segment_namespace
    option = "segment_namespace_field" if namespace_in else "segment_namespace"
    shape = "{namespace: {segment id: {status, lastQualificationTime?}}}"
    if not isinstance(value, Mapping):
        raise InvalidRecordError(
            f"segmentMembership must be an object {shape}, got {type(value).__name__}"
        )
    for namespace, segments in value.items():
        where = f"segmentMembership.{namespace}"
        if segments is None:
            continue
        if not isinstance(segments, Mapping):
            raise InvalidRecordError(
                f"{where} must be an object keyed by segment id, got {type(segments).__name__}"
            )
        if namespace != accepted:
            if not segments:
                continue
            raise InvalidRecordError(
                f"segmentMembership has namespace {quote(namespace)}; memberships are accepted "
                f"only under {accepted!r} ({option})"
            )
        for raw_id, item in segments.items():
            seg_id = segment_id(raw_id, where)
            if not isinstance(item, Mapping):
                raise InvalidRecordError(
                    f"{where}[{quote(seg_id)}] must be an object with a status, "
                    f"got {type(item).__name__}"
                )
            memberships[seg_id] = _membership_of(item, seg_id, where, settings)
