"""The lines of the `--check` report that no local connection can show."""

from __future__ import annotations

from typing import Any

from target_azure_eventhubs import preflight
from target_azure_eventhubs.delivery.connection import connection_from_config
from target_azure_eventhubs.settings import CONFIG_JSONSCHEMA


class StaticCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("the report never asks for a token")


def lines(config: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, str]:
    spec = connection_from_config(config)
    schema = CONFIG_JSONSCHEMA["properties"] if schema is None else schema
    return dict(preflight._connection_lines(spec, config, schema))


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
    with_settings = {**CONFIG_JSONSCHEMA["properties"], "http_proxy_host": {}}
    assert (
        lines(config, with_settings)["HTTP proxy"] == "proxy.example:3128, user name 'proxy-user'"
    )
    # A version without the proxy settings says it does not use them.
    without = {k: v for k, v in CONFIG_JSONSCHEMA["properties"].items() if "proxy" not in k}
    assert lines(config, without)["HTTP proxy"] == (
        "proxy.example:3128, user name 'proxy-user' (not used: this version has no "
        "http_proxy_* settings)"
    )
    assert "ProxyPasswordNeverShown" not in str(lines(config))


def test_no_proxy_line_without_proxy_settings() -> None:
    assert "HTTP proxy" not in lines({**BASE, "sas_key_name": "send", "sas_key": "k"})
