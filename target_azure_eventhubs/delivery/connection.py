"""How the target reaches Event Hubs: one of three ways of authenticating, checked up front.

Nothing here opens a connection; `ConnectionSpec.create_producer` is the only factory of
clients, so every client in the process is configured the same way.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential, TokenCredential
from azure.eventhub import EventHubProducerClient, TransportType

from target_azure_eventhubs.delivery import entra
from target_azure_eventhubs.delivery.proxy import ProxySpec, environment_variable, resolve_proxy
from target_azure_eventhubs.errors import ConfigurationError

SERVICEBUS_SUFFIX = ".servicebus.windows.net"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def namespace_host(namespace: str, suffix: str = SERVICEBUS_SUFFIX) -> str:
    """`contoso` -> `contoso.servicebus.windows.net` (or the `suffix` of another cloud); a
    full host name is kept as given."""
    value = namespace.strip()
    value = re.sub(r"^(sb|amqps?|https?)://", "", value).rstrip("/")
    if "." in value or ":" in value or is_loopback(value):
        return value
    return value + suffix


def is_loopback(host: str) -> bool:
    """True for names and addresses that cannot leave this machine."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_connection_string(conn_str: str) -> dict[str, str]:
    """Split `Key=Value;...` into a dict with lower-cased keys (values untouched)."""
    parts: dict[str, str] = {}
    for item in conn_str.strip().split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigurationError(
                "connection_string is malformed: each part must look like Key=Value "
                f"(the part starting {key.strip()[:12]!r} has no '=')"
            )
        parts[key.strip().lower()] = value.strip()
    return parts


