"""How records map to events: `ConversionSettings`, validated once, with lookups precomputed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from target_azure_eventhubs.events.errors import quote
from target_azure_eventhubs.events.identities import PLAIN
from target_azure_eventhubs.events.namespaces import (
    hashed_namespaces,
    kind_lookup,
    stream_namespaces,
)
from target_azure_eventhubs.events.times import TIMESTAMP_KEYS, to_epoch_ms

DEFAULT_IDENTITY_FIELDS: dict[str, str] = {
    "email": "email_lc_sha256",
    "phone": "phone_sha256",
    "ecid": "ecid",
    "crm_id": "crmId",
}
DEFAULT_ATTRIBUTE_FIELDS: dict[str, str] = {
    "first_name": "person.name.firstName",
    "last_name": "person.name.lastName",
    "birth_date": "person.birthDate",
}
MEMBERSHIP_KEY = "segmentMembership"
# A record with either key is already shaped like the event (input shape 3).
EVENT_KEYS = frozenset({MEMBERSHIP_KEY, "identityMap"})


def _str_map(value: Any, option: str) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError(f"{option} must be an object (or its JSON text)") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"{option} must be an object mapping field names to strings")
    out: dict[str, str] = {}
    for key, target in value.items():
        if not isinstance(key, str) or not key or not isinstance(target, str) or not target:
            raise ValueError(f"{option}: {key!r} -> {target!r} is not a non-empty string pair")
        out[key] = target
    return out


def _bool_option(value: Any, option: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off", ""}:
        return False
    raise ValueError(f"{option} must be true or false, got {value!r}")


def _catalog_source(value: Any) -> dict[Any, Any]:
    """The catalog as given: an object, its JSON text, or a list of {id, ...} objects."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value) if value.strip() else {}
        except orjson.JSONDecodeError:
            raise ValueError("segment_catalog must be an object (or its JSON text)") from None
    if isinstance(value, list):
        value = {item.get("id"): item for item in value if isinstance(item, Mapping)}
    if not isinstance(value, Mapping):
        raise ValueError("segment_catalog must map segment ids to objects")
    return dict(value)


