"""Schema Registry encoding (`encoding: avro` or `json_schema`): event bodies as Avro binary
or as JSON checked against a JSON Schema, with the registry's schema id in the content type.

Encoded in the target's process, where the event is built: a record whose event does not
fit the schema is refused there under `on_invalid_record` (its stream and line known), and
the size check sees the real body. The sender process only sends bytes, as with JSON.

`SchemaEncoding.from_config` checks the settings before any I/O; `for_stream` registers the
stream's schema (once per run and schema: one encoder per schema text) and gives the
`BodyEncoder` a sink calls for each event. The registry client authenticates with the hub's
own Entra ID credential (the registry accepts no SAS) and trusts `connection_verify`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from target_azure_eventhubs.delivery.encoding import CONTENT_TYPE
from target_azure_eventhubs.errors import ConfigurationError, DeliveryError
from target_azure_eventhubs.events.avro_schema import (
    DEFAULT_NAME,
    AvroCheck,
    event_json_schema,
    event_schema,
)
from target_azure_eventhubs.events.settings import ConversionSettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from target_azure_eventhubs.delivery.connection import ConnectionSpec

AVRO_MIME = "avro/binary"
JSON_SCHEMA_MIME = "application/json;serialization=Json"
_EXTRA = "pip install 'target-azure-eventhubs[schema-registry]'"


class SchemaMismatch(ValueError):
    """An event that does not fit the schema; `reason` names a path, never a value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class BodyEncoder:
    """One registered schema: `encode` turns an event into its body; every body has
    `content_type`."""

    content_type: str
    encode: Callable[[Mapping[str, Any]], bytes]
    schema: str  # the registered definition


