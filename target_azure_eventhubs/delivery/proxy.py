"""HTTP proxies for AMQP over WebSockets: from the settings or the environment, and what a
failure through one means.

The SDK hands its `http_proxy` option to websocket-client, which opens an HTTP CONNECT
tunnel; only the WebSocket transport can use a proxy. Without proxy settings,
websocket-client reads `HTTPS_PROXY` (`HTTP_PROXY` for plain `ws://`) and `NO_PROXY`
itself; its own function decides here too, so what is described is what is used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from target_azure_eventhubs.errors import ConfigurationError

SETTINGS = ("http_proxy_host", "http_proxy_port", "http_proxy_username", "http_proxy_password")
_CONNECT_STATUS = re.compile(r"failed CONNECT via proxy status: (\d+)")
_REFUSED_CREDENTIALS = {401, 407}
_REFUSED_TUNNEL = {403}  # the proxy's rules forbid the destination: retrying cannot help


@dataclass(frozen=True)
class ProxySpec:
    """An HTTP proxy to tunnel through; safe to log via `describe()` (no password)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    source: str = "settings"  # or the environment variable it came from

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def describe(self) -> str:
        origin = "" if self.source == "settings" else f" (from {self.source})"
        user = f" as user '{self.username}'" if self.username else ""
        return f"HTTP proxy {self.address}{origin}{user}"

    def sdk_option(self) -> dict[str, Any]:
        """The SDK's `http_proxy` option."""
        option: dict[str, Any] = {"proxy_hostname": self.host, "proxy_port": self.port}
        if self.username:
            option.update(username=self.username, password=self.password or "")
        return option


def configured_proxy(config: Mapping[str, Any]) -> ProxySpec | None:
    """The proxy of the `http_proxy_*` settings, checked; None when none is set."""
    given = [name for name in SETTINGS if config.get(name) not in (None, "")]
    if not given:
        return None
    host = str(config.get("http_proxy_host") or "").strip()
    if not host:
        raise ConfigurationError(f"{', '.join(given)} set without http_proxy_host")
    if "://" in host or "@" in host or (":" in host and not host.startswith("[")):
        raise ConfigurationError(
            "http_proxy_host takes a host name or address only (no scheme, port or "
            "credentials): use http_proxy_port, http_proxy_username, http_proxy_password"
        )
    port = config.get("http_proxy_port")
    if port in (None, ""):
        raise ConfigurationError("http_proxy_port is required with http_proxy_host")
    if not str(port).isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"http_proxy_port must be a port number, not {port!r}")
    username = config.get("http_proxy_username") or None
    password = config.get("http_proxy_password") or None
    if password and not username:
        raise ConfigurationError("http_proxy_password is set without http_proxy_username")
    return ProxySpec(host.strip("[]"), int(port), username, password)


def environment_variable(secure: bool) -> str | None:
    """The proxy variable websocket-client reads (lower case first), if it is set."""
    name = "https_proxy" if secure else "http_proxy"
    for candidate in (name, name.upper()):
        if candidate in os.environ:
            return candidate if os.environ[candidate].strip() else None
    return None


def resolve_proxy(
    config: Mapping[str, Any], endpoint_host: str, *, secure: bool, websockets: bool
) -> ProxySpec | None:
    """The proxy a connection to `endpoint_host` goes through: the settings win over the
    environment; `NO_PROXY` applies to both, as websocket-client applies it."""
    configured = configured_proxy(config)
    if not websockets:
        if configured is not None:
            raise ConfigurationError(
                "http_proxy_host is set but transport_type is 'amqp': an HTTP proxy carries "
                "only AMQP over WebSockets (port 443); set transport_type to 'amqp_websockets'"
            )
        return None
    from websocket._url import get_proxy_info  # noqa: PLC0415  (the client's own rules)

    if configured is not None:
        auth = (configured.username, configured.password or "") if configured.username else None
        used, _, _ = get_proxy_info(endpoint_host, secure, configured.host, configured.port, auth)
        if not used:
            raise ConfigurationError(
                f"http_proxy_host is set, but NO_PROXY (or no_proxy) lists '{endpoint_host}', "
                "so the connection would not go through the proxy: remove the host from "
                "NO_PROXY or the proxy settings"
            )
        return configured
    host, port, auth = get_proxy_info(endpoint_host, secure)
    variable = environment_variable(secure)
    if not host or variable is None:
        return None
    user, password = auth if auth else (None, None)
    return ProxySpec(host, int(port or 80), user or None, password or None, variable)


def proxy_failure(exc: BaseException, proxy: ProxySpec | None) -> str | None:
    """What went wrong with the proxy, when a failure to connect was the proxy's (the
    caller's description of the connection names the proxy)."""
    if proxy is None:
        return None
    text = str(exc)
    if match := _CONNECT_STATUS.search(text):
        status = int(match.group(1))
        if status in _REFUSED_CREDENTIALS and proxy.username:
            return f"the proxy refused the credentials of user '{proxy.username}' (HTTP {status})"
        if status in _REFUSED_CREDENTIALS:
            return (
                f"the proxy asks for credentials (HTTP {status}): set http_proxy_username and "
                "http_proxy_password"
            )
        return f"the proxy refused to open a tunnel to Event Hubs (HTTP {status})"
    if "Failed to initiate the connection" in text or "failed to establish connection" in text:
        # Through a proxy, the only connection this process opens is the proxy's.
        reason = text.split("exception:", 1)[-1].strip().splitlines()[0][:200]
        return f"cannot reach the proxy: {reason}"
    return None


def is_fatal_proxy_refusal(exc: BaseException) -> bool:
    """A proxy that refuses the credentials or the destination does so on every retry."""
    match = _CONNECT_STATUS.search(str(exc))
    return match is not None and int(match.group(1)) in _REFUSED_CREDENTIALS | _REFUSED_TUNNEL
