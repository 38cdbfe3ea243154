"""The event as an Avro schema (`event_schema`) and as a JSON Schema (`event_json_schema`),
and the check of an event against an Avro schema (`AvroCheck`). Pure: no I/O.

The event is open-ended where the profile is: segment ids and identity namespaces are
keys, so `segmentMembership` is a map (namespace) of maps (segment id) of `Membership`
records and `identityMap` a map of arrays of `Identity` records. Attributes sit at the
paths `attribute_fields` names, so they are nested records whose leaves hold any scalar,
or a list or an object of scalars (`include_unmapped_attributes`: a map of those under
`attributes`). Avro has no absent field: an attribute a record lacks decodes as null.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from target_azure_eventhubs.events.settings import ConversionSettings
from target_azure_eventhubs.events.statuses import STATUSES
from target_azure_eventhubs.events.times import TIMESTAMP_KEYS

NAMESPACE = "com.target_azure_eventhubs"
DEFAULT_NAME = "SegmentMembershipEvent"
_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# The Avro writer takes the last branch a value fits, and a bool fits long and double, an
# int fits double: from the widest to the narrowest, so 1 stays a long and True a boolean.
_SCALARS: list[Any] = ["null", "double", "long", "boolean", "string"]
#: An attribute's value: a scalar, a list of scalars or an object of scalars.
LEAF: list[Any] = [
    *_SCALARS,
    {"type": "array", "items": _SCALARS},
    {"type": "map", "values": _SCALARS},
]


def _membership(settings: ConversionSettings) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [
        {"name": "lastQualificationTime", "type": ["null", "string"], "default": None},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": list(STATUSES)}},
    ]
    if settings.include_segment_names:
        fields.append({"name": "name", "type": ["null", "string"], "default": None})
    if settings.include_segment_timestamps:
        fields += [{"name": k, "type": ["null", "long"], "default": None} for k in TIMESTAMP_KEYS]
    return {"type": "record", "name": "Membership", "fields": fields}


def _attribute_tree(settings: ConversionSettings) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for _field, parts in settings._attribute_items:
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node.setdefault(parts[-1], None)
    if settings.include_unmapped_attributes:
        tree["attributes"] = "unmapped"
    return tree


def _attribute_fields(tree: Mapping[str, Any], path: tuple[str, ...]) -> list[dict[str, Any]]:
    fields = []
    for key, sub in tree.items():
        if not _AVRO_NAME.match(key):
            raise ValueError(
                f"attribute path {'.'.join((*path, key))!r} is not an Avro name "
                "(letters, digits, _): give avro_schema_path a schema of your own"
            )
        if sub is None:
            kind: Any = LEAF
        elif sub == "unmapped":
            kind = ["null", {"type": "map", "values": LEAF}]
        else:
            name = "Attributes_" + "_".join((*path, key))
            record = {
                "type": "record",
                "name": name,
                "fields": _attribute_fields(sub, (*path, key)),
            }
            kind = ["null", record]
        fields.append({"name": key, "type": kind, "default": None})
    return fields


def event_schema(settings: ConversionSettings, name: str = DEFAULT_NAME) -> dict[str, Any]:
    """The Avro record schema of the events `build_event` makes with these settings."""
    fields = _attribute_fields(_attribute_tree(settings), ())
    fields += [
        {
            "name": "segmentMembership",
            "type": {"type": "map", "values": {"type": "map", "values": _membership(settings)}},
        },
        {
            "name": "identityMap",
            "type": {
                "type": "map",
                "values": {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "Identity",
                        "fields": [{"name": "id", "type": "string"}],
                    },
                },
            },
        },
    ]
    return {"type": "record", "name": name, "namespace": NAMESPACE, "fields": fields}


_JSON_TYPES = {"null": "null", "boolean": "boolean", "long": "integer", "double": "number"}


def _json_type(avro: Any) -> dict[str, Any]:
    """The JSON Schema of an Avro type of `event_schema` (an object where Avro has a record)."""
    if isinstance(avro, list):
        return {"anyOf": [_json_type(branch) for branch in avro]}
    if isinstance(avro, str):
        return {"type": _JSON_TYPES.get(avro, "string")}
    kind = avro["type"]
    if kind == "record":
        fields = avro["fields"]
        required = [f["name"] for f in fields if "default" not in f]
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {f["name"]: _json_type(f["type"]) for f in fields},
            "additionalProperties": False,
        }
        return {**schema, "required": required} if required else schema
    if kind == "enum":
        return {"enum": list(avro["symbols"])}
    if kind == "map":
        return {"type": "object", "additionalProperties": _json_type(avro["values"])}
    return {"type": "array", "items": _json_type(avro["items"])}


def event_json_schema(settings: ConversionSettings, name: str = DEFAULT_NAME) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the events: the Avro schema's shape, in JSON."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{NAMESPACE}.{name}",
        "title": name,
        **_json_type(event_schema(settings, name)),
    }


# Checking an event against an Avro schema --------------------------------------------------

Check = Callable[[Any, str], str | None]  # (datum, path) -> why it does not fit, or None
_PRIMITIVE_CHECKS: Mapping[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: v is True or v is False,
    "int": lambda v: type(v) is int and -(1 << 31) <= v < (1 << 31),
    "long": lambda v: type(v) is int and -(1 << 63) <= v < (1 << 63),
    "float": lambda v: type(v) in (int, float),
    "double": lambda v: type(v) in (int, float),
    "string": lambda v: type(v) is str,
    "bytes": lambda v: type(v) is bytes,
}


class AvroCheck:
    """Why an event does not fit an Avro schema (a path and the rule, never a value), or
    None. Stricter than the Avro writer, which drops keys its records do not name: an event
    field the schema lacks would be lost, so it does not fit."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._named: dict[str, Check] = {}
        self._check = self._compile(schema, schema.get("namespace"))

    def __call__(self, event: Mapping[str, Any]) -> str | None:
        return self._check(event, "")

    def _compile(self, node: Any, namespace: str | None) -> Check:
        if isinstance(node, list):
            branches = [(self._compile(b, namespace), _family(b), _label(b)) for b in node]
            return _union(branches)
        if isinstance(node, str):
            if node in _PRIMITIVE_CHECKS:
                return _primitive(node)
            full = node if "." in node or namespace is None else f"{namespace}.{node}"
            named = self._named
            # Looked up when checking: a record may name itself (a recursive type).
            return lambda v, p: named.get(full, named.get(node, _unknown))(v, p)  # noqa: PLW0108
        kind = node["type"]
        if kind in _PRIMITIVE_CHECKS:
            return _primitive(kind)
        if kind == "array":
            return _array(self._compile(node["items"], namespace))
        if kind == "map":
            return _map(self._compile(node["values"], namespace))
        namespace = node.get("namespace", namespace)
        name = str(node["name"])
        full = name if namespace is None or "." in name else f"{namespace}.{name}"
        if kind == "enum":
            check = _enum(frozenset(node["symbols"]))
        elif kind == "fixed":
            size = int(node["size"])
            check = _rule(lambda v: type(v) is bytes and len(v) == size, f"{size} bytes")
        elif kind == "record":
            self._named[full] = self._named[name] = _unknown  # recursive types
            fields = [(f["name"], self._compile(f["type"], namespace)) for f in node["fields"]]
            check = _record(fields)
        else:
            raise ValueError(f"unknown Avro type {kind!r}")
        self._named[full] = self._named[name] = check
        return check


