"""CBS authorization as the SDK experiences it: SAS keys, expiry, rights, bearer tokens, TLS."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from azure.core.credentials import AccessToken
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.exceptions import AuthenticationError, ConnectError, ConnectionLostError
from eventhubs_localhub import LocalHub, Policy
from eventhubs_localhub.auth import sas_signature

from target_azure_eventhubs.testing import read_all
from tests.certs import make_tls_certs
from tests.waiting import wait_until

from .conftest import FAST_FAIL


def _conn(hub: LocalHub, key_name: str, key: str) -> str:
    return (
        f"Endpoint=sb://127.0.0.1:{hub.port};SharedAccessKeyName={key_name};"
        f"SharedAccessKey={key};EntityPath=profiles;UseDevelopmentEmulator=true"
    )


def test_wrong_key_is_authentication_error(hub: LocalHub, make_producer, caplog) -> None:
    producer = make_producer(_conn(hub, hub.key_name, "not-the-key"), **FAST_FAIL)
    with pytest.raises(AuthenticationError, match="Status code: 401"):
        producer.send_batch([EventData(b"x")])
    assert hub.event_count("profiles") == 0
    assert "bad signature for key name 'RootManageSharedAccessKey'" in caplog.text
    assert "not-the-key" not in caplog.text


def test_unknown_key_name_is_authentication_error(hub: LocalHub, make_producer) -> None:
    producer = make_producer(_conn(hub, "NoSuchPolicy", hub.key), **FAST_FAIL)
    with pytest.raises(AuthenticationError, match="unknown key name 'NoSuchPolicy'"):
        producer.send_batch([EventData(b"x")])


def test_expired_token_gets_401(hub: LocalHub, make_producer) -> None:
    uri = f"sb://127.0.0.1:{hub.port}/profiles"
    expiry = str(int(time.time()) - 60)
    sig = sas_signature(hub.key, uri, expiry)
    token = (
        f"SharedAccessSignature sr={quote_plus(uri)}&sig={quote_plus(sig)}"
        f"&se={expiry}&skn={hub.key_name}"
    )
    conn = (
        f"Endpoint=sb://127.0.0.1:{hub.port};SharedAccessSignature={token};"
        "EntityPath=profiles;UseDevelopmentEmulator=true"
    )
    producer = make_producer(conn, **FAST_FAIL)
    with pytest.raises(AuthenticationError, match="Status code: 401") as info:
        producer.send_batch([EventData(b"x")])
    assert "expired" in str(info.value)
    assert hub.event_count("profiles") == 0


def test_send_only_policy_can_send_but_not_read(make_producer) -> None:
    policies = [Policy("RootManageSharedAccessKey", "root"), Policy("sender", "sk", {"Send"})]
    with LocalHub(hubs={"profiles": 2}, key="root", policies=policies) as hub:
        conn = _conn(hub, "sender", "sk")
        make_producer(conn, **FAST_FAIL).send_batch([EventData(b"allowed")], partition_id="0")
        assert [e.body for e in hub.events("profiles", "0")] == [b"allowed"]
        errors: list[Exception] = []
        received: list[Any] = []
        consumer = EventHubConsumerClient.from_connection_string(
            conn, consumer_group="$Default", **FAST_FAIL
        )
        worker = threading.Thread(
            target=consumer.receive,
            kwargs={
                "on_event": lambda _c, e: received.append(e),
                "on_error": lambda _c, e: errors.append(e),
                "partition_id": "0",
                "starting_position": "-1",
            },
        )
        worker.start()
        wait_until(lambda: bool(errors), 10)
        consumer.close()
        worker.join(10)
        assert received == []
        assert errors and isinstance(errors[0], ConnectionLostError)
        assert "'Listen' claim(s) are required" in str(errors[0])
        assert "amqp:unauthorized-access" in str(errors[0])


class _StaticCredential:
    """A minimal azure-core TokenCredential returning a fixed bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def _bearer_producer(
    hub: LocalHub, token: str, eventhub: str = "profiles"
) -> EventHubProducerClient:
    return EventHubProducerClient(
        fully_qualified_namespace=f"127.0.0.1:{hub.port}",
        eventhub_name=eventhub,
        credential=_StaticCredential(token),  # type: ignore[arg-type]
        use_tls=False,
        **FAST_FAIL,
    )


def test_bearer_tokens() -> None:
    tokens = {"good-entra-token": {"Send", "Listen"}}
    with LocalHub(hubs={"profiles": 2}, accepted_bearer_tokens=tokens) as hub:
        with _bearer_producer(hub, "good-entra-token") as producer:
            producer.send_batch([EventData(b"via-entra")], partition_id="1")
        assert [e.body for e in hub.events("profiles", "1")] == [b"via-entra"]
        with (
            _bearer_producer(hub, "forged-token") as producer,
            pytest.raises(AuthenticationError, match="Status code: 401"),
        ):
            producer.send_batch([EventData(b"nope")])
        assert hub.event_count("profiles") == 1


def test_a_token_for_an_unknown_hub_is_refused_with_404() -> None:
    # As the service does (the SDK's live test test_client_invalid_credential expects it):
    # a valid token is refused for an event hub that does not exist, before any link.
    tokens = {"good-entra-token": {"Send", "Listen"}}
    with LocalHub(hubs={"profiles": 2}, accepted_bearer_tokens=tokens) as hub:
        with (
            _bearer_producer(hub, "good-entra-token", eventhub="fakehub") as producer,
            pytest.raises(AuthenticationError, match="Status code: 404") as info,
        ):
            producer.create_batch(partition_id="0")
        assert "The messaging entity 'sb://" in str(info.value)
        assert "/fakehub' could not be found." in str(info.value)


def test_unknown_hub_is_a_clear_error(hub: LocalHub, make_producer, make_consumer) -> None:
    producer = make_producer(hub.connection_string("missing-hub"), **FAST_FAIL)
    with pytest.raises(ConnectError, match="Status code: 404") as info:
        producer.get_eventhub_properties()
    assert "missing-hub" in str(info.value)
    # The SDK checks partition ids against $management before attaching.
    consumer = make_consumer(hub.connection_string("profiles"), **FAST_FAIL)
    errors: list[Exception] = []
    worker = threading.Thread(
        target=consumer.receive,
        kwargs={
            "on_event": lambda _c, _e: None,
            "on_error": lambda _c, e: errors.append(e),
            "partition_id": "9",
            "starting_position": "-1",
        },
    )
    worker.start()
    wait_until(lambda: bool(errors), 10)
    consumer.close()
    worker.join(10)
    assert errors, "the consumer should have been refused"
    assert isinstance(errors[0], ValueError)
    assert "Wrong partition id:9" in str(errors[0])


def test_tls_listener_with_sasl_anonymous(tmp_path: Path) -> None:
    ca, cert, key = make_tls_certs(tmp_path)
    with LocalHub(hubs={"profiles": 2}, tls_cert=str(cert), tls_key=str(key)) as hub:
        assert hub.tls_port
        conn = (
            f"Endpoint=sb://localhost/;SharedAccessKeyName={hub.key_name};"
            f"SharedAccessKey={hub.key};EntityPath=profiles"
        )
        options = {
            "custom_endpoint_address": f"sb://127.0.0.1:{hub.tls_port}",
            "connection_verify": str(ca),
        }
        with EventHubProducerClient.from_connection_string(conn, **options, **FAST_FAIL) as p:
            p.send_batch([EventData(b"over-tls")], partition_key="tls")
        events = read_all(hub.connection_string("profiles"), timeout=15)
        assert [(e.body, e.partition_key) for e in events] == [(b"over-tls", "tls")]
