"""Checks of a configuration that the JSON schema alone does not make clear: keys that no
setting has, numbers outside their range, and singer-sdk settings that cannot work for an
event stream. Each failure is one `ConfigurationError` naming the setting."""

from __future__ import annotations

import difflib
import functools
import json
import math
import typing as t
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import fastjsonschema

from target_azure_eventhubs.errors import ConfigurationError

# singer-sdk settings this target does not offer (they are not in `--about`): accepted
# when they ask for nothing (false, null, their default), refused otherwise.
UNSUPPORTED_SDK_SETTINGS: Mapping[str, str] = {
    "hard_delete": "events already sent cannot be deleted",
    "default_target_schema": "an event hub has no schemas",
    "batch_config": "the target writes events, not batch files",
}
# Settings meant for a tap, sometimes left in a shared config: ignored when false.
TAP_SETTINGS = frozenset({"emit_activate_version_messages"})
APPEND_ONLY = "append-only"


class CheckedConfig:
    """Mixed into the target, before singer-sdk's `Target`: the settings it does not offer
    leave `--about`, and the config is checked here, one line for the first problem
    (singer-sdk's own check logs each error of the schema on its own line)."""

    config_jsonschema: t.ClassVar[dict[str, Any]]
    _config: dict[str, Any]

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, Any]) -> None:
        t.cast(Any, super()).append_builtin_config(config_jsonschema)
        for name in UNSUPPORTED_SDK_SETTINGS:  # not offered: refused when set
            config_jsonschema["properties"].pop(name, None)

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        check_config(self._config, schema)
        check_schema(self._config, schema)
        return []


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Raise ConfigurationError for the first problem found, before anything connects."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    check_keys(config, properties)
    check_ranges(config, properties)
    method = config.get("load_method")
    if method not in (None, APPEND_ONLY):
        raise ConfigurationError(
            f"load_method {str(method)!r} cannot work: an event hub is an append-only stream "
            "(events already sent are never updated or deleted); set load_method to "
            f"'{APPEND_ONLY}' or leave it out"
        )


def check_schema(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """The JSON schema's types and allowed values; the message names the setting and the
    rule, never the value (it may be a secret)."""
    try:
        _validator(json.dumps(schema, sort_keys=True, default=str))(dict(config))
    except fastjsonschema.JsonSchemaValueException as exc:
        name = (exc.name or "data").removeprefix("data.")
        raise ConfigurationError(
            f"setting {name}: {exc.message.removeprefix('data.').removeprefix(name).strip()}"
        ) from None


@functools.lru_cache(maxsize=4)
def _validator(schema_json: str) -> Any:
    return fastjsonschema.compile(json.loads(schema_json), use_formats=False)


def check_keys(config: Mapping[str, Any], properties: Mapping[str, Any]) -> None:
    """Every key is a setting, an allowed singer-sdk setting, or one of Meltano's extras."""
    for key in sorted(config, key=str):
        if key in properties or str(key).startswith("_"):
            continue  # Meltano's extras (`_meltano_*`, `_vars`...) start with an underscore
        value = config[key]
        if key in UNSUPPORTED_SDK_SETTINGS:
            if value in (None, False, ""):
                continue
            raise ConfigurationError(
                f"setting {key!r} ({value!r}) is a singer-sdk setting this target does not "
                f"support: {UNSUPPORTED_SDK_SETTINGS[key]}; remove it"
            )
        if key in TAP_SETTINGS and value in (None, False):
            continue
        raise ConfigurationError(f"unknown setting {key!r}{_did_you_mean(key, properties)}")


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
    if close:
        return f": did you mean {close[0]!r}? (see `target-azure-eventhubs --about`)"
    return ": not a setting of this target (see `target-azure-eventhubs --about`)"


def check_ranges(config: Mapping[str, Any], properties: Mapping[str, Any]) -> None:
    """Numbers within the `minimum` / `exclusiveMinimum` / `maximum` of their schema."""
    for key, spec in properties.items():
        value = config.get(key)
        if value is None or not isinstance(spec, Mapping):
            continue
        bounds = describe_range(spec)
        if not bounds:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ConfigurationError(f"{key} is {_show(value)}, not a number ({bounds})")
        if not _within(value, spec):
            raise ConfigurationError(f"{key} is {_show(value)}, outside its range: {bounds}")


def _show(value: Any) -> str:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _number(value)
    return repr(value)[:40]


def _number(value: float | Decimal) -> str:
    if isinstance(value, int) or (math.isfinite(value) and value == int(value)):
        return str(int(value))
    return str(value)


def _within(value: float | Decimal, spec: Mapping[str, Any]) -> bool:
    if "minimum" in spec and not value >= spec["minimum"]:
        return False
    if "exclusiveMinimum" in spec and not value > spec["exclusiveMinimum"]:
        return False
    return not ("maximum" in spec and not value <= spec["maximum"])


def describe_range(spec: Mapping[str, Any]) -> str:
    """`must be at least 0 and at most 100`, or '' for a setting without a range."""
    parts = []
    if "minimum" in spec:
        parts.append(f"at least {_number(spec['minimum'])}")
    if "exclusiveMinimum" in spec:
        parts.append(f"more than {_number(spec['exclusiveMinimum'])}")
    if "maximum" in spec:
        parts.append(f"at most {_number(spec['maximum'])}")
    return f"must be {' and '.join(parts)}" if parts else ""
