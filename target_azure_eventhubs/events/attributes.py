"""Attributes: record fields placed at their paths in the event, as JSON-safe values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from target_azure_eventhubs.events.errors import InvalidRecordError
from target_azure_eventhubs.events.times import format_utc, utc_naive

if TYPE_CHECKING:
    from target_azure_eventhubs.events.settings import ConversionSettings

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1  # what orjson can write


def json_safe(value: Any, where: str) -> Any:
    """Values orjson writes losslessly: Decimal, datetime, date become JSON types."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        if _INT_MIN <= value <= _INT_MAX:
            return value
        raise InvalidRecordError(f"attribute {where!r}: integer outside the 64-bit range")
    if t is float:
        if math.isfinite(value):
            return value
        raise InvalidRecordError(f"attribute {where!r}: {value!r} is not a finite number")
    if t is dict:
        return {(k if type(k) is str else str(k)): json_safe(v, where) for k, v in value.items()}
    if t is list or t is tuple:
        return [json_safe(v, where) for v in value]
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidRecordError(f"attribute {where!r}: {value!r} is not a finite number")
        if value == value.to_integral_value():
            as_int = int(value)
            if _INT_MIN <= as_int <= _INT_MAX:
                return as_int
        return float(value)
    if isinstance(value, datetime):
        return format_utc(utc_naive(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dtime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return json_safe(dict(value), where)
    if isinstance(value, bool | str):
        return bool(value) if isinstance(value, bool) else str(value)
    if isinstance(value, int):
        return json_safe(int(value), where)
    if isinstance(value, float):
        return json_safe(float(value), where)
    if isinstance(value, list | tuple):
        return [json_safe(v, where) for v in value]
    raise InvalidRecordError(
        f"attribute {where!r}: a {type(value).__name__} value cannot be sent as JSON"
    )


def _put(root: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    # Prefix collisions were ruled out before, so every intermediate node is ours.
    node = root
    for key in parts[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        node = child
    node[parts[-1]] = value


def _merge_passthrough(dst: dict[str, Any], key: str, value: Any, path: str) -> None:
    """Shape-3 pass-through under mapped attributes: mapped leaves win, objects merge."""
    if key not in dst:
        dst[key] = value
        return
    current = dst[key]
    if type(current) is dict and type(value) is dict:
        for sub_key, sub_value in value.items():
            _merge_passthrough(current, sub_key, sub_value, f"{path}.{sub_key}")
    elif type(current) is dict or type(value) is dict:
        raise InvalidRecordError(
            f"attribute path {path!r} collides: a mapped field and the record's own "
            f"{path.split('.', 1)[0]!r} give it both a value and an object"
        )


def _collision(name_a: str, path_a: str, name_b: str, path_b: str) -> InvalidRecordError:
    return InvalidRecordError(
        f"attribute paths collide: {path_a!r} (field {name_a!r}) and {path_b!r} (field {name_b!r})"
    )


def attributes_of(
    record: Mapping[str, Any], settings: ConversionSettings, passthrough: bool
) -> dict[str, Any]:
    get = record.get
    for name_a, path_a, name_b, path_b in settings._attr_conflicts:
        if get(name_a) is not None and get(name_b) is not None:
            raise _collision(name_a, path_a, name_b, path_b)
    attributes: dict[str, Any] = {}
    for name, parts in settings._attribute_items:
        value = get(name)
        if value is None:
            continue
        if type(value) is not str:  # strings are the common case and always safe
            value = json_safe(value, name)
        if len(parts) == 1:
            attributes[parts[0]] = value
        else:
            _put(attributes, parts, value)
    if not (passthrough or settings.include_unmapped_attributes):
        return attributes
    skip = settings._non_attribute_fields
    unmapped: dict[str, Any] | None = None
    for key, value in record.items():
        if value is None or key in skip or key.startswith("_sdc_"):
            continue
        safe = json_safe(value, key)
        if passthrough:
            _merge_passthrough(attributes, key, safe, key)
            continue
        for name, path in settings._attributes_root + settings._attributes_children.get(key, ()):
            if get(name) is not None:
                raise _collision(name, path, key, f"attributes.{key}")
        if unmapped is None:
            unmapped = attributes.setdefault("attributes", {})
        unmapped[key] = safe
    return attributes
