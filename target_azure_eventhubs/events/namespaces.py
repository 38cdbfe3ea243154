"""Identity and segment namespaces beyond the built-in rules: namespaces marked for hashing
(`hashed_identity_namespaces`), identities given as a list of `{namespace, id}` items
(`identity_list_field`), and the segment namespace of a row or a stream
(`segment_namespace_field`, `stream_segment_namespaces`).

Decisions (README, "Identity and segment namespaces"):

- A marked namespace is matched without regard to case, like the `*_sha256` rule; the mark
  wins over the name (so `phone_sha256` may be marked `email`). Kinds: `email` (trim,
  lower-case, SHA-256) and `phone` (digits and a leading `+`, SHA-256).
- A list item is `{"namespace": "Email", "id": ...}`; `namespace` may also be the XDM
  identity's `{"code": "Email"}`. Other keys (`primary`, `authenticatedState`) are accepted
  and dropped: the exported identityMap carries only `id`, as for `identityMap` input. A
  null item is skipped; anything else malformed makes the record invalid, naming the field
  and the item's index (never its value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from target_azure_eventhubs.events.errors import InvalidRecordError, decode_json_text, quote
from target_azure_eventhubs.events.identities import (
    LOWER_SHA,
    PHONE_SHA,
    add_identity_value,
    hash_kind,
)

HASH_KINDS: Mapping[str, int] = {"email": LOWER_SHA, "phone": PHONE_SHA}
_ITEM_SHAPE = '{"namespace": ..., "id": ...}'


def _json_or(value: Any, option: str) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value) if value.strip() else None
        except orjson.JSONDecodeError:
            raise ValueError(f"{option} must be a list or an object (or its JSON text)") from None
    return value


def hashed_namespaces(value: Any) -> dict[str, str]:
    """`hashed_identity_namespaces` -> {namespace: kind name}; a list marks each `email`."""
    option = "hashed_identity_namespaces"
    value = _json_or(value, option)
    if value is None:
        return {}
    if isinstance(value, list | tuple):
        value = dict.fromkeys(value, "email")
    if not isinstance(value, Mapping):
        raise ValueError(f"{option} must be a list of namespaces or an object namespace -> kind")
    out: dict[str, str] = {}
    for namespace, kind in value.items():
        if not isinstance(namespace, str) or not namespace.strip():
            raise ValueError(f"{option}: {quote(namespace)} is not a namespace name")
        if kind not in HASH_KINDS:
            raise ValueError(
                f"{option}: namespace {namespace!r} has kind {quote(kind)}; "
                f"use {' or '.join(map(repr, HASH_KINDS))}"
            )
        out[namespace] = kind
    return out


def kind_lookup(marked: Mapping[str, str]) -> Callable[[str], int]:
    """The hash kind of a namespace: its mark, else the built-in `*_sha256` rule."""
    if not marked:
        return hash_kind
    kinds = {namespace.lower(): HASH_KINDS[kind] for namespace, kind in marked.items()}

    def kind_of(namespace: str) -> int:
        found = kinds.get(namespace.lower())
        return hash_kind(namespace) if found is None else found

    return kind_of


def stream_namespaces(value: Any) -> dict[str, str]:
    """`stream_segment_namespaces` -> {stream: segment namespace}."""
    option = "stream_segment_namespaces"
    value = _json_or(value, option)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{option} must be an object mapping stream names to namespaces")
    for stream, namespace in value.items():
        if not isinstance(stream, str) or not stream or not isinstance(namespace, str):
            raise ValueError(f"{option}: {quote(stream)} -> {quote(namespace)} is not a pair")
        if not namespace.strip():
            raise ValueError(f"{option}: stream {stream!r} has an empty namespace")
    return {stream: namespace.strip() for stream, namespace in value.items()}


def _item_namespace(raw: Any, where: str) -> str:
    if isinstance(raw, Mapping):  # the XDM identity datatype: {"code": "Email"}
        raw = raw.get("code")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRecordError(f"{where} has no namespace (expected {_ITEM_SHAPE})")
    return raw.strip()


def read_identity_list(
    value: Any, ids: dict[str, list[str]], kind_of: Callable[[str], int], field: str
) -> None:
    """Identities from a list of `{namespace, id}` items (or its JSON text) into `ids`."""
    where = f"identity list field {field!r}"
    if (value := decode_json_text(value, where)) is None:
        return
    if not isinstance(value, list | tuple):
        raise InvalidRecordError(
            f"{where} must be a list of {_ITEM_SHAPE} objects, got {type(value).__name__}"
        )
    for index, item in enumerate(value):
        if item is None:
            continue
        at = f"{where} item {index}"
        if not isinstance(item, Mapping):
            raise InvalidRecordError(
                f"{at} must be an object {_ITEM_SHAPE}, got {type(item).__name__}"
            )
        namespace = _item_namespace(item.get("namespace"), at)
        raw = item.get("id")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise InvalidRecordError(f"{at} (namespace {namespace!r}) has no id")
        add_identity_value(ids, namespace, kind_of(namespace), raw, f"{at}.id")


def row_namespace(value: Any, field: str) -> str | None:
    """The segment namespace a row names in `segment_namespace_field`; None: the stream's."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    raise InvalidRecordError(
        f"field {field!r} must name a segment namespace (a string), got {type(value).__name__}"
    )
