"""The Schema Registry encoding settings (see `target_azure_eventhubs.schema_registry`,
which uses them)."""

from __future__ import annotations

from singer_sdk import typing as th

ENCODINGS = ("json", "avro", "json_schema")

REGISTRY_SETTINGS = th.PropertiesList(
    th.Property(
        "encoding",
        th.StringType(allowed_values=list(ENCODINGS)),
        default="json",
        description="The event body: `json` (plain JSON), `avro` (Avro binary, content type "
        "`avro/binary+<schema id>`) or `json_schema` (JSON checked against a JSON Schema, "
        "`application/json;serialization=Json+<schema id>`), both governed by Azure Schema "
        "Registry (the `schema-registry` extra; needs `use_entra_id`).",
    ),
    th.Property(
        "schema_group",
        th.StringType(),
        description="The Schema Registry schema group; required with `avro` and `json_schema`.",
    ),
    th.Property(
        "schema_registry_namespace",
        th.StringType(),
        description="Schema Registry host[:port]; default: the Event Hubs namespace. "
        "`connection_verify` applies to it too.",
    ),
    th.Property(
        "schema_name",
        th.StringType(),
        description="Name of the derived schema (default `SegmentMembershipEvent`, in "
        "namespace `com.target_azure_eventhubs`); an `avro_schema_path` schema keeps its own.",
    ),
    th.Property(
        "avro_schema_path",
        th.StringType(),
        description="An `.avsc` file: the Avro record schema of the events, instead of the "
        "one derived from the settings (README, Schema Registry encoding).",
    ),
    th.Property(
        "schema_auto_register",
        th.BooleanType(),
        default=True,
        description="Register the schema at start (once per run; an identical schema keeps "
        "its id). False: it must be registered already, under its name.",
    ),
)
