"""Identities: normalising and hashing values, reading identity fields and `identityMap`."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from target_azure_eventhubs.events.errors import InvalidRecordError

# Hash kinds of identity namespaces: kept as given, email-like, phone-like.
PLAIN, LOWER_SHA, PHONE_SHA = 0, 1, 2
_DIGITS = "0123456789"
_DROP_ASCII_NON_DIGITS = str.maketrans(
    "", "", "".join(chr(code) for code in range(128) if chr(code) not in _DIGITS)
)


def hash_kind(namespace: str) -> int:
    # `phone_sha256_e164` is a hashed phone namespace that does not end in `_sha256`.
    low = namespace.lower()
    if low.endswith("_sha256_e164"):
        return PHONE_SHA
    if not low.endswith("_sha256"):
        return PLAIN
    return PHONE_SHA if "phone" in low else LOWER_SHA


def is_hashed_namespace(namespace: str) -> bool:
    """Whether values of this identity namespace are personal data sent only as hashes."""
    return hash_kind(namespace) != PLAIN


def _is_sha256_hex(value: str) -> bool:
    # bytes.fromhex is C code; it skips whitespace, so 64 chars -> 32 bytes only if all hex.
    try:
        return len(bytes.fromhex(value)) == 32
    except ValueError:
        return False


def normalise_identity(kind: int, value: str) -> str:
    v = value.strip()
    if kind == PLAIN or not v:
        return v
    if len(v) == 64 and _is_sha256_hex(v):
        return v.lower()  # already hashed: hashing is idempotent
    if kind == LOWER_SHA:
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
    return normalise_identity(hash_kind(namespace), value)


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


def add_identity_value(
    ids: dict[str, list[str]], namespace: str, kind: int, value: Any, where: str
) -> None:
    nid = normalise_identity(kind, _identity_text(value, where))
    if not nid:
        return
    known = ids.get(namespace)
    if known is None:
        ids[namespace] = [nid]
    elif nid not in known:
        known.append(nid)


def add_identity_field(
    ids: dict[str, list[str]], namespace: str, kind: int, value: Any, name: str
) -> None:
    where = f"identity field {name!r}"
    if type(value) is list or type(value) is tuple:
        for item in value:
            if item is not None and item != "":
                add_identity_value(ids, namespace, kind, item, where)
    else:
        add_identity_value(ids, namespace, kind, value, where)


def read_identity_map(
    value: Any, ids: dict[str, list[str]], kind_of: Callable[[str], int] = hash_kind
) -> None:
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
        kind = kind_of(namespace)
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise InvalidRecordError(
                    f'{where}[{index}] must be an object {{"id": ...}}, got {type(item).__name__}'
                )
            raw = item.get("id")
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                raise InvalidRecordError(f"{where}[{index}] has no id")
            add_identity_value(ids, namespace, kind, raw, f"{where}[{index}].id")
