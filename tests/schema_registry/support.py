"""The local hub in Entra mode with its Schema Registry, the target's settings for it, and
reading events back with the official consumer and decoding them with the official
encoders (which fetch each schema by id from that registry, with the reader's token)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from azure.eventhub import EventData
from azure.identity import ClientSecretCredential
from azure.schemaregistry import SchemaRegistryClient
from azure.schemaregistry.encoder.avroencoder import AvroEncoder
from azure.schemaregistry.encoder.jsonencoder import JsonSchemaEncoder
from eventhubs_localhub import LocalHub
from eventhubs_localhub.entra import EntraAuthority
from eventhubs_localhub.entra.registry import SchemaRegistry

from tests.entra.support import READER_APP, READER_SECRET, SECRET, SECRET_APP, read_events

HUBS = {"avro": 2, "json": 2, "json-schema": 2, "avsc": 2, "misfit": 2, "unregistered": 2}
GROUP = "cdp-events"
DRAFT_07 = "http://json-schema.org/draft-07/schema#"


@dataclass
class RegistryHub:
    hub: LocalHub
    entra: EntraAuthority

    @property
    def ca(self) -> str:
        return self.hub.entra_ca_path

    @property
    def registry(self) -> SchemaRegistry:
        assert self.hub.entra_server is not None and self.hub.entra_server.registry is not None
        return self.hub.entra_server.registry

    @property
    def registry_namespace(self) -> str:
        assert self.hub.entra_server is not None
        return f"127.0.0.1:{self.hub.entra_server.port}"

    def config(self, hub_name: str, encoding: str = "avro", **extra: Any) -> dict[str, Any]:
        """The target with a client secret (a Data Sender), `encoding`, the test group."""
        return {
            "use_entra_id": True,
            "namespace": "localhost",
            "eventhub_name": hub_name,
            "authority_host": self.entra.authority_host,
            "connection_verify": self.ca,
            "transport_type": "amqp",
            "custom_endpoint_address": f"sb://127.0.0.1:{self.hub.tls_port}",
            "tenant_id": self.entra.tenant_id,
            "client_id": SECRET_APP,
            "client_secret": SECRET,
            "encoding": encoding,
            "schema_group": GROUP,
            "schema_registry_namespace": self.registry_namespace,
            **extra,
        }

    def read_back(self, hub_name: str) -> list[EventData]:
        return read_events(
            self.entra.authority_host,
            self.entra.tenant_id,
            self.ca,
            f"sb://127.0.0.1:{self.hub.tls_port}",
            hub_name,
            self.hub.event_count(hub_name),
        )

    def reader_client(self) -> SchemaRegistryClient:
        """The registry as a consumer sees it: the reader principal (Data Receiver)."""
        credential = ClientSecretCredential(
            self.entra.tenant_id,
            READER_APP,
            READER_SECRET,
            authority=self.entra.authority_host,
            disable_instance_discovery=True,
            connection_verify=self.ca,
        )
        return SchemaRegistryClient(self.registry_namespace, credential, connection_verify=self.ca)

    def decode_avro(self, events: list[EventData]) -> list[dict[str, Any]]:
        with AvroEncoder(client=self.reader_client()) as encoder:
            return [encoder.decode(event) for event in events]

    def decode_json(self, events: list[EventData]) -> list[dict[str, Any]]:
        with JsonSchemaEncoder(client=self.reader_client(), validate=DRAFT_07) as encoder:
            return [encoder.decode(event) for event in events]


def start_registry_hub() -> Iterator[RegistryHub]:
    entra = EntraAuthority()
    entra.register(SECRET_APP, ["sender"], secret=SECRET)
    entra.register(READER_APP, ["receiver"], secret=READER_SECRET)
    with LocalHub(hubs=HUBS, entra=entra) as hub:
        yield RegistryHub(hub, entra)