def _catalog(value: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """Catalog as {segment id: {name?, timestamp key: epoch ms}}."""
    out: dict[str, dict[str, Any]] = {}
    for seg_id, info in value.items():
        if seg_id is None or seg_id == "" or not isinstance(info, Mapping):
            raise ValueError(f"segment_catalog entry {seg_id!r} must be an object with an id")
        entry: dict[str, Any] = {}
        name = info.get("name")
        if name is not None and name != "":
            entry["name"] = str(name)
        for key in TIMESTAMP_KEYS:
            try:
                ms = to_epoch_ms(info.get(key))
            except (ValueError, ArithmeticError):
                raise ValueError(
                    f"segment_catalog[{seg_id!r}].{key}: invalid time {quote(info.get(key))}"
                ) from None
            if ms is not None:
                entry[key] = ms
        out[str(seg_id)] = entry
    return out


@dataclass(frozen=True)
class ConversionSettings:
    """How records map to events. Per-record lookups are precomputed in __post_init__."""

    identity_fields: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_IDENTITY_FIELDS)
    )
    attribute_fields: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_ATTRIBUTE_FIELDS)
    )
    include_unmapped_attributes: bool = False
    segment_id_field: str = "segment_id"
    segment_status_field: str = "status"
    segment_time_field: str = "last_qualification_time"
    segment_name_field: str = "segment_name"
    segments_field: str = "segments"
    segment_namespace: str = "ups"
    include_segment_names: bool = False
    include_segment_timestamps: bool = False
    segment_catalog: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Off with change tracking, which derives statuses from what was delivered before.
    require_status: bool = True
    # Namespaces hashed like email or phone whatever their name (events.namespaces).
    hashed_identity_namespaces: Any = field(default_factory=dict)
    identity_list_field: str | None = None  # a list of {namespace, id} items
    segment_namespace_field: str | None = None  # a row's segment namespace
    stream_segment_namespaces: Mapping[str, str] = field(default_factory=dict)
    # Profile and identity updates without memberships (events.mapping); refused otherwise.
    allow_events_without_memberships: bool = False

    # Precomputed (not part of equality or repr).
    _identity_items: tuple[tuple[str, str, int], ...] = field(init=False, repr=False, compare=False)
    _attribute_items: tuple[tuple[str, tuple[str, ...]], ...] = field(
        init=False, repr=False, compare=False
    )
    _attr_conflicts: tuple[tuple[str, str, str, str], ...] = field(
        init=False, repr=False, compare=False
    )
    _attributes_root: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _attributes_children: Mapping[str, tuple[tuple[str, str], ...]] = field(
        init=False, repr=False, compare=False
    )
    _non_attribute_fields: frozenset[str] = field(init=False, repr=False, compare=False)
    _id_keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _status_keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _time_keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _name_keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _catalog: Mapping[str, Mapping[str, Any]] = field(init=False, repr=False, compare=False)
    _no_identity_reason: str = field(init=False, repr=False, compare=False)
    _no_membership_reason: str = field(init=False, repr=False, compare=False)
    _kind_of: Callable[[str], int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        identity = _str_map(self.identity_fields, "identity_fields")
        attributes = _str_map(self.attribute_fields, "attribute_fields")
        marked = hashed_namespaces(self.hashed_identity_namespaces)
        per_stream = stream_namespaces(self.stream_segment_namespaces)
        extra_fields = _namespace_fields(self, identity)
        for option in (
            "segment_id_field",
            "segment_status_field",
            "segment_time_field",
            "segment_name_field",
            "segments_field",
            "segment_namespace",
        ):
            value = getattr(self, option)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{option} must be a non-empty string")

        attr_items: list[tuple[str, tuple[str, ...]]] = []
        for name, dotted in attributes.items():
            parts = tuple(dotted.split("."))
            if name.startswith("_sdc_"):
                raise ValueError(f"attribute_fields: {name!r} is Singer metadata, not an attribute")
            if "" in parts:
                raise ValueError(f"attribute_fields: {dotted!r} has an empty path segment")
            if parts[0] in EVENT_KEYS:
                raise ValueError(f"attribute_fields: {dotted!r} would overwrite {parts[0]}")
            attr_items.append((name, parts))

        # Statically known collisions; they fail a record only when both fields have values.
        conflicts = []
        for i, (name_a, parts_a) in enumerate(attr_items):
            for name_b, parts_b in attr_items[i + 1 :]:
                n = min(len(parts_a), len(parts_b))
                if parts_a[:n] == parts_b[:n]:
                    conflicts.append((name_a, ".".join(parts_a), name_b, ".".join(parts_b)))
        # Mapped paths that can clash with unmapped fields written under `attributes.<field>`.
        root = tuple((f, ".".join(p)) for f, p in attr_items if p == ("attributes",))
        children: dict[str, list[tuple[str, str]]] = {}
        for f, p in attr_items:
            if len(p) > 1 and p[0] == "attributes":
                children.setdefault(p[1], []).append((f, ".".join(p)))

        segment_fields = {
            self.segment_id_field,
            self.segment_status_field,
            self.segment_time_field,
            self.segment_name_field,
            self.segments_field,
            *extra_fields,
        }
        names = ", ".join(identity) or "(none configured)"
        put = object.__setattr__  # frozen dataclass: precomputed fields are set once here
        put(self, "identity_fields", identity)
        put(self, "attribute_fields", attributes)
        put(self, "hashed_identity_namespaces", marked)
        put(self, "stream_segment_namespaces", per_stream)
        put(self, "_kind_of", kind_of := kind_lookup(marked))
        catalog = _catalog_source(self.segment_catalog)
        put(self, "segment_catalog", catalog)
        put(self, "_identity_items", tuple((f, ns, kind_of(ns)) for f, ns in identity.items()))
        put(self, "_attribute_items", tuple(attr_items))
        put(self, "_attr_conflicts", tuple(conflicts))
        put(self, "_attributes_root", root)
        put(self, "_attributes_children", {k: tuple(v) for k, v in children.items()})
        put(
            self,
            "_non_attribute_fields",
            frozenset(identity) | frozenset(attributes) | segment_fields | EVENT_KEYS,
        )
        put(self, "_id_keys", _unique(("id", "segment_id", self.segment_id_field)))
        put(self, "_status_keys", _unique(("status", self.segment_status_field)))
        put(
            self,
            "_time_keys",
            _unique(("lastQualificationTime", "last_qualification_time", self.segment_time_field)),
        )
        put(self, "_name_keys", _unique(("name", "segment_name", self.segment_name_field)))
        put(self, "_catalog", _catalog(catalog))
        if self.identity_list_field:
            names += f" or the identity list {self.identity_list_field}"
        put(self, "_no_identity_reason", f"no identity: none of the fields {names} has a value")
        put(
            self,
            "_no_membership_reason",
            f"no segment membership: '{self.segment_id_field}' (segment_id_field), "
            f"'{self.segments_field}' (segments_field) and '{MEMBERSHIP_KEY}' are all missing "
            "or null (an empty list or object says the profile is in no segment; "
            "allow_events_without_memberships sends profiles without memberships)",
        )

    @property
    def memberships_required(self) -> bool:
        """Whether a record in which no membership field has a value is invalid. Not with
        change tracking (`require_status` off): there such a record says the profile is in
        no segment, and a complete snapshot exits its delivered memberships."""
        return self.require_status and not self.allow_events_without_memberships

    def is_hashed(self, namespace: str) -> bool:
        """Whether values of this identity namespace are personal data sent only as hashes."""
        return self._kind_of(namespace) != PLAIN

    def for_stream(self, stream: str) -> ConversionSettings:
        """These settings with the stream's own segment namespace, if it has one."""
        namespace = self.stream_segment_namespaces.get(stream)
        if namespace is None or namespace == self.segment_namespace:
            return self
        return dataclasses.replace(self, segment_namespace=namespace)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ConversionSettings:
        """Settings from the target config (same key names; missing or null -> default)."""

        def text(key: str, default: str) -> str:
            value = config.get(key)
            return default if value is None or value == "" else value

        identity = config.get("identity_fields")
        attributes = config.get("attribute_fields")
        catalog = config.get("segment_catalog")
        return cls(
            identity_fields=DEFAULT_IDENTITY_FIELDS if identity is None else identity,
            attribute_fields=DEFAULT_ATTRIBUTE_FIELDS if attributes is None else attributes,
            include_unmapped_attributes=_bool_option(
                config.get("include_unmapped_attributes"), "include_unmapped_attributes", False
            ),
            segment_id_field=text("segment_id_field", "segment_id"),
            segment_status_field=text("segment_status_field", "status"),
            segment_time_field=text("segment_time_field", "last_qualification_time"),
            segment_name_field=text("segment_name_field", "segment_name"),
            segments_field=text("segments_field", "segments"),
            segment_namespace=text("segment_namespace", "ups"),
            include_segment_names=_bool_option(
                config.get("include_segment_names"), "include_segment_names", False
            ),
            include_segment_timestamps=_bool_option(
                config.get("include_segment_timestamps"), "include_segment_timestamps", False
            ),
            segment_catalog={} if catalog is None else catalog,
            require_status=not _bool_option(
                config.get("change_tracking"), "change_tracking", False
            ),
            hashed_identity_namespaces=config.get("hashed_identity_namespaces") or {},
            identity_list_field=config.get("identity_list_field") or None,
            segment_namespace_field=config.get("segment_namespace_field") or None,
            stream_segment_namespaces=config.get("stream_segment_namespaces") or {},
            allow_events_without_memberships=_bool_option(
                config.get("allow_events_without_memberships"),
                "allow_events_without_memberships",
                False,
            ),
        )


def _namespace_fields(settings: ConversionSettings, identity: Mapping[str, str]) -> set[str]:
    """The fields of identity_list_field and segment_namespace_field, checked."""
    for option in ("identity_list_field", "segment_namespace_field"):
        value = getattr(settings, option)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{option} must be a non-empty string")
    if settings.identity_list_field in identity:
        raise ValueError(
            f"identity_list_field {settings.identity_list_field!r} is also in identity_fields"
        )
    if settings.segment_namespace_field and not settings.require_status:
        raise ValueError(
            "segment_namespace_field cannot be combined with change_tracking (it tracks "
            "one namespace per stream): use stream_segment_namespaces"
        )
    return {f for f in (settings.identity_list_field, settings.segment_namespace_field) if f}


def _unique(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(keys))