def _family(node: Any) -> str:
    kind = node if isinstance(node, str) else str(node.get("type", ""))
    return {"array": "list", "map": "object", "record": "object"}.get(kind, "scalar")


def _label(node: Any) -> str:
    if isinstance(node, str):
        return node
    return {"array": "a list", "map": "a map", "record": "a record"}.get(node["type"], node["type"])


def _union(branches: list[tuple[Check, str, str]]) -> Check:
    labels = ", ".join(label for _, _, label in branches)

    def check(value: Any, path: str) -> str | None:
        family = "list" if type(value) is list else "object" if isinstance(value, Mapping) else ""
        fitting = []
        for branch, branch_family, _ in branches:
            reason = branch(value, path)
            if reason is None:
                return None
            if branch_family == family:
                fitting.append(reason)
        if fitting:  # the branch of the value's own kind says what is wrong inside it
            return fitting[0]
        return f"{_where(path)} is a {_kind(value)} where the schema has one of: {labels}"

    return check


def _where(path: str) -> str:
    return path or "the event"


def _primitive(kind: str) -> Check:
    return _rule(_PRIMITIVE_CHECKS[kind], kind if kind != "null" else "null (absent)")


def _rule(test: Callable[[Any], bool], expected: str) -> Check:
    def check(value: Any, path: str) -> str | None:
        if test(value):
            return None
        return f"{_where(path)} is a {_kind(value)} where the schema has {expected}"

    return check


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "object"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}.get(
        type(value), type(value).__name__
    )


def _enum(symbols: frozenset[str]) -> Check:
    def check(value: Any, path: str) -> str | None:
        if type(value) is str and value in symbols:
            return None
        return f"{_where(path)} is not one of {', '.join(sorted(symbols))}"

    return check


def _array(items: Check) -> Check:
    def check(value: Any, path: str) -> str | None:
        if type(value) is not list:
            return f"{_where(path)} is a {_kind(value)} where the schema has a list"
        for index, item in enumerate(value):
            if (reason := items(item, f"{path}[{index}]")) is not None:
                return reason
        return None

    return check


def _map(values: Check) -> Check:
    def check(value: Any, path: str) -> str | None:
        if not isinstance(value, Mapping):
            return f"{_where(path)} is a {_kind(value)} where the schema has a map"
        for key, item in value.items():
            if type(key) is not str:
                return f"{_where(path)} has a key that is not a string"
            # Keys are ids (segments, namespaces): named by position, not by value.
            if (reason := values(item, f"{path}[*]")) is not None:
                return reason
        return None

    return check


def _record(fields: list[tuple[str, Check]]) -> Check:
    names = frozenset(name for name, _ in fields)

    def check(value: Any, path: str) -> str | None:
        if not isinstance(value, Mapping):
            return f"{_where(path)} is a {_kind(value)} where the schema has a record"
        for name, field_check in fields:
            if (reason := field_check(value.get(name), f"{path}.{name}".lstrip("."))) is not None:
                return reason
        if extra := [k for k in value if k not in names]:
            where = f"{path}.{extra[0]}".lstrip(".")
            return f"{where} is not a field of the schema's record (it would be lost)"
        return None

    return check


def _unknown(value: Any, path: str) -> str | None:
    return f"{_where(path)}: the schema names a type it does not define"
