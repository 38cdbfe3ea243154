"""HTTP proxy settings and HTTPS_PROXY: what is used, what is refused, what failures say."""

from __future__ import annotations

from typing import Any

import pytest
from azure.eventhub import TransportType
from azure.eventhub.exceptions import ConnectError, EventHubError

from target_azure_eventhubs.delivery.connection import ConnectionSpec, connection_from_config
from target_azure_eventhubs.delivery.policy import classify, describe_failure
from target_azure_eventhubs.errors import ConfigurationError

KEY = "c2VjcmV0LWtleS1kby1ub3QtbG9n"
PASSWORD = "proxy-Pa55word-never-shown"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def spec_for(**settings: Any) -> ConnectionSpec:
    return connection_from_config(
        {
            "namespace": "contoso",
            "eventhub_name": "profiles",
            "sas_key_name": "send",
            "sas_key": KEY,
            **settings,
        }
    )


PROXY = {
    "transport_type": "amqp_websockets",
    "http_proxy_host": "proxy.corp.example",
    "http_proxy_port": 3128,
    "http_proxy_username": "alice",
    "http_proxy_password": PASSWORD,
}


def test_proxy_settings_become_the_sdks_http_proxy_option() -> None:
    spec = spec_for(**PROXY)
    assert spec.client_kwargs["transport_type"] == TransportType.AmqpOverWebsocket
    assert spec.client_kwargs["http_proxy"] == {
        "proxy_hostname": "proxy.corp.example",
        "proxy_port": 3128,
        "username": "alice",
        "password": PASSWORD,
    }
    assert spec.describe() == (
        "event hub 'profiles' in namespace 'contoso.servicebus.windows.net' with SAS key name "
        "'send' over WebSockets via HTTP proxy proxy.corp.example:3128 as user 'alice'"
    )
    assert PASSWORD not in repr(spec)


def test_websockets_without_a_proxy_say_so_and_pass_none() -> None:
    spec = spec_for(transport_type="amqp_websockets")
    assert "http_proxy" not in spec.client_kwargs
    assert spec.describe().endswith("with SAS key name 'send' over WebSockets")
    assert "WebSockets" not in spec_for().describe()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"http_proxy_host": "p", "http_proxy_port": 3128}, "transport_type is 'amqp'"),
        ({**PROXY, "http_proxy_host": None}, "set without http_proxy_host"),
        ({**PROXY, "http_proxy_port": None}, "http_proxy_port is required"),
        ({**PROXY, "http_proxy_port": 70000}, "must be a port number"),
        ({**PROXY, "http_proxy_username": None}, "http_proxy_password is set without"),
        ({**PROXY, "http_proxy_host": "http://p:3128"}, "host name or address only"),
    ],
)
def test_contradictory_proxy_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as error:
        spec_for(**settings)
    assert PASSWORD not in str(error.value)


def test_https_proxy_is_used_when_no_setting_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://bob:{PASSWORD}@10.1.2.3:8080")
    spec = spec_for(transport_type="amqp_websockets")
    assert spec.client_kwargs["http_proxy"] == {
        "proxy_hostname": "10.1.2.3",
        "proxy_port": 8080,
        "username": "bob",
        "password": PASSWORD,
    }
    assert spec.describe().endswith("via HTTP proxy 10.1.2.3:8080 (from HTTPS_PROXY) as user 'bob'")
    # The settings win over the environment.
    assert spec_for(**PROXY).client_kwargs["http_proxy"]["proxy_hostname"] == "proxy.corp.example"


def test_no_proxy_applies_as_websocket_client_applies_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://10.1.2.3:8080")
    monkeypatch.setenv("NO_PROXY", ".servicebus.windows.net")
    assert spec_for(transport_type="amqp_websockets").proxy is None
    with pytest.raises(ConfigurationError, match=r"NO_PROXY .* lists 'contoso\.servicebus"):
        spec_for(**PROXY)


def test_amqp_ignores_https_proxy_and_its_failures_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://10.1.2.3:8080")
    spec = spec_for()
    assert spec.proxy is None and "http_proxy" not in spec.client_kwargs
    refused = ConnectError("Failed to initiate the connection due to exception: timed out")
    assert "HTTPS_PROXY is set, but transport_type 'amqp' does not use proxies" in (
        describe_failure(refused, spec, "profiles")
    )


def test_emulator_flag_keeps_every_clear_text_hop_on_this_machine() -> None:
    conn = (
        f"Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey={KEY};"
        "EntityPath=profiles;UseDevelopmentEmulator=true"
    )
    ws = {"connection_string": conn, "transport_type": "amqp_websockets"}
    with pytest.raises(ConfigurationError, match="custom_endpoint_address must be on this"):
        connection_from_config({**ws, "custom_endpoint_address": "sb://gateway.example:443"})
    with pytest.raises(ConfigurationError, match="proxy must be on this machine") as error:
        connection_from_config({**ws, **PROXY})
    assert PASSWORD not in str(error.value)
    local = connection_from_config(
        {
            **ws,
            **PROXY,
            "http_proxy_host": "127.0.0.1",
            "custom_endpoint_address": "sb://127.0.0.1:9",
        }
    )
    assert local.proxy is not None and local.proxy.address == "127.0.0.1:3128"


def test_proxy_refusals_are_fatal_and_name_the_proxy_not_the_password() -> None:
    spec = spec_for(**PROXY)
    refused = EventHubError("failed CONNECT via proxy status: 407")
    assert classify(refused) == "fatal"
    text = describe_failure(refused, spec, "profiles")
    assert text.endswith(
        "via HTTP proxy proxy.corp.example:3128 as user 'alice': the proxy refused the "
        "credentials of user 'alice' (HTTP 407)"
    )
    assert classify(EventHubError("failed CONNECT via proxy status: 502")) == "transient"
    down = ConnectError(
        "Failed to initiate the connection due to exception: [Errno 111] Connection refused"
    )
    assert classify(down) == "transient"
    assert describe_failure(down, spec, "profiles").endswith(
        "via HTTP proxy proxy.corp.example:3128 as user 'alice': cannot reach the proxy: "
        "[Errno 111] Connection refused"
    )
    assert PASSWORD not in text + describe_failure(down, spec, "profiles")
