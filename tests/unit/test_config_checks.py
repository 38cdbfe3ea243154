"""Settings that cannot work are refused before anything connects, with one line that names
the setting (and the nearest valid one, or the range): checked on the target as the command
builds it, against the schema `--about` shows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from target_azure_eventhubs.config_checks import check_config, check_schema
from target_azure_eventhubs.errors import ConfigurationError
from target_azure_eventhubs.settings import TargetSettings
from target_azure_eventhubs.target import TargetAzureEventHubs

SECRET = "c2VjcmV0LWtleS1uZXZlci1zaG93bg=="
BASE = {
    "connection_string": (
        f"Endpoint=sb://127.0.0.1:5672/;SharedAccessKeyName=root;SharedAccessKey={SECRET}"
    ),
    "eventhub_name": "profiles",
}


def schema() -> dict[str, Any]:
    full = TargetAzureEventHubs.config_jsonschema
    TargetAzureEventHubs.append_builtin_config(full)
    return full


def refusal(**settings: Any) -> str:
    """The one-line error for BASE + settings, as the target's constructor raises it."""
    with pytest.raises(ConfigurationError) as caught:
        TargetAzureEventHubs(config={**BASE, **settings}, validate_config=True)
    message = str(caught.value)
    assert "\n" not in message
    assert SECRET not in message
    return message


def test_defaults_pass() -> None:
    check_config(BASE, schema())
    check_schema(BASE, schema())
    assert TargetSettings.from_config(BASE, schema()).activate_version_messages


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("max_retires", "max_retries"),
        ("segment_id_feld", "segment_id_field"),
        ("evenhub_name", "eventhub_name"),
        ("send_timeout", "send_timeout_seconds"),
    ],
)
def test_an_unknown_key_names_the_nearest_setting(key: str, suggestion: str) -> None:
    assert refusal(**{key: 3}) == (
        f"unknown setting '{key}': did you mean '{suggestion}'? "
        "(see `target-azure-eventhubs --about`)"
    )


def test_an_unknown_key_with_nothing_near() -> None:
    assert "unknown setting 'zzz_qqq': not a setting of this target" in refusal(zzz_qqq=1)


def test_meltano_extras_and_sdk_settings_are_allowed() -> None:
    allowed = {
        "_meltano_state_backend": "x",
        "_vars": {},
        "stream_maps": {},
        "flattening_enabled": False,
        "validate_records": True,
        "batch_size_rows": 100,
        "load_method": "append-only",
        "process_activate_version_messages": True,
        "add_record_metadata": False,  # a hub definition may pass its default
        "hard_delete": False,
        "emit_activate_version_messages": False,
    }
    TargetAzureEventHubs(config={**BASE, **allowed}, validate_config=True)


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        (
            "send_timeout_seconds",
            -1,
            "send_timeout_seconds is -1, outside its range: must be more than 0 and at most 3600",
        ),
        ("send_timeout_seconds", 0, "send_timeout_seconds is 0, outside its range"),
        ("max_retries", -1, "max_retries is -1, outside its range: must be at least 0"),
        (
            "max_exit_fraction",
            Decimal("1.5"),
            "max_exit_fraction is 1.5, outside its range: must be at least 0 and at most 1",
        ),
        (
            "max_parallel_sends",
            0,
            "max_parallel_sends is 0, outside its range: must be at least 1 and at most 64",
        ),
        ("max_buffered_mb", 0, "max_buffered_mb is 0, outside its range"),
        ("max_latency_ms", -5, "max_latency_ms is -5, outside its range"),
        ("batch_size_rows", 0, "batch_size_rows is 0, outside its range: must be at least 1"),
        (
            "http_proxy_port",
            70000,
            "http_proxy_port is 70000, outside its range: must be at least 1 and at most 65535",
        ),
        ("progress_interval_seconds", -2, "progress_interval_seconds is -2, outside its range"),
        ("retry_backoff_seconds", "fast", "retry_backoff_seconds is 'fast', not a number"),
    ],
)
def test_a_number_out_of_range_names_setting_value_and_range(
    setting: str, value: Any, expected: str
) -> None:
    assert refusal(**{setting: value}).startswith(expected)


def test_every_numeric_setting_has_a_range() -> None:
    ours = {"minimum", "exclusiveMinimum", "maximum"}
    sdk_own = {"flattening_max_depth", "flattening_max_key_length"}
    for name, spec in schema()["properties"].items():
        kinds = (
            set(spec.get("type", [])) if isinstance(spec.get("type"), list) else {spec.get("type")}
        )
        if kinds & {"integer", "number"} and name not in sdk_own:
            assert ours & set(spec), f"{name} has no range"


@pytest.mark.parametrize("method", ["upsert", "overwrite"])
def test_load_methods_other_than_append_only_are_refused(method: str) -> None:
    assert refusal(load_method=method) == (
        f"load_method '{method}' cannot work: an event hub is an append-only stream (events "
        "already sent are never updated or deleted); set load_method to 'append-only' or "
        "leave it out"
    )


def test_add_record_metadata_is_offered_and_accepted() -> None:
    # Its _sdc_* values travel as application properties (tests/properties/test_record_metadata.py).
    assert schema()["properties"]["add_record_metadata"]["type"] == ["boolean", "null"]
    TargetAzureEventHubs(config={**BASE, "add_record_metadata": True}, validate_config=True)
    assert (
        refusal(add_record_metadata="yes") == "setting add_record_metadata: must be boolean or null"
    )


def test_a_type_error_names_the_setting_not_the_secret_value() -> None:
    message = refusal(sas_key=12345, namespace="ns", sas_key_name="root")
    assert message == "setting sas_key: must be string or null"


def test_snapshot_by_activate_version_needs_those_messages() -> None:
    assert refusal(
        change_tracking=True,
        snapshot_end="activate_version",
        process_activate_version_messages=False,
    ) == (
        "snapshot_end activate_version needs ACTIVATE_VERSION messages: "
        "process_activate_version_messages is false"
    )
