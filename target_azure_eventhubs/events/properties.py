"""Application properties chosen by the user (`application_properties`): which record
field, constant or template fills each, and the AMQP type each value keeps.

Typing rules (README, "Application properties"), decided per value and, where the stream's
schema says more, per field so that one property keeps one type across events:

- a string stays a string; a field with `format: date-time` becomes a timestamp
  (milliseconds since the epoch, UTC; finer precision is truncated);
- an integer becomes a long (64-bit): azure-eventhub writes a plain Python `int` as a
  32-bit int and refuses larger ones (epoch milliseconds included), so every integer goes
  as a long, whatever its size; one beyond 64 bits is an invalid record;
- a field typed `number` (without `integer`) is a double even when a value is whole;
  floats and `Decimal` values are doubles; NaN and infinities are invalid;
- a boolean stays a boolean; a `datetime` a timestamp; a `date` its ISO string
  (`2024-03-29`: AMQP has no date type, and midnight would invent a time zone);
- null or a missing field leaves the property out; an object or a list is an invalid record
  naming the property and the field.

The values returned are Python values the delivery encoding maps one to one: `str`,
`bool`, `int` (long), `float` (double), `datetime` (aware UTC, timestamp).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from target_azure_eventhubs.events.errors import InvalidRecordError

PropertyValue = str | bool | int | float | datetime

# Names the target sets itself, and the prefixes of the CloudEvents AMQP binding and of
# the service's own annotations: refused at start.
RESERVED_NAMES = frozenset({"stream", "segment_ids"})
# `_sdc_`: singer-sdk's record metadata (add_record_metadata).
RESERVED_PREFIXES = ("cloudEvents_", "cloudEvents:", "x-opt-", "_sdc_")  # in any case
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1

AUTO, TIMESTAMP, LONG, DOUBLE = "auto", "timestamp", "long", "double"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """One configured property: a record field (dotted path), a constant, or a template."""

    name: str
    path: tuple[str, ...] = ()  # {"field": ...}
    value: PropertyValue | None = None  # {"value": ...}, typed already
    # (text, None) literal, ("", ()) the stream's name, ("", path) a record field
    template: tuple[tuple[str, tuple[str, ...] | None], ...] = ()
    kind: str = AUTO  # from the stream's schema (`for_schema`)

    @property
    def field(self) -> str:
        return ".".join(self.path)


def reserved_reason(name: str) -> str | None:
    lowered = name.lower()
    if name in RESERVED_NAMES:
        return "the target sets it on every event"
    for prefix in RESERVED_PREFIXES:
        if lowered.startswith(prefix.lower()):
            return f"names starting with {prefix!r} are reserved"
    return None


def parse_application_properties(config: Any) -> tuple[PropertySpec, ...]:
    """The `application_properties` setting -> specs; ValueError names the first problem."""
    if config is None:
        return ()
    if not isinstance(config, Mapping):
        raise ValueError("application_properties must be an object: name -> {field|value}")
    specs = []
    for name, rule in config.items():
        where = f"application_properties: property {name!r}"
        if not isinstance(name, str) or not name.strip():
            raise ValueError("application_properties: a property name must not be empty")
        if reason := reserved_reason(name):
            raise ValueError(f"{where} is reserved ({reason})")
        if not isinstance(rule, Mapping) or len(rule) != 1:
            raise ValueError(
                f'{where} must be one of {{"field": "a.b"}}, {{"value": ...}}, '
                f'{{"template": "..."}}, not {rule!r}'
            )
        ((how, arg),) = rule.items()
        if how == "field":
            specs.append(PropertySpec(name, path=_path(arg, where)))
        elif how == "value":
            try:
                value = typed_value(arg, AUTO)
            except InvalidRecordError as exc:
                raise ValueError(f"{where}: the constant {exc.reason}") from None
            if value is None:
                raise ValueError(f"{where}: a constant must not be null")
            specs.append(PropertySpec(name, value=value))
        elif how == "template":
            specs.append(PropertySpec(name, template=_template(arg, where)))
        else:
            raise ValueError(f"{where}: unknown rule {how!r} (use field, value or template)")
    return tuple(specs)


def _path(text: Any, where: str) -> tuple[str, ...]:
    if not isinstance(text, str) or not text or any(not part for part in text.split(".")):
        raise ValueError(f"{where}: a field must be a dotted path like 'address.country'")
    return tuple(text.split("."))


def _template(text: Any, where: str) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    """'{stream}/{address.country}' -> pieces; `{{` and `}}` are literal braces."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: a template must be a string")
    pieces: list[tuple[str, tuple[str, ...] | None]] = []
    at = 0
    for match in _PLACEHOLDER.finditer(text):
        literal = text[at : match.start()]
        at = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            pieces.append((literal + token[0], None))
            continue
        name = match.group(1).strip()
        pieces.append((literal, None))
        pieces.append(("", ()) if name == "stream" else ("", _path(name, where)))
    rest = text[at:]
    if "{" in rest or "}" in rest:
        raise ValueError(f"{where}: unbalanced braces in the template (use {{{{ or }}}})")
    pieces.append((rest, None))
    return tuple((t, p) for t, p in pieces if t or p is not None)


