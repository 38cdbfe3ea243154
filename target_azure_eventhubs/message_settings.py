"""Settings of what each message carries besides its body: `application_properties` and
CloudEvents (`cloudevents`, `cloudevents_source`, `cloudevents_type`). Their schema goes
into `--about` with the others (`settings.CONFIG_JSONSCHEMA`); `message_options` checks
them as a whole at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from singer_sdk import typing as th

from target_azure_eventhubs.errors import ConfigurationError
from target_azure_eventhubs.events.cloudevents import DEFAULT_SOURCE, DEFAULT_TYPE, MODES
from target_azure_eventhubs.events.properties import PropertySpec, parse_application_properties

_RULE = th.ObjectType(
    th.Property("field", th.StringType()),
    th.Property("value", th.CustomType({"type": ["string", "integer", "number", "boolean"]})),
    th.Property("template", th.StringType()),
    additional_properties=False,
)

MESSAGE_SETTINGS = th.PropertiesList(
    th.Property(
        "application_properties",
        th.ObjectType(additional_properties=_RULE),
        description="Application properties to add to every event: name -> "
        '`{"field": "dotted.path"}` (a record field), `{"value": ...}` (a constant) or '
        '`{"template": "{stream}/{address.country}"}` (a string). Values keep their AMQP '
        "type: string, long (every integer), double, boolean, timestamp (`format: "
        "date-time` fields); null or missing leaves the property out, an object or list is "
        "an invalid record. `stream`, `segment_ids`, `cloudEvents_*` and `x-opt-*` are "
        "reserved.",
    ),
    th.Property(
        "cloudevents",
        th.StringType(allowed_values=list(MODES)),
        default="none",
        description="CloudEvents 1.0 AMQP binding: `none`, `binary` (the body stays the event; "
        "attributes as `cloudEvents_*` application properties) or `structured` (the body is "
        "the JSON CloudEvent, content type `application/cloudevents+json`). `id` is the "
        "message id, `subject` the profile's key, `time` the latest qualification time.",
    ),
    th.Property(
        "cloudevents_source",
        th.StringType(),
        default=DEFAULT_SOURCE,
        description="CloudEvents `source` (a URI reference; `{stream}` is the stream's name).",
    ),
    th.Property(
        "cloudevents_type",
        th.StringType(),
        default=DEFAULT_TYPE,
        description="CloudEvents `type` (`{stream}` is the stream's name).",
    ),
)


@dataclass(frozen=True)
class MessageOptions:
    """The validated message settings."""

    application_properties: tuple[PropertySpec, ...] = ()
    cloudevents: str = "none"
    cloudevents_source: str = DEFAULT_SOURCE
    cloudevents_type: str = DEFAULT_TYPE

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MessageOptions:
        try:
            specs = parse_application_properties(config.get("application_properties"))
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        mode = str(config.get("cloudevents") or "none")
        if mode not in MODES:
            raise ConfigurationError(f"cloudevents must be one of {', '.join(MODES)}, not {mode!r}")
        options = {}
        for name in ("cloudevents_source", "cloudevents_type"):
            value = config.get(name)
            if value is not None and not str(value).strip():
                raise ConfigurationError(f"{name} must not be empty")
            if value is not None:
                options[name] = str(value)
        return cls(specs, mode, **options)
