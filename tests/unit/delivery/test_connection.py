"""How settings become a connection: exactly one way, validated before any network I/O."""

from __future__ import annotations

import pytest
from azure.core.credentials import AccessToken

from target_azure_eventhubs.delivery.connection import (
    connection_from_config,
    is_loopback,
    namespace_host,
    parse_connection_string,
)
from target_azure_eventhubs.errors import ConfigurationError

KEY = "c2VjcmV0LWtleS1kby1ub3QtbG9n"  # recognisable, must never show up in messages


class FakeCredential:
    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("token", 2_000_000_000)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("contoso", "contoso.servicebus.windows.net"),
        ("contoso.servicebus.windows.net", "contoso.servicebus.windows.net"),
        ("sb://contoso.servicebus.windows.net/", "contoso.servicebus.windows.net"),
        ("127.0.0.1:5671", "127.0.0.1:5671"),
        ("localhost", "localhost"),
    ],
)
def test_namespace_host(given: str, expected: str) -> None:
    assert namespace_host(given) == expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("contoso.servicebus.windows.net", False),
        ("localhost.evil.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_sas_key_way() -> None:
    spec = connection_from_config(
        {
            "namespace": "contoso",
            "eventhub_name": "profiles",
            "sas_key_name": "send",
            "sas_key": KEY,
        }
    )
    assert spec.method == "sas_key"
    assert spec.host == "contoso.servicebus.windows.net"
    assert spec.default_eventhub == "profiles"
    assert spec.describe() == (
        "event hub 'profiles' in namespace 'contoso.servicebus.windows.net' with SAS key name 'send'"
    )
    assert KEY not in repr(spec)


def test_connection_string_way_takes_entity_path() -> None:
    conn = (
        f"Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=send;"
        f"SharedAccessKey={KEY};EntityPath=profiles"
    )
    spec = connection_from_config({"connection_string": conn})
    assert spec.method == "connection_string"
    assert spec.default_eventhub == "profiles"
    assert spec.sas_key_name == "send"
    assert KEY not in spec.describe()
    assert KEY not in repr(spec)


def test_connection_string_and_eventhub_name_must_agree() -> None:
    conn = f"Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey={KEY};EntityPath=one"
    with pytest.raises(ConfigurationError, match="EntityPath") as info:
        connection_from_config({"connection_string": conn, "eventhub_name": "two"})
    assert KEY not in str(info.value)


def test_emulator_flag_refused_for_remote_host() -> None:
    conn = (
        f"Endpoint=sb://contoso.servicebus.windows.net;SharedAccessKeyName=a;SharedAccessKey={KEY};"
        "EntityPath=hub;UseDevelopmentEmulator=true"
    )
    with pytest.raises(ConfigurationError, match="turns TLS off") as info:
        connection_from_config({"connection_string": conn})
    assert "contoso.servicebus.windows.net" in str(info.value)
    assert KEY not in str(info.value)


def test_emulator_flag_accepted_for_loopback() -> None:
    conn = (
        f"Endpoint=sb://127.0.0.1:25672;SharedAccessKeyName=a;SharedAccessKey={KEY};"
        "EntityPath=hub;UseDevelopmentEmulator=true"
    )
    spec = connection_from_config({"connection_string": conn})
    assert spec.host == "127.0.0.1"


def test_no_way_configured() -> None:
    with pytest.raises(ConfigurationError, match="no connection configured"):
        connection_from_config({"eventhub_name": "profiles"})


def test_two_ways_configured() -> None:
    with pytest.raises(ConfigurationError, match="two ways to connect") as info:
        connection_from_config(
            {
                "connection_string": f"Endpoint=sb://a/;SharedAccessKey={KEY}",
                "namespace": "a",
                "sas_key_name": "n",
                "sas_key": KEY,
                "eventhub_name": "h",
            }
        )
    assert KEY not in str(info.value)


def test_sas_key_needs_namespace_and_name() -> None:
    with pytest.raises(ConfigurationError, match="namespace is required"):
        connection_from_config({"sas_key_name": "n", "sas_key": KEY, "eventhub_name": "h"})
    with pytest.raises(ConfigurationError, match="sas_key_name"):
        connection_from_config({"namespace": "a", "sas_key": KEY, "eventhub_name": "h"})


def test_eventhub_name_required() -> None:
    with pytest.raises(ConfigurationError, match="no event hub named"):
        connection_from_config({"namespace": "a", "sas_key_name": "n", "sas_key": KEY})


def test_entra_id_with_given_credential() -> None:
    credential = FakeCredential()
    spec = connection_from_config(
        {
            "use_entra_id": True,
            "namespace": "contoso",
            "eventhub_name": "h",
            "_credential": credential,
        }
    )
    assert spec.method == "entra_id"
    assert spec.credential is credential
    assert "Entra ID" in spec.describe()


def test_entra_id_service_principal_needs_all_three() -> None:
    with pytest.raises(ConfigurationError, match="missing: client_secret"):
        connection_from_config(
            {
                "use_entra_id": True,
                "namespace": "c",
                "eventhub_name": "h",
                "tenant_id": "t",
                "client_id": "c",
            }
        )


def test_entra_id_service_principal_builds_client_secret_credential() -> None:
    from azure.identity import ClientSecretCredential

    spec = connection_from_config(
        {
            "use_entra_id": True,
            "namespace": "c",
            "eventhub_name": "h",
            "tenant_id": "00000000-0000-0000-0000-000000000000",
            "client_id": "app",
            "client_secret": KEY,
        }
    )
    assert isinstance(spec.credential, ClientSecretCredential)
    assert KEY not in repr(spec)


def test_malformed_connection_string_does_not_echo_it() -> None:
    with pytest.raises(ConfigurationError, match="malformed") as info:
        connection_from_config({"connection_string": f"Endpoint=sb://a/;{KEY}"})
    assert KEY not in str(info.value)


def test_parse_connection_string_lowercases_keys_only() -> None:
    assert parse_connection_string("Endpoint=sb://A/;EntityPath=Hub") == {
        "endpoint": "sb://A/",
        "entitypath": "Hub",
    }


def test_labels_become_user_agent() -> None:
    spec = connection_from_config(
        {
            "namespace": "c",
            "eventhub_name": "h",
            "sas_key_name": "n",
            "sas_key": KEY,
            "name": "cdp-prod",
            "description": "nightly audiences",
        }
    )
    assert spec.client_kwargs["user_agent"] == "cdp-prod nightly audiences"