def kind_in_schema(schema: Mapping[str, Any] | None, path: tuple[str, ...]) -> str:
    """What the stream's JSON schema says about a field: TIMESTAMP, LONG, DOUBLE or AUTO."""
    node: Any = schema
    for part in path:
        if not isinstance(node, Mapping):
            return AUTO
        node = (node.get("properties") or {}).get(part)
    if not isinstance(node, Mapping):
        return AUTO
    if node.get("format") == "date-time":
        return TIMESTAMP
    types = node.get("type")
    types = {types} if isinstance(types, str) else set(types or ())
    if "number" in types:
        return DOUBLE
    if "integer" in types:
        return LONG
    return AUTO


def for_schema(
    specs: tuple[PropertySpec, ...], schema: Mapping[str, Any] | None
) -> tuple[PropertySpec, ...]:
    """The specs of one stream, each field's kind taken from the stream's schema."""
    return tuple(
        PropertySpec(s.name, s.path, s.value, s.template, kind_in_schema(schema, s.path))
        if s.path
        else s
        for s in specs
    )


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value.strip())
    else:
        raise ValueError(type(value).__name__)
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def typed_value(value: Any, kind: str) -> PropertyValue | None:
    """A record value -> the typed property value (see the module's rules); None to leave
    the property out; InvalidRecordError (reason without the value) otherwise."""
    if value is None:
        return None
    if kind == TIMESTAMP and not isinstance(value, bool):
        try:
            return _timestamp(value)
        except (ValueError, OverflowError):
            raise InvalidRecordError(
                "is not an ISO-8601 date-time, as the field's schema (format date-time) says"
            ) from None
    if type(value) is str or value is True or value is False:
        return value
    if isinstance(value, int):
        if kind == DOUBLE:
            return float(value)
        if not _LONG_MIN <= value <= _LONG_MAX:
            raise InvalidRecordError("is an integer outside the 64-bit range of an AMQP long")
        return int(value)
    if isinstance(value, float | Decimal):
        if not math.isfinite(value):
            raise InvalidRecordError("is not a finite number")
        if kind == LONG and value == int(value):
            return typed_value(int(value), LONG)
        return float(value)
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping | list | tuple | set):
        kind_name = "an object" if isinstance(value, Mapping) else "a list"
        raise InvalidRecordError(f"is {kind_name}; application properties hold single values")
    raise InvalidRecordError(f"has a type ({type(value).__name__}) no property can hold")


def _lookup(record: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def properties_of(
    record: Mapping[str, Any], specs: tuple[PropertySpec, ...], stream: str
) -> dict[str, PropertyValue]:
    """The application properties of one record (a constant is the same for every one)."""
    out: dict[str, PropertyValue] = {}
    for spec in specs:
        if spec.value is not None:
            out[spec.name] = spec.value
            continue
        path = spec.path
        try:
            if path:
                value = typed_value(_lookup(record, path), spec.kind)
                if value is not None:
                    out[spec.name] = value
                continue
            text = []
            for literal, piece in spec.template:
                if not piece:  # literal text (None), or the stream's name (())
                    text.append(literal if piece is None else stream)
                    continue
                path = piece
                part = typed_value(_lookup(record, path), AUTO)
                if part is None:
                    break  # a field of the template is missing: the property is left out
                text.append(_text(part))
            else:
                out[spec.name] = "".join(text)
        except InvalidRecordError as exc:
            raise InvalidRecordError(
                f"application property {spec.name!r}: field {'.'.join(path or ())!r} {exc.reason}"
            ) from None
    return out
