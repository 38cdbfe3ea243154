"""The lines of the `--check` report that no local connection can show."""

from __future__ import annotations

from typing import Any

import pytest

from target_azure_eventhubs import preflight
from target_azure_eventhubs.delivery.connection import connection_from_config


class StaticCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("the report never asks for a token")


def lines(config: dict[str, Any]) -> dict[str, str]:
    return dict(preflight._connection_lines(connection_from_config(config), config))


BASE = {"namespace": "contoso", "eventhub_name": "profiles"}


def test_entra_id_names_the_principal_never_the_secret() -> None:
    config = {
        **BASE,
        "use_entra_id": True,
        "tenant_id": "tenant-1",
        "client_id": "client-2",
        "client_secret": "ClientSecretNeverShown",
    }
    report = lines(config)
    assert report["auth"] == (
        "Microsoft Entra ID, service principal client id 'client-2' (tenant 'tenant-1')"
    )
    assert report["namespace"] == "contoso.servicebus.windows.net"
    assert "ClientSecretNeverShown" not in str(report)


def test_entra_id_without_a_principal_is_the_default_credential() -> None:
    assert lines({**BASE, "use_entra_id": True})["auth"] == (
        "Microsoft Entra ID, DefaultAzureCredential"
    )
    given = {**BASE, "use_entra_id": True, "_credential": StaticCredential()}
    assert lines(given)["auth"] == "Microsoft Entra ID, credential StaticCredential"


def test_websockets_and_a_custom_endpoint() -> None:
    config = {
        **BASE,
        "sas_key_name": "send",
        "sas_key": "SasKeyNeverShown",
        "transport_type": "amqp_websockets",
        "custom_endpoint_address": "sb://gateway.example.com:443",
    }
    report = lines(config)
    assert report["auth"] == "namespace + SAS key, shared access key name 'send'"
    assert report["transport"] == "amqp_websockets"
    assert report["custom endpoint"] == "sb://gateway.example.com:443"
    assert "SasKeyNeverShown" not in str(report)


PROXY = {
    "http_proxy_host": "proxy.example",
    "http_proxy_port": 3128,
    "http_proxy_username": "proxy-user",
    "http_proxy_password": "ProxyPasswordNeverShown",
}


def test_the_http_proxy_is_host_port_and_user_never_the_password() -> None:
    config = {**BASE, "sas_key_name": "send", "sas_key": "k", **PROXY}
    config["transport_type"] = "amqp_websockets"
    assert lines(config)["HTTP proxy"] == "proxy.example:3128 as user 'proxy-user'"
    assert "ProxyPasswordNeverShown" not in str(lines(config))


def test_the_proxy_of_the_environment_is_named_with_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://gateway.example:8080")
    config = {**BASE, "sas_key_name": "send", "sas_key": "k"}
    websockets = lines({**config, "transport_type": "amqp_websockets"})
    assert websockets["HTTP proxy"] == "gateway.example:8080 (from HTTPS_PROXY)"
    assert lines(config)["HTTP proxy"] == "none (HTTPS_PROXY is not used by amqp)"


def test_no_proxy_line_without_proxy_settings() -> None:
    assert "HTTP proxy" not in lines({**BASE, "sas_key_name": "send", "sas_key": "k"})
