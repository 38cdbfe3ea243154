"""Profile RECORDs -> Real-Time CDP-style segment-membership events.

Pure code: no I/O, logging or network. The sink calls `convert_record` once per record,
optionally `ProfileEvent.merge` to group rows of one profile, then `build_event` and
`encode_event` once per event.

Decisions where the product spec is silent (the tests pin each of them):

- Input shapes are detected per record and may be combined. Membership precedence for the
  same segment id inside one record: `segmentMembership` (shape 3) < `segments` (shape 2)
  < the row's own segment fields (shape 1); later wins, like `merge`.
- A record without any segment is valid when it has an identity: it becomes an
  identity/attribute update with `segmentMembership: {<namespace>: {}}`.
- A status given while the row's segment id is empty is invalid (a lost membership would
  otherwise go unnoticed).
- Shape 3 is detected when `segmentMembership` or `identityMap` has a non-null value.
  Only the configured `segment_namespace` may carry memberships (others: invalid, unless
  empty); identityMap items keep only their `id`; identityMap identities come before the
  identity fields of the record (this decides `first_identity`). Unmapped top-level keys of a
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

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

import orjson

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
STATUSES: tuple[str, ...] = ("realized", "existing", "exited")

_STATUS_MAP: dict[str, str] = {
    "realized": "realized",
    "existing": "existing",
    "exited": "exited",
    "qualified": "realized",
    "entered": "realized",
    "active": "realized",
    "added": "realized",
    "exiting": "exited",
    "removed": "exited",
    "left": "exited",
    "inactive": "exited",
}
_ALLOWED_STATUSES_TEXT = (
    "allowed: realized, existing, exited, or the synonyms qualified, entered, active, added "
    "(realized) and exiting, removed, left, inactive (exited)"
)
_TIMESTAMP_KEYS: tuple[str, ...] = (
    "createdAt",
    "updatedAt",
    "mappingCreatedAt",
    "mappingUpdatedAt",
)
_EVENT_KEYS = frozenset({"segmentMembership", "identityMap"})

# Hash kinds of identity namespaces.
_PLAIN, _LOWER_SHA, _PHONE_SHA = 0, 1, 2
_DIGITS = "0123456789"
_DROP_ASCII_NON_DIGITS = str.maketrans("", "", "".join(
    chr(code) for code in range(128) if chr(code) not in _DIGITS
))
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1  # what orjson can write
_EPOCH = datetime(1970, 1, 1)  # naive UTC: all internal datetimes are naive UTC
_MS = timedelta(milliseconds=1)
_MS_THRESHOLD = 100_000_000_000  # abs(epoch) >= 1e11 is milliseconds (1e11 s is year 5138)


class InvalidRecordError(ValueError):
    """A record that cannot become an event.

    `.reason` is a short human sentence; it never includes raw identity values.
    """

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _q(value: Any) -> str:
    """Quote a (non-identity) value for an error reason, truncated."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- identities


def _hash_kind(namespace: str) -> int:
    # `phone_sha256_e164` is a hashed phone namespace that does not end in `_sha256`.
    low = namespace.lower()
    if low.endswith("_sha256_e164"):
        return _PHONE_SHA
    if not low.endswith("_sha256"):
        return _PLAIN
    return _PHONE_SHA if "phone" in low else _LOWER_SHA


def is_hashed_namespace(namespace: str) -> bool:
    """Whether values of this identity namespace are personal data sent only as hashes."""
    return _hash_kind(namespace) != _PLAIN


def _is_sha256_hex(value: str) -> bool:
    # bytes.fromhex is C code; it skips whitespace, so 64 chars -> 32 bytes only if all hex.
    try:
        return len(bytes.fromhex(value)) == 32
    except ValueError:
        return False


