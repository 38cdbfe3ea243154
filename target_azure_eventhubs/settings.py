"""The target's settings: the config schema (`--about`), and the typed settings objects
built from a validated config, which the other packages receive."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from singer_sdk import typing as th

from target_azure_eventhubs.changes.store import DEFAULT_STORE
from target_azure_eventhubs.changes.tracker import SNAPSHOT_ENDS
from target_azure_eventhubs.changes.tracker import Options as ChangeOptions
from target_azure_eventhubs.config_checks import APPEND_ONLY, check_config
from target_azure_eventhubs.content_settings import MAPPING_CHECK_SETTINGS, NAMESPACE_SETTINGS
from target_azure_eventhubs.delivery.connection import ConnectionSpec, connection_from_config
from target_azure_eventhubs.delivery.policy import DeliveryOptions, options_from_config
from target_azure_eventhubs.entra_settings import ENTRA_SETTINGS
from target_azure_eventhubs.errors import ConfigurationError, InputError
from target_azure_eventhubs.events import (
    DEFAULT_ATTRIBUTE_FIELDS,
    DEFAULT_IDENTITY_FIELDS,
    ConversionSettings,
)
from target_azure_eventhubs.invalid_records import POLICIES
from target_azure_eventhubs.message_settings import MESSAGE_SETTINGS, MessageOptions
from target_azure_eventhubs.pacing_settings import PACING_SETTINGS

_STRING_MAP = th.ObjectType(additional_properties=th.StringType())

CONNECTION_SETTINGS = th.PropertiesList(
    th.Property(
        "namespace",
        th.StringType(),
        description="Event Hubs namespace: a name like `contoso` or a host like "
        "`contoso.servicebus.windows.net`. Used with the SAS key or Entra ID.",
    ),
    th.Property(
        "eventhub_name",
        th.StringType(),
        description="The event hub to send to (optional when the connection string has "
        "`EntityPath`).",
    ),
    th.Property("sas_key_name", th.StringType(), description="Shared access policy name."),
    th.Property(
        "sas_key", th.StringType(), secret=True, description="Shared access key of the policy."
    ),
    th.Property(
        "connection_string",
        th.StringType(),
        secret=True,
        description="A connection string instead of namespace + SAS key. "
        "`UseDevelopmentEmulator=true` is accepted only for a loopback host.",
    ),
    th.Property(
        "use_entra_id",
        th.BooleanType(),
        default=False,
        description="Authenticate with Microsoft Entra ID (`DefaultAzureCredential`, or a "
        "service principal when tenant_id, client_id and client_secret are set).",
    ),
    th.Property("tenant_id", th.StringType(), description="Entra ID tenant of the principal."),
    th.Property("client_id", th.StringType(), description="Entra ID application (client) id."),
    th.Property(
        "client_secret", th.StringType(), secret=True, description="Entra ID client secret."
    ),
    *ENTRA_SETTINGS,
    th.Property(
        "transport_type",
        th.StringType(allowed_values=["amqp", "amqp_websockets"]),
        default="amqp",
        description="`amqp` (port 5671) or `amqp_websockets` (port 443, for firewalls).",
    ),
    th.Property(
        "custom_endpoint_address",
        th.StringType(),
        description="Reach the service through this address (a proxy or private endpoint), "
        "e.g. `sb://gateway.example.com:443`.",
    ),
    th.Property(
        "connection_verify",
        th.StringType(),
        description="Path to a CA bundle used to verify the service's TLS certificate.",
    ),
    th.Property(
        "http_proxy_host",
        th.StringType(),
        description="HTTP proxy to tunnel through (CONNECT); `amqp_websockets` only. Without "
        "it, `HTTPS_PROXY` is used; `NO_PROXY` applies to both.",
    ),
    th.Property(
        "http_proxy_port",
        th.IntegerType(minimum=1, maximum=65535),
        description="Port of http_proxy_host.",
    ),
    th.Property(
        "http_proxy_username", th.StringType(), description="User name for the HTTP proxy."
    ),
    th.Property(
        "http_proxy_password",
        th.StringType(),
        secret=True,
        description="Password for the HTTP proxy (Basic authentication).",
    ),
    th.Property("name", th.StringType(), description="A label for this connection (logged)."),
    th.Property(
        "description", th.StringType(), description="A description of this connection (logged)."
    ),
)

CONTENT_SETTINGS = th.PropertiesList(
    th.Property(
        "identity_fields",
        _STRING_MAP,
        default=dict(DEFAULT_IDENTITY_FIELDS),
        description="Record field -> identity namespace. Namespaces ending in `_sha256`, "
        "and those in hashed_identity_namespaces, are normalised and hashed.",
    ),
    th.Property(
        "attribute_fields",
        _STRING_MAP,
        default=dict(DEFAULT_ATTRIBUTE_FIELDS),
        description="Record field -> dotted path of the profile attribute in the event.",
    ),
    th.Property(
        "include_unmapped_attributes",
        th.BooleanType(),
        default=False,
        description="Also send fields not in attribute_fields, under `attributes.<field>`.",
    ),
    th.Property(
        "segment_id_field",
        th.StringType(),
        default="segment_id",
        description="Field with the segment id (membership rows).",
    ),
    th.Property(
        "segment_status_field",
        th.StringType(),
        default="status",
        description="Field with the membership status (membership rows).",
    ),
    th.Property(
        "segment_time_field",
        th.StringType(),
        default="last_qualification_time",
        description="Field with the last qualification time (membership rows).",
    ),
    th.Property(
        "segment_name_field",
        th.StringType(),
        default="segment_name",
        description="Field with the segment name (membership rows).",
    ),
    th.Property(
        "segments_field",
        th.StringType(),
        default="segments",
        description="Field holding a list or map of memberships.",
    ),
    th.Property(
        "segment_namespace",
        th.StringType(),
        default="ups",
        description="Key under `segmentMembership` (the segments' namespace).",
    ),
    th.Property(
        "include_segment_names",
        th.BooleanType(),
        default=False,
        description="Add each segment's `name`.",
    ),
    th.Property(
        "include_segment_timestamps",
        th.BooleanType(),
        default=False,
        description="Add `createdAt`, `updatedAt`, `mappingCreatedAt`, `mappingUpdatedAt` "
        "from segment_catalog.",
    ),
    th.Property(
        "segment_catalog",
        th.ObjectType(additional_properties=th.ObjectType()),
        description="Segment id -> {name, createdAt, updatedAt, mappingCreatedAt, "
        "mappingUpdatedAt} (epoch ms or ISO times).",
    ),
    th.Property(
        "group_by_profile",
        th.BooleanType(),
        default=True,
        description="Merge the rows of one profile that arrive together into one event.",
    ),
    th.Property(
        "stream_eventhubs",
        _STRING_MAP,
        description="Stream name -> event hub name, to route streams to different hubs.",
    ),
)

DELIVERY_SETTINGS = th.PropertiesList(
    th.Property(
        "partition_key_field",
        th.StringType(),
        description="Record field that keys a profile's partition. Default: the stream's "
        "first key property, else the profile's first identity.",
    ),
    th.Property(
        "partitioning",
        th.StringType(allowed_values=["per_profile", "round_robin"]),
        default="per_profile",
        description="`per_profile` keeps each profile's events in order on one partition; "
        "`round_robin` spreads events over all partitions.",
    ),
    th.Property(
        "max_batch_size_bytes",
        th.IntegerType(minimum=1024),
        description="Cap batches below the hub's maximum message size.",
    ),
    th.Property(
        "max_latency_ms",
        th.IntegerType(minimum=0, maximum=3_600_000),
        default=1000,
        description="No record waits longer than this before its send starts.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0, maximum=1000),
        default=8,
        description="Retries of one batch before the run fails.",
    ),
    th.Property(
        "retry_backoff_seconds",
        th.NumberType(minimum=0, maximum=3600),
        default=1.0,
        description="First retry delay; doubles per retry, with jitter.",
    ),
    th.Property(
        "retry_backoff_max_seconds",
        th.NumberType(minimum=0, maximum=3600),
        default=30.0,
        description="Longest delay between two retries.",
    ),
    th.Property(
        "send_timeout_seconds",
        th.NumberType(exclusive_minimum=0, maximum=3600),
        default=30.0,
        description="A send without acknowledgement after this long is retried.",
    ),
    th.Property(
        "shutdown_timeout_seconds",
        th.NumberType(minimum=0, maximum=86400),
        default=30.0,
        description="On SIGTERM/SIGINT, how long in-flight sends may take to finish.",
    ),
    th.Property(
        "max_parallel_sends",
        th.IntegerType(minimum=1, maximum=64),
        default=4,
        description="Sender connections per event hub (each owns a share of the partitions).",
    ),
    th.Property(
        "sender_process",
        th.BooleanType(),
        default=True,
        description="Send from a separate process, so reading and sending use two cores. "
        "Turn off to keep everything in one process (slower).",
    ),
    th.Property(
        "max_buffered_mb",
        th.IntegerType(minimum=1, maximum=65536),
        default=64,
        description="Events waiting for acknowledgement before reading pauses.",
    ),
    th.Property(
        "on_invalid_record",
        th.StringType(allowed_values=list(POLICIES)),
        default="fail",
        description="`fail` (stop with a clear error), `skip` (warn and count) or "
        "`dead_letter` (append to dead_letter_path).",
    ),
    th.Property(
        "dead_letter_path",
        th.StringType(),
        description="JSONL file receiving invalid records with the reason.",
    ),
)

CHANGE_SETTINGS = th.PropertiesList(
    th.Property(
        "change_tracking",
        th.BooleanType(),
        default=False,
        description="Keep what was last delivered per profile (per stream) and send only "
        "changes: new memberships as `realized`, those still there as `existing`, ended ones "
        "as `exited`; unchanged profiles are not sent. Statuses become optional in the input.",
    ),
    th.Property(
        "change_store",
        th.StringType(),
        default=DEFAULT_STORE,
        secret=True,
        description="Where change tracking keeps its state: `sqlite:///PATH` (relative to the "
        "working directory; `sqlite:////abs/path` for an absolute one) or "
        "`postgresql://user:password@host:port/db` for runners without a lasting disk, or "
        "several runners at once.",
    ),
    th.Property(
        "snapshot_end",
        th.StringType(allowed_values=list(SNAPSHOT_ENDS)),
        default="none",
        description="When memberships missing from the input exit: `none` (incremental "
        "input, only explicit `exited` statuses end memberships), `end_of_input` (each run's "
        "input is the complete current membership of its streams), `activate_version` (a "
        "stream's snapshot is complete at an ACTIVATE_VERSION for a version already received, "
        "as classic taps send after a full-table sync).",
    ),
    th.Property(
        "max_exit_fraction",
        th.NumberType(minimum=0, maximum=1),
        default=0.5,
        description="A complete snapshot that would exit more than this fraction of a "
        "stream's delivered memberships exits none and fails the run (a truncated input looks "
        "complete). 1 allows any.",
    ),
    th.Property(
        "change_tracking_baseline",
        th.BooleanType(),
        default=False,
        description="Record the input in the change store without sending anything: how a "
        "team adopts the target for audiences its consumers already know. Turn it off after "
        "that run.",
    ),
)

OPERATING_SETTINGS = th.PropertiesList(
    th.Property(
        "dry_run",
        th.BooleanType(),
        default=False,
        description="Read, validate and convert everything (with change tracking, compute the "
        "diff), report per stream what would be sent and show the first events on stderr; "
        "send nothing, change no store, write no STATE.",
    ),
    th.Property(
        "progress_interval_seconds",
        th.NumberType(minimum=0, maximum=86400),
        default=30,
        description="Log a progress line (and Singer metrics) this often while running; 0 "
        "turns it off.",
    ),
)

# singer-sdk's own settings, described as this target applies them (the SDK adds the
# others it offers: stream maps, flattening, validate_records).
SINGER_SETTINGS = th.PropertiesList(
    th.Property(
        "batch_size_rows",
        th.IntegerType(minimum=1, maximum=1_000_000),
        description="Records read before a stream is drained into events (default 10000; "
        "`max_latency_ms` drains sooner).",
    ),
    th.Property(
        "process_activate_version_messages",
        th.BooleanType(),
        default=True,
        description="Act on `ACTIVATE_VERSION` messages (with snapshot_end `activate_version` "
        "they complete a snapshot); false ignores them.",
    ),
    th.Property(
        "load_method",
        th.StringType(allowed_values=[APPEND_ONLY]),
        default=APPEND_ONLY,
        description="Only `append-only`: an event hub is an append-only stream, so `upsert` "
        "and `overwrite` are refused at start.",
    ),
)

CONFIG_JSONSCHEMA = th.PropertiesList(
    *CONNECTION_SETTINGS,
    *CONTENT_SETTINGS,
    *NAMESPACE_SETTINGS,
    *MAPPING_CHECK_SETTINGS,
    *MESSAGE_SETTINGS,
    *DELIVERY_SETTINGS,
    *PACING_SETTINGS,
    *CHANGE_SETTINGS,
    *OPERATING_SETTINGS,
    *SINGER_SETTINGS,
).to_dict()


@dataclass(frozen=True)
class TargetSettings:
    """A validated configuration, as the target, its sinks and delivery use it."""

    connection: ConnectionSpec
    conversion: ConversionSettings
    delivery: DeliveryOptions
    stream_eventhubs: Mapping[str, str]
    partition_key_field: str | None
    group_by_profile: bool
    max_latency: float  # seconds
    sender_process: bool
    shutdown_timeout: float
    on_invalid_record: str
    dead_letter_path: str | None
    change_tracking: bool
    change_store: str
    changes: ChangeOptions
    dry_run: bool
    progress_interval: float  # seconds; 0: no progress lines
    activate_version_messages: bool = True  # process_activate_version_messages
    message: MessageOptions = MessageOptions()  # noqa: RUF009 (frozen: one shared default)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], schema: Mapping[str, Any] | None = None
    ) -> TargetSettings:
        """Check the configuration as a whole; raises ConfigurationError, before any I/O.
        `schema` is the full config schema (singer-sdk's settings included) when known."""
        check_config(config, schema or CONFIG_JSONSCHEMA)
        connection = connection_from_config(config)
        try:
            conversion = ConversionSettings.from_config(config)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        return cls(
            connection=connection,
            conversion=conversion,
            delivery=options_from_config(config),
            stream_eventhubs=dict(config.get("stream_eventhubs") or {}),
            partition_key_field=config.get("partition_key_field") or None,
            group_by_profile=bool(config.get("group_by_profile", True)),
            max_latency=float(config.get("max_latency_ms", 1000)) / 1000,
            sender_process=bool(config.get("sender_process", True)),
            shutdown_timeout=float(config.get("shutdown_timeout_seconds", 30.0)),
            on_invalid_record=str(config.get("on_invalid_record") or "fail"),
            dead_letter_path=config.get("dead_letter_path"),
            change_tracking=bool(config.get("change_tracking", False)),
            change_store=str(config.get("change_store") or DEFAULT_STORE),
            changes=_change_options(config),
            dry_run=bool(config.get("dry_run", False)),
            progress_interval=_progress_interval(config),
            activate_version_messages=config.get("process_activate_version_messages") is not False,
            message=MessageOptions.from_config(config),
        )

    @property
    def round_robin(self) -> bool:
        return self.delivery.round_robin

    def eventhub_for(self, stream_name: str) -> str:
        """The event hub a stream goes to: its `stream_eventhubs` route, else the default."""
        hub = self.stream_eventhubs.get(stream_name) or self.connection.default_eventhub
        if not hub:
            raise InputError(
                f"stream '{stream_name}' has no event hub: add it to stream_eventhubs or set "
                "eventhub_name"
            )
        return str(hub)


def _change_options(config: Mapping[str, Any]) -> ChangeOptions:
    snapshot_end = str(config.get("snapshot_end") or "none")
    if snapshot_end not in SNAPSHOT_ENDS:
        raise ConfigurationError(
            f"snapshot_end must be one of {', '.join(SNAPSHOT_ENDS)}, not {snapshot_end!r}"
        )
    fraction = float(config.get("max_exit_fraction", 0.5))
    if not fraction >= 0:
        raise ConfigurationError(f"max_exit_fraction must be 0 or more, not {fraction:g}")
    tracking = bool(config.get("change_tracking", False))
    for name in ("change_tracking_baseline",):
        if config.get(name) and not tracking:
            raise ConfigurationError(f"{name} needs change_tracking: true")
    if snapshot_end != "none" and not tracking:
        raise ConfigurationError("snapshot_end needs change_tracking: true")
    if snapshot_end == "activate_version" and not config.get(
        "process_activate_version_messages", True
    ):
        raise ConfigurationError(
            "snapshot_end activate_version needs ACTIVATE_VERSION messages: "
            "process_activate_version_messages is false"
        )
    return ChangeOptions(
        snapshot_end=snapshot_end,
        baseline=bool(config.get("change_tracking_baseline", False)),
        record=not config.get("dry_run", False),
        max_exit_fraction=fraction,
    )


def _progress_interval(config: Mapping[str, Any]) -> float:
    interval = float(config.get("progress_interval_seconds", 30) or 0)
    if interval < 0:
        raise ConfigurationError(
            f"progress_interval_seconds must be 0 (off) or more, not {interval:g}"
        )
    return interval