def _endpoint_host_port(endpoint: str) -> tuple[str, int | None]:
    host_port = re.sub(r"^[a-z]+://", "", endpoint.strip(), flags=re.IGNORECASE).split("/")[0]
    if host_port.startswith("["):  # [::1]:5672
        host, _, rest = host_port[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = host_port.partition(":")
    return host, int(port) if port.isdigit() else None


@dataclass(frozen=True)
class ConnectionSpec:
    """A validated description of where and how to connect; safe to log via `describe()`."""

    method: str  # "sas_key" | "connection_string" | "entra_id"
    host: str
    default_eventhub: str | None
    conn_str: str | None = field(default=None, repr=False)
    sas_key_name: str | None = None
    sas_key: str | None = field(default=None, repr=False)
    credential: TokenCredential | None = field(default=None, repr=False)
    client_kwargs: Mapping[str, Any] = field(default_factory=dict, repr=False)
    transport: str = "amqp"  # or "amqp_websockets"
    proxy: ProxySpec | None = None
    #: A proxy variable of the environment that the `amqp` transport does not use.
    ignored_proxy_variable: str | None = None
    #: Which Entra ID credential, secret-free (`entra.describe`).
    credential_label: str | None = None

    def describe(self, eventhub: str | None = None) -> str:
        """A one-line, secret-free description for logs and error messages."""
        hub = eventhub or self.default_eventhub or "?"
        how = {
            "sas_key": f"SAS key name '{self.sas_key_name}'",
            "connection_string": (
                f"connection string (key name '{self.sas_key_name}')"
                if self.sas_key_name
                else "connection string"
            ),
            "entra_id": "Microsoft Entra ID"
            + (f" ({self.credential_label})" if self.credential_label else ""),
        }[self.method]
        text = f"event hub '{hub}' in namespace '{self.host}' with {how}"
        if self.transport == "amqp_websockets":
            text += " over WebSockets"
            if self.proxy is not None:
                text += f" via {self.proxy.describe()}"
        return text

    def create_producer(self, eventhub: str, **kwargs: Any) -> EventHubProducerClient:
        options = {**self.client_kwargs, **kwargs}
        if self.method == "connection_string":
            assert self.conn_str is not None
            return EventHubProducerClient.from_connection_string(
                self.conn_str, eventhub_name=eventhub, **options
            )
        credential: Any
        if self.method == "sas_key":
            assert self.sas_key_name is not None and self.sas_key is not None
            credential = AzureNamedKeyCredential(self.sas_key_name, self.sas_key)
        else:
            credential = self.credential
        return EventHubProducerClient(
            fully_qualified_namespace=self.host,
            eventhub_name=eventhub,
            credential=credential,
            **options,
        )


def _transport_type(config: Mapping[str, Any]) -> str:
    transport = str(config.get("transport_type") or "amqp").lower()
    if transport not in {"amqp", "amqp_websockets"}:
        raise ConfigurationError(
            f"transport_type must be 'amqp' or 'amqp_websockets', not {transport!r}"
        )
    if transport == "amqp_websockets":
        try:
            import websocket  # noqa: F401, PLC0415  (only needed for this transport)
        except ImportError as exc:
            raise ConfigurationError(
                "transport_type 'amqp_websockets' needs the websocket-client package: "
                "pip install 'target-azure-eventhubs[websockets]'"
            ) from exc
    return transport


def _transport_fields(config: Mapping[str, Any], host: str, *, tls: bool) -> dict[str, Any]:
    """`ConnectionSpec` fields for the transport, the proxy and the SDK's options."""
    transport = _transport_type(config)
    websockets = transport == "amqp_websockets"
    endpoint = config.get("custom_endpoint_address")
    endpoint_host = _endpoint_host_port(str(endpoint or host))[0]
    proxy = resolve_proxy(config, endpoint_host, secure=tls, websockets=websockets)
    if not tls:
        _check_clear_text(endpoint_host if endpoint else None, proxy)
    return {
        "transport": transport,
        "proxy": proxy,
        "ignored_proxy_variable": None if websockets else environment_variable(secure=tls),
        "client_kwargs": _client_kwargs(config, websockets, proxy),
    }


def _check_clear_text(endpoint_host: str | None, proxy: ProxySpec | None) -> None:
    """With TLS off (the emulator flag), every hop must stay on this machine."""
    hops = (
        [("custom_endpoint_address", endpoint_host, f"'{endpoint_host}'")] if endpoint_host else []
    )
    if proxy is not None:
        hops.append(("proxy", proxy.host, proxy.describe()))
    for what, host, shown in hops:
        if host and not is_loopback(host):
            raise ConfigurationError(
                f"UseDevelopmentEmulator=true turns TLS off, so the {what} must be on this "
                f"machine too, not {shown}"
            )


def _client_kwargs(
    config: Mapping[str, Any], websockets: bool, proxy: ProxySpec | None
) -> dict[str, Any]:
    # Explicit: with custom_endpoint_address the SDK would otherwise pick websockets.
    kwargs: dict[str, Any] = {
        "transport_type": TransportType.AmqpOverWebsocket if websockets else TransportType.Amqp
    }
    if proxy is not None:
        kwargs["http_proxy"] = proxy.sdk_option()
    if endpoint := config.get("custom_endpoint_address"):
        kwargs["custom_endpoint_address"] = endpoint
    if verify := config.get("connection_verify"):
        kwargs["connection_verify"] = verify
    labels = [str(config[k]) for k in ("name", "description") if config.get(k)]
    if labels:
        # The service logs the user agent: label the connection with the user's names.
        kwargs["user_agent"] = " ".join(labels)[:120]
    return kwargs


def _entra_credential(config: Mapping[str, Any]) -> TokenCredential:
    if credential := config.get("_credential"):  # an object, given programmatically
        return credential
    return entra.entra_credential(config)


def _from_connection_string(config: Mapping[str, Any]) -> ConnectionSpec:
    conn_str = str(config["connection_string"])
    parts = parse_connection_string(conn_str)
    endpoint = parts.get("endpoint")
    if not endpoint:
        raise ConfigurationError("connection_string has no Endpoint=sb://<namespace>/ part")
    host, _port = _endpoint_host_port(endpoint)
    emulator = parts.get("usedevelopmentemulator", "").lower() == "true"
    if emulator and not is_loopback(host):
        raise ConfigurationError(
            f"connection_string sets UseDevelopmentEmulator=true for the non-local host "
            f"'{host}': that flag turns TLS off, so it is only accepted for localhost or "
            "127.0.0.1. Remove it to connect to a real namespace."
        )
    hub = parts.get("entitypath") or config.get("eventhub_name")
    named = config.get("eventhub_name")
    if parts.get("entitypath") and named and parts["entitypath"] != named:
        raise ConfigurationError(
            f"connection_string names event hub '{parts['entitypath']}' (EntityPath) but "
            f"eventhub_name is '{named}': give one of them"
        )
    return ConnectionSpec(
        method="connection_string",
        host=host,
        default_eventhub=hub,
        conn_str=conn_str,
        sas_key_name=parts.get("sharedaccesskeyname"),
        **_transport_fields(config, host, tls=not emulator),
    )


def connection_from_config(config: Mapping[str, Any]) -> ConnectionSpec:
    """Pick and validate exactly one of the three ways to connect."""
    ways = {
        "connection_string": bool(config.get("connection_string")),
        "namespace + sas_key_name + sas_key": bool(
            config.get("sas_key") or config.get("sas_key_name")
        ),
        "use_entra_id": bool(config.get("use_entra_id")),
    }
    chosen = [name for name, on in ways.items() if on]
    if not chosen:
        raise ConfigurationError(
            "no connection configured: set connection_string, or namespace + eventhub_name + "
            "sas_key_name + sas_key, or use_entra_id: true with namespace + eventhub_name"
        )
    if len(chosen) > 1:
        raise ConfigurationError(
            f"two ways to connect are configured ({' and '.join(chosen)}): keep exactly one"
        )
    if ways["connection_string"]:
        spec = _from_connection_string(config)
    else:
        spec = _from_namespace(config, use_entra=ways["use_entra_id"])
    if not spec.default_eventhub and not config.get("stream_eventhubs"):
        raise ConfigurationError(
            "no event hub named: set eventhub_name (or EntityPath in the connection string)"
        )
    return spec


def _from_namespace(config: Mapping[str, Any], *, use_entra: bool) -> ConnectionSpec:
    if not config.get("namespace"):
        raise ConfigurationError(
            "namespace is required with "
            + ("use_entra_id" if use_entra else "sas_key_name and sas_key")
            + " (a name like 'contoso' or a host like 'contoso.servicebus.windows.net')"
        )
    host = namespace_host(str(config["namespace"]), entra.namespace_suffix(config))
    transport = _transport_fields(config, host, tls=True)
    if use_entra:
        return ConnectionSpec(
            method="entra_id",
            host=host,
            default_eventhub=config.get("eventhub_name"),
            credential=_entra_credential(config),
            credential_label=None if config.get("_credential") else entra.describe(config),
            **transport,
        )
    missing = [k for k in ("sas_key_name", "sas_key") if not config.get(k)]
    if missing:
        raise ConfigurationError(f"{' and '.join(missing)} must be set along with namespace")
    return ConnectionSpec(
        method="sas_key",
        host=host,
        default_eventhub=config.get("eventhub_name"),
        sas_key_name=str(config["sas_key_name"]),
        sas_key=str(config["sas_key"]),
        **transport,
    )