@dataclass
class SchemaEncoding:
    """The validated `encoding` settings (not `json`) and the encoders made from them."""

    kind: str  # "avro" | "json_schema"
    group: str
    host: str
    credential: TokenCredential = field(repr=False)
    verify: str | bool = True
    schema_name: str = DEFAULT_NAME
    avro_schema: dict[str, Any] | None = None  # avro_schema_path, read and parsed
    auto_register: bool = True
    _encoders: dict[str, BodyEncoder] = field(default_factory=dict, repr=False)
    _client: Any = field(default=None, repr=False)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], connection: ConnectionSpec
    ) -> SchemaEncoding | None:
        """None for `encoding: json`; raises ConfigurationError, before any I/O."""
        kind = str(config.get("encoding") or "json")
        if kind == "json":
            return None
        if kind not in ("avro", "json_schema"):
            raise ConfigurationError(f"encoding must be json, avro or json_schema, not {kind!r}")
        if connection.method != "entra_id" or connection.credential is None:
            raise ConfigurationError(
                f"encoding: {kind} needs use_entra_id: Azure Schema Registry accepts only "
                "Microsoft Entra ID tokens (no SAS key or connection string)"
            )
        group = str(config.get("schema_group") or "").strip()
        if not group:
            raise ConfigurationError(f"encoding: {kind} needs schema_group (the schema group)")
        if config.get("cloudevents") == "structured":
            raise ConfigurationError(
                f"encoding: {kind} cannot go with cloudevents: structured (a JSON envelope); "
                "use cloudevents: binary"
            )
        avsc = config.get("avro_schema_path")
        if avsc and kind != "avro":
            raise ConfigurationError("avro_schema_path needs encoding: avro")
        _require_libraries(kind)
        return cls(
            kind=kind,
            group=group,
            host=str(config.get("schema_registry_namespace") or connection.host),
            credential=connection.credential,
            verify=config.get("connection_verify") or True,
            schema_name=str(config.get("schema_name") or DEFAULT_NAME),
            avro_schema=_read_avsc(str(avsc)) if avsc else None,
            auto_register=config.get("schema_auto_register", True) is not False,
        )

    def describe(self) -> str:
        return f"schema group '{self.group}' of the Schema Registry at '{self.host}'"

    def for_stream(self, settings: ConversionSettings) -> BodyEncoder:
        """The encoder of a stream's events: registers its schema at the first call."""
        if self.kind == "avro":
            schema = self.avro_schema or event_schema(settings, self.schema_name)
        else:
            schema = event_json_schema(settings, self.schema_name)
        text = json.dumps(schema, separators=(",", ":"))
        encoder = self._encoders.get(text)
        if encoder is None:
            try:
                encoder = self._avro(schema, text) if self.kind == "avro" else self._json(text)
            except (ConfigurationError, DeliveryError):
                raise
            except Exception as exc:
                raise DeliveryError(_failure(self, exc)) from None
            self._encoders[text] = encoder
        return encoder

    def client(self) -> Any:
        if self._client is None:
            from azure.schemaregistry import SchemaRegistryClient  # noqa: PLC0415 (extra)

            self._client = SchemaRegistryClient(
                self.host, self.credential, connection_verify=self.verify
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _avro(self, schema: Mapping[str, Any], text: str) -> BodyEncoder:
        from azure.schemaregistry.encoder.avroencoder import (  # noqa: PLC0415 (extra)
            AvroEncoder,
            InvalidContentError,
        )

        encoder = AvroEncoder(
            client=self.client(), group_name=self.group, auto_register=self.auto_register
        )
        # Registers (or looks up) the schema now, and fills the encoder's id cache.
        probe = encoder.encode(_example(schema), schema=text)
        check = AvroCheck(schema)

        def encode(event: Mapping[str, Any]) -> bytes:
            try:
                return bytes(encoder.encode(event, schema=text)["content"])
            except InvalidContentError:
                raise SchemaMismatch(_avro_reason(check, event)) from None

        return BodyEncoder(str(probe["content_type"]), encode, text)

    def _json(self, text: str) -> BodyEncoder:
        import fastjsonschema  # noqa: PLC0415
        from azure.schemaregistry.encoder.jsonencoder import (  # noqa: PLC0415 (extra)
            InvalidContentError,
            JsonSchemaEncoder,
        )

        client = self.client()
        # JsonSchemaEncoder cannot register: the client registers, or finds, the schema.
        register = client.register_schema if self.auto_register else client.get_schema_properties
        schema_id = register(self.group, self.schema_name, text, "Json").id
        check = fastjsonschema.compile(json.loads(text), use_formats=False)

        def validate(schema: Mapping[str, Any], content: Mapping[str, Any]) -> None:
            check(content)  # the registered schema, compiled once

        encoder = JsonSchemaEncoder(client=client, validate=validate, group_name=self.group)

        def encode(event: Mapping[str, Any]) -> bytes:
            try:
                return bytes(encoder.encode(event, schema_id=schema_id)["content"])
            except InvalidContentError as exc:
                cause = exc.__cause__
                message = getattr(cause, "message", None) or "it cannot be written as JSON"
                raise SchemaMismatch(f"does not fit the JSON Schema: {message}") from None

        return BodyEncoder(f"{JSON_SCHEMA_MIME}+{schema_id}", encode, text)


def body_encoder(
    encoding: SchemaEncoding | None, settings: ConversionSettings
) -> tuple[BodyEncoder | None, str]:
    """A sink's encoder and content type: (None, `application/json`) for `encoding: json`;
    else the stream's registered schema's (registered now, once per run)."""
    if encoding is None:
        return None, CONTENT_TYPE
    encoder = encoding.for_stream(settings)
    return encoder, encoder.content_type


def _avro_reason(check: AvroCheck, event: Mapping[str, Any]) -> str:
    return f"does not fit the Avro schema: {check(event) or 'the Avro writer refuses it'}"


def _example(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The smallest event of a record schema that needs nothing but maps, arrays and
    nullable fields (every derived schema): encoding it registers the schema."""
    example: dict[str, Any] = {}
    for item in schema.get("fields", ()):
        kind = item["type"]
        kind = kind.get("type") if isinstance(kind, dict) else kind
        if kind == "map":
            example[item["name"]] = {}
        elif kind == "array":
            example[item["name"]] = []
        elif not (isinstance(kind, list) and "null" in kind) and "default" not in item:
            raise ConfigurationError(
                f"avro_schema_path: the field {item['name']!r} has no default and is not "
                "nullable: the schema is checked by encoding an empty event at start"
            )
    return example


def _read_avsc(path: str) -> dict[str, Any]:
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"avro_schema_path {path!r} cannot be read: {exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"avro_schema_path {path!r} is not JSON: {exc}") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ConfigurationError(f"avro_schema_path {path!r} is not an Avro record schema")
    try:
        import avro.schema  # noqa: PLC0415 (extra)

        avro.schema.parse(json.dumps(schema))
    except ImportError:
        pass  # reported by _require_libraries
    except Exception as exc:
        raise ConfigurationError(f"avro_schema_path {path!r}: {exc}") from None
    return schema


def _require_libraries(kind: str) -> None:
    try:
        import azure.schemaregistry  # noqa: PLC0415

        if kind == "avro":
            import azure.schemaregistry.encoder.avroencoder  # noqa: F401, PLC0415
    except ImportError:
        raise ConfigurationError(
            f"encoding: {kind} needs the schema-registry extra: {_EXTRA}"
        ) from None


def _failure(encoding: SchemaEncoding, exc: Exception) -> str:
    """One line for a registry that refuses or cannot be reached (no token, no body)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    what = f"HTTP {status}" if status else type(exc).__name__
    hint = {
        401: "the Entra ID token was refused",
        403: "the principal may not use this schema group (a Schema Registry role)",
        404: "the schema group or a pre-registered schema is missing",
    }.get(status or 0, str(exc).splitlines()[0][:200] if str(exc) else "")
    return f"cannot register the event schema in {encoding.describe()}: {what}: {hint}"