def _normalise_identity(kind: int, value: str) -> str:
    v = value.strip()
    if kind == _PLAIN or not v:
        return v
    if len(v) == 64 and _is_sha256_hex(v):
        return v.lower()  # already hashed: hashing is idempotent
    if kind == _LOWER_SHA:
        v = v.lower()
    else:
        digits = (
            v.translate(_DROP_ASCII_NON_DIGITS)
            if v.isascii()
            else "".join(filter(_DIGITS.__contains__, v))
        )
        if not digits:
            return ""
        v = "+" + digits if v[0] == "+" else digits
    return hashlib.sha256(v.encode()).hexdigest()


def hash_identity(namespace: str, value: str) -> str:
    """Normalise an identity value for `namespace`; SHA-256 hex for `*_sha256` namespaces.

    Returns "" when nothing is left after normalisation (callers drop such values).
    """
    return _normalise_identity(_hash_kind(namespace), value)


def _identity_text(value: Any, where: str) -> str:
    t = type(value)
    if t is str:
        return value
    if t is int:
        return str(value)
    if t is float or isinstance(value, Decimal):
        if not math.isfinite(value):
            raise InvalidRecordError(f"{where} is not a finite number")
        return str(int(value)) if value == int(value) else str(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    # Never quote the value: identities are personal data.
    raise InvalidRecordError(f"{where} has a value of unsupported type {type(value).__name__}")


def _add_identity(
    ids: dict[str, list[str]], namespace: str, kind: int, value: Any, where: str
) -> None:
    nid = _normalise_identity(kind, _identity_text(value, where))
    if not nid:
        return
    known = ids.get(namespace)
    if known is None:
        ids[namespace] = [nid]
    elif nid not in known:
        known.append(nid)


def _add_identity_field(
    ids: dict[str, list[str]], namespace: str, kind: int, value: Any, name: str
) -> None:
    where = f"identity field {name!r}"
    if type(value) is list or type(value) is tuple:
        for item in value:
            if item is not None and item != "":
                _add_identity(ids, namespace, kind, item, where)
    else:
        _add_identity(ids, namespace, kind, value, where)


# ------------------------------------------------------------------------ status, times


def normalise_status(value: Any) -> str:
    """One of STATUSES for a status or a synonym (case-insensitive, trimmed)."""
    if isinstance(value, str):
        status = _STATUS_MAP.get(value)
        if status is None:
            status = _STATUS_MAP.get(value.strip().lower())
        if status is not None:
            return status
    raise InvalidRecordError(f"invalid status {_q(value)} ({_ALLOWED_STATUSES_TEXT})")


def _looks_numeric(text: str) -> bool:
    body = text[1:] if text[0] in "+-" else text
    return body.replace(".", "", 1).isdigit() and body.isascii()


def _from_epoch(value: Any) -> datetime:  # int, float or Decimal
    if not math.isfinite(value):
        raise ValueError("not finite")
    ms = value if abs(value) >= _MS_THRESHOLD else value * 1000
    return _EPOCH + timedelta(milliseconds=round(ms))


def _to_datetime(value: Any) -> datetime | None:
    """Naive UTC datetime for a time value; None for None/blank; ValueError for garbage."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _looks_numeric(text):
            return _from_epoch(Decimal(text))
        return _utc_naive(datetime.fromisoformat(text))
    if isinstance(value, datetime):
        return _utc_naive(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _from_epoch(value)
    raise ValueError("unsupported type")


def _utc_naive(dt: datetime) -> datetime:
    if dt.tzinfo is not None:
        offset = dt.utcoffset()
        dt = dt.replace(tzinfo=None)
        if offset:
            dt -= offset
    return dt


def _format_dt(dt: datetime) -> str:
    """ISO-8601 UTC with Z; milliseconds only when non-zero. `dt` is naive UTC."""
    if dt.microsecond < 1000:
        return dt.isoformat(timespec="seconds") + "Z"
    return dt.isoformat(timespec="milliseconds") + "Z"


def _is_canonical_utc(text: str) -> bool:
    # "2020-03-03T21:24:39Z": already the output form; parsing still validates it.
    return len(text) == 20 and text[19] == "Z" and text[10] == "T"


def to_iso_utc(value: Any) -> str | None:
    """ISO-8601 UTC (`2020-03-03T21:24:39Z`) for strings, datetimes, dates and epoch s/ms."""
    try:
        if type(value) is str and _is_canonical_utc(value):
            datetime.fromisoformat(value)
            return value
        dt = _to_datetime(value)
        return None if dt is None else _format_dt(dt)
    except (ValueError, ArithmeticError):
        # ArithmeticError covers OverflowError and decimal errors (out-of-range epochs).
        raise InvalidRecordError(
            f"invalid time {_q(value)} (expected ISO-8601 or epoch seconds/milliseconds)"
        ) from None


def _to_epoch_ms(value: Any) -> int | None:
    dt = _to_datetime(value)
    return None if dt is None else (dt - _EPOCH) // _MS


# ---------------------------------------------------------------------- JSON-safe values


def _json_safe(value: Any, where: str) -> Any:
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
        return {(k if type(k) is str else str(k)): _json_safe(v, where) for k, v in value.items()}
    if t is list or t is tuple:
        return [_json_safe(v, where) for v in value]
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidRecordError(f"attribute {where!r}: {value!r} is not a finite number")
        if value == value.to_integral_value():
            as_int = int(value)
            if _INT_MIN <= as_int <= _INT_MAX:
                return as_int
        return float(value)
    if isinstance(value, datetime):
        return _format_dt(_utc_naive(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dtime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return _json_safe(dict(value), where)
    if isinstance(value, bool | str):
        return bool(value) if isinstance(value, bool) else str(value)
    if isinstance(value, int):
        return _json_safe(int(value), where)
    if isinstance(value, float):
        return _json_safe(float(value), where)
    if isinstance(value, list | tuple):
        return [_json_safe(v, where) for v in value]
    raise InvalidRecordError(
        f"attribute {where!r}: a {type(value).__name__} value cannot be sent as JSON"
    )


# ----------------------------------------------------------------------------- settings


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
        for key in _TIMESTAMP_KEYS:
            try:
                ms = _to_epoch_ms(info.get(key))
            except (ValueError, ArithmeticError):
                raise ValueError(
                    f"segment_catalog[{seg_id!r}].{key}: invalid time {_q(info.get(key))}"
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

    def __post_init__(self) -> None:
        identity = _str_map(self.identity_fields, "identity_fields")
        attributes = _str_map(self.attribute_fields, "attribute_fields")
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
            if parts[0] in _EVENT_KEYS:
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
        }
        names = ", ".join(identity) or "(none configured)"
        put = object.__setattr__  # frozen dataclass: precomputed fields are set once here
        put(self, "identity_fields", identity)
        put(self, "attribute_fields", attributes)
        catalog = _catalog_source(self.segment_catalog)
        put(self, "segment_catalog", catalog)
        put(self, "_identity_items", tuple((f, ns, _hash_kind(ns)) for f, ns in identity.items()))
        put(self, "_attribute_items", tuple(attr_items))
        put(self, "_attr_conflicts", tuple(conflicts))
        put(self, "_attributes_root", root)
        put(self, "_attributes_children", {k: tuple(v) for k, v in children.items()})
        put(
            self,
            "_non_attribute_fields",
            frozenset(identity) | frozenset(attributes) | segment_fields | _EVENT_KEYS,
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
        put(self, "_no_identity_reason", f"no identity: none of the fields {names} has a value")

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
        )


def _unique(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(keys))


# ------------------------------------------------------------------------ profile event


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

    def first_identity(self) -> str | None:
        """`namespace:id` of the first identity (a default partition key)."""
        for namespace, ids in self.identities.items():
            if ids:
                return f"{namespace}:{ids[0]}"
        return None

    def segment_ids(self) -> list[str]:
        return list(self.memberships)


# ---------------------------------------------------------------------------- memberships


def _segment_id(value: Any, where: str) -> str:
    if isinstance(value, str):
        text = value.strip()
        if text:
            return text
        raise InvalidRecordError(f"empty segment id in {where}")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    raise InvalidRecordError(f"segment id {_q(value)} in {where} is not a non-empty string")


def _first(obj: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value
    return None


def _entry(
    status_raw: Any, time_raw: Any, name_raw: Any, seg_id: str, where: str
) -> dict[str, Any]:
    if status_raw is None:
        raise InvalidRecordError(f"segment {_q(seg_id)} in {where} has no status")
    try:
        entry: dict[str, Any] = {"status": normalise_status(status_raw)}
        when = to_iso_utc(time_raw)
    except InvalidRecordError as exc:
        raise InvalidRecordError(f"segment {_q(seg_id)} in {where}: {exc.reason}") from None
    if when is not None:
        entry["lastQualificationTime"] = when
    if name_raw is not None and name_raw != "":
        if isinstance(name_raw, dict | list):
            raise InvalidRecordError(f"segment {_q(seg_id)} in {where}: name is not a string")
        entry["name"] = name_raw if type(name_raw) is str else str(name_raw)
    return entry


def _entry_from_obj(
    obj: Any, seg_id: str, where: str, settings: ConversionSettings
) -> dict[str, Any]:
    if isinstance(obj, str):  # {"seg": "realized"}
        return _entry(obj, None, None, seg_id, where)
    if not isinstance(obj, Mapping):
        raise InvalidRecordError(
            f"segment {_q(seg_id)} in {where} must be an object with a status, "
            f"got {type(obj).__name__}"
        )
    entry = _entry(
        _first(obj, settings._status_keys),
        _first(obj, settings._time_keys),
        _first(obj, settings._name_keys),
        seg_id,
        where,
    )
    for key in _TIMESTAMP_KEYS:
        raw = obj.get(key)
        if raw is not None:
            try:
                ms = _to_epoch_ms(raw)
            except (ValueError, ArithmeticError):
                raise InvalidRecordError(
                    f"segment {_q(seg_id)} in {where}: invalid {key} {_q(raw)}"
                ) from None
            if ms is not None:
                entry[key] = ms
    return entry


def _segments_field(
    value: Any, memberships: dict[str, dict[str, Any]], settings: ConversionSettings
) -> None:
    where = f"field {settings.segments_field!r}"
    if isinstance(value, str):
        if not value.strip():
            return
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidRecordError(f"{where} is text but not JSON") from None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise InvalidRecordError(
                    f"{where}[{index}] must be an object with id and status, "
                    f"got {type(item).__name__}"
                )
            raw_id = _first(item, settings._id_keys)
            if raw_id is None:
                raise InvalidRecordError(f"{where}[{index}] has no segment id")
            seg_id = _segment_id(raw_id, f"{where}[{index}]")
            memberships[seg_id] = _entry_from_obj(item, seg_id, where, settings)
    elif isinstance(value, Mapping):
        for raw_id, item in value.items():
            seg_id = _segment_id(raw_id, where)
            memberships[seg_id] = _entry_from_obj(item, seg_id, where, settings)
    else:
        raise InvalidRecordError(
            f"{where} must be a list of segments or an object keyed by segment id, "
            f"got {type(value).__name__}"
        )


def _segment_membership(
    value: Any, memberships: dict[str, dict[str, Any]], settings: ConversionSettings
) -> None:
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
        if namespace != settings.segment_namespace:
            if not segments:
                continue
            raise InvalidRecordError(
                f"segmentMembership has namespace {_q(namespace)}; memberships are accepted "
                f"only under {settings.segment_namespace!r} (segment_namespace)"
            )
        for raw_id, item in segments.items():
            seg_id = _segment_id(raw_id, where)
            if not isinstance(item, Mapping):
                raise InvalidRecordError(
                    f"{where}[{_q(seg_id)}] must be an object with a status, "
                    f"got {type(item).__name__}"
                )
            memberships[seg_id] = _entry_from_obj(item, seg_id, where, settings)


def _identity_map(value: Any, ids: dict[str, list[str]]) -> None:
    if not isinstance(value, Mapping):
        raise InvalidRecordError(
            f'identityMap must be an object {{namespace: [{{"id": ...}}]}}, '
            f"got {type(value).__name__}"
        )
    for namespace, items in value.items():
        if not isinstance(namespace, str) or not namespace:
            raise InvalidRecordError("identityMap has an empty namespace")
        where = f"identityMap.{namespace}"
        if items is None:
            continue
        if not isinstance(items, list | tuple):
            raise InvalidRecordError(
                f'{where} must be a list of {{"id": ...}} objects, got {type(items).__name__}'
            )
        kind = _hash_kind(namespace)
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise InvalidRecordError(
                    f'{where}[{index}] must be an object {{"id": ...}}, got {type(item).__name__}'
                )
            raw = item.get("id")
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                raise InvalidRecordError(f"{where}[{index}] has no id")
            _add_identity(ids, namespace, kind, raw, f"{where}[{index}].id")


# ----------------------------------------------------------------------------- attributes


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


def _attributes(
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
            value = _json_safe(value, name)
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
        safe = _json_safe(value, key)
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


# ------------------------------------------------------------------------------- records


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
        _identity_map(identity_map_in, identities)
    for name, namespace, kind in settings._identity_items:
        value = get(name)
        if value is None or value == "":
            continue
        if type(value) is str:  # the common case, inlined
            nid = _normalise_identity(kind, value)
            if nid:
                known = identities.get(namespace)
                if known is None:
                    identities[namespace] = [nid]
                elif nid not in known:
                    known.append(nid)
        else:
            _add_identity_field(identities, namespace, kind, value, name)
    if not identities:
        reason = settings._no_identity_reason
        raise InvalidRecordError(reason + (" and identityMap is empty" if event_shaped else ""))

    memberships: dict[str, dict[str, Any]] = {}
    if membership_in is not None:
        _segment_membership(membership_in, memberships, settings)
    segments = get(settings.segments_field)
    if segments is not None:
        _segments_field(segments, memberships, settings)
    raw_id = get(settings.segment_id_field)
    if raw_id is not None:
        where = f"field {settings.segment_id_field!r}"
        seg_id = _segment_id(raw_id, where)
        memberships[seg_id] = _entry(
            get(settings.segment_status_field),
            get(settings.segment_time_field),
            get(settings.segment_name_field),
            seg_id,
            where,
        )
    elif get(settings.segment_status_field) is not None:
        raise InvalidRecordError(
            f"the record has a {settings.segment_status_field!r} but its "
            f"{settings.segment_id_field!r} is empty"
        )

    return ProfileEvent(identities, _attributes(record, settings, event_shaped), memberships)


def build_event(profile: ProfileEvent, settings: ConversionSettings) -> dict[str, Any]:
    """The event object: attributes at their paths, segmentMembership, identityMap."""
    event: dict[str, Any] = dict(profile.attributes)
    names = settings.include_segment_names
    stamps = settings.include_segment_timestamps
    catalog = settings._catalog
    members: dict[str, dict[str, Any]] = {}
    for seg_id, entry in profile.memberships.items():
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
                for key in _TIMESTAMP_KEYS:
                    value = entry.get(key)
                    if value is None:
                        value = known.get(key)
                    if value is not None:
                        out[key] = value
        members[seg_id] = out
    event["segmentMembership"] = {settings.segment_namespace: members}
    event["identityMap"] = {
        namespace: [{"id": i} for i in ids] for namespace, ids in profile.identities.items() if ids
    }
    return event


def _encode_default(value: Any) -> Any:
    # Only reached for values build_event never produces (Mappings, Decimal, ...).
    if isinstance(value, Mapping):
        return dict(value)
    return _json_safe(value, "(event)")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; byte-identical for equal input (insertion order kept)."""
    # orjson returns its whole 4 KiB output buffer; bodies wait in memory until sent, so
    # keep a right-sized copy (measured: 4,098 -> 576 bytes held per 540-byte body).
    return bytes(memoryview(orjson.dumps(event, default=_encode_default)))

