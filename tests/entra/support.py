"""The local hub in Entra mode, its principals, and reading back with an Entra token.

Every test here sets the `AZURE_*`, `IDENTITY_*`, `MSI_*` and proxy variables itself (the
`clean_environment` fixture removes the others first), so no credential ever looks for a
real authority, the instance metadata service (169.254.169.254) or a proxy of the machine.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socketserver
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.eventhub import EventData, EventHubConsumerClient, TransportType
from azure.identity import ClientSecretCredential
from cryptography.hazmat.primitives import serialization
from eventhubs_localhub import LocalHub
from eventhubs_localhub.entra import EntraAuthority, new_rsa_key, self_signed

from target_azure_eventhubs.target import TargetAzureEventHubs
from tests.core.support import SCHEMA, lines, row, state_line

#: One event hub per test, so that reading a hub back reads only that test's events.
HUBS = {
    "secret-amqp": 2,
    "secret-ws": 2,
    "cert-amqp": 2,
    "cert-ws": 2,
    "mi-amqp": 2,
    "mi-ws": 2,
    "workload-amqp": 2,
    "workload-ws": 2,
    "default-amqp": 2,
    "default-ws": 2,
    "refused": 2,
    "sovereign": 2,
    "refresh": 2,
}
SECRET_APP, SECRET = "secret-app", "Secret-Of-The-Sender-App-71"
CERT_APP = "cert-app"
WORKLOAD_APP, WORKLOAD_SUBJECT = "workload-app", "system:serviceaccount:cdp:target"
MI_APP = "mi-app"
READER_APP, READER_SECRET = "reader-app", "Secret-Of-The-Reader-App-42"
CERT_PASSWORD = "Cert-Password-9"
PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_")
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
TRANSPORTS = ["amqp", "amqp_websockets"]


@dataclass
class EntraHub:
    hub: LocalHub
    entra: EntraAuthority
    cert_path: Path  # the certificate app's PEM: certificate and encrypted private key

    @property
    def ca(self) -> str:
        return self.hub.entra_ca_path

    def endpoint(self, transport: str) -> dict[str, str]:
        """How a client reaches the hub's TLS (amqp) or wss (amqp_websockets) listener."""
        if transport == "amqp_websockets":
            return self.hub.ws_settings()
        return {"transport_type": "amqp", "custom_endpoint_address": self.amqp_endpoint}

    @property
    def amqp_endpoint(self) -> str:
        return f"sb://127.0.0.1:{self.hub.tls_port}"

    def config(self, hub_name: str, transport: str = "amqp", **extra: Any) -> dict[str, Any]:
        """The target's settings for Entra ID against this hub; `extra` names the credential."""
        return {
            "use_entra_id": True,
            "namespace": "localhost",
            "eventhub_name": hub_name,
            "authority_host": self.entra.authority_host,
            "connection_verify": self.ca,
            **self.endpoint(transport),
            **extra,
        }

    def environment(self, **variables: str) -> dict[str, str]:
        return environment(**variables)

    def read_back(self, hub_name: str, timeout: float = 30.0) -> list[EventData]:
        """Every event of `hub_name`, read by the official consumer with an Entra token of
        the reader principal (Data Receiver)."""
        # How many to wait for, from the hub's own count: the consumer's management calls
        # cost half a second each.
        total = self.hub.event_count(hub_name)
        return read_events(
            self.entra.authority_host,
            self.entra.tenant_id,
            self.ca,
            self.amqp_endpoint,
            hub_name,
            total,
            timeout,
        )


def read_events(
    authority_host: str,
    tenant_id: str,
    ca: str,
    endpoint: str,
    hub_name: str,
    total: int,
    timeout: float = 30.0,
) -> list[EventData]:
    """`total` events of `hub_name`, read from the start by `EventHubConsumerClient` with
    the reader principal's token from the authority."""
    credential = ClientSecretCredential(
        tenant_id,
        READER_APP,
        READER_SECRET,
        authority=authority_host,
        disable_instance_discovery=True,
        connection_verify=ca,
    )
    client = EventHubConsumerClient(
        "localhost",
        hub_name,
        "$Default",
        credential,
        custom_endpoint_address=endpoint,
        connection_verify=ca,
        transport_type=TransportType.Amqp,
    )
    got: list[EventData] = []
    done = threading.Event()

    def on_batch(_context: Any, events: list[EventData]) -> None:
        got.extend(events)
        if len(got) >= total:
            done.set()

    with client:
        if total:
            worker = threading.Thread(
                target=client.receive_batch,
                kwargs={
                    "on_event_batch": on_batch,
                    "starting_position": "-1",
                    "max_wait_time": 0.5,
                },
                daemon=True,
            )
            worker.start()
            assert done.wait(timeout), f"read {len(got)} of {total} events of {hub_name}"
    return got


def segments(events: list[EventData]) -> list[str]:
    """The segment ids of the events read back (one row per event here)."""
    found = []
    for event in events:
        found.extend(json.loads(b"".join(event.body))["segmentMembership"]["ups"])
    return sorted(found)


def singer_input(tag: str, count: int = 3, state: str | None = '{"done": true}') -> str:
    """SCHEMA, `count` rows (profile `<tag>-p<i>`, segment `<tag>-s<i>`), then a STATE."""
    messages: list[dict[str, Any] | str] = [SCHEMA]
    messages += [row(f"{tag}-p{i}", f"{tag}-s{i}") for i in range(count)]
    if state is not None:
        messages.append(state_line(state))
    return lines(messages)


def expected_segments(tag: str, count: int = 3) -> list[str]:
    return sorted(f"{tag}-s{i}" for i in range(count))


def run_in_process(config: Mapping[str, Any], text: str | Iterable[str]) -> int:
    """The target in this process (reads the environment as the test set it), on `text`
    or on lines as an iterable yields them."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    source: Any = io.StringIO(text) if isinstance(text, str) else text
    try:
        return TargetAzureEventHubs(config=dict(config)).run(source)
    finally:  # the target installs its own handlers; give pytest its own back
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def start_entra_hub(directory: Path) -> Iterator[EntraHub]:
    """A hub in Entra mode with one principal per credential kind, all Data Senders, and
    a reader (Data Receiver) that reads back and that may not send."""
    entra = EntraAuthority()
    entra.register(SECRET_APP, ["sender"], secret=SECRET)
    entra.register(READER_APP, ["receiver"], secret=READER_SECRET)
    entra.register(WORKLOAD_APP, ["sender"], federated_subject=WORKLOAD_SUBJECT)
    entra.register(MI_APP, ["sender"], managed=True)
    key = new_rsa_key()
    cert = self_signed(key, CERT_APP)
    entra.register(CERT_APP, ["sender"], certificate=cert)
    cert_path = directory / "cert-app.pem"
    cert_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(CERT_PASSWORD.encode()),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    with LocalHub(hubs=HUBS, entra=entra, ws_port=0) as hub:
        yield EntraHub(hub, entra, cert_path)


def environment(**variables: str) -> dict[str, str]:
    """The process environment without any of the machine's Azure or proxy variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(PREFIXES) and k.upper() not in PROXY_VARIABLES
    }
    return {**env, **variables}


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(PREFIXES) or name.upper() in PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)


class RefusingProxy:
    """An HTTP proxy that refuses every request (403) and remembers each request line: what
    would have left this machine through `HTTPS_PROXY`."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[socketserver.StreamRequestHandler]:
        seen = self.requests

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline().decode("latin-1").strip()
                seen.append(line.rsplit(" ", 1)[0])  # without the HTTP version
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

        return Handler

    def __enter__(self) -> RefusingProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
