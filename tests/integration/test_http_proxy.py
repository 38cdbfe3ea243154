"""The target behind an HTTP proxy: a real tinyproxy (CONNECT, Basic authentication) between
the target and the local hub's wss listener. The proxy's own connections leave from
127.0.0.2, so the hub's connection log shows who really connected."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from tests.integration.target_runner import run_target
from tests.integration.ws_support import (
    SAS_KEY,
    arrived_profiles,
    assert_states_cover,
    clear_proxy_environment,
    expected_profiles,
    memberships,
    peers,
    wss_config,
    wss_hub,
)
from tests.proxy import BIND_ADDRESS, TinyProxy

pytestmark = pytest.mark.slow

USER = "etl-runner"
PASSWORD = "Proxy-Pa55-never-printed-7d1e"


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxy_environment(monkeypatch)


def proxy_settings(port: int, **extra: object) -> dict[str, object]:
    return {"http_proxy_host": "127.0.0.1", "http_proxy_port": port, **extra}


def assert_no_password(text: str) -> None:
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, PASSWORD[:12], encoded):
        assert secret not in text, "the proxy password (or its Basic encoding) was printed"


@pytest.mark.parametrize("configured_by", ["settings", "HTTPS_PROXY"])
def test_run_through_the_proxy_delivers_everything_and_only_the_proxy_reaches_the_hub(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    configured_by: str,
) -> None:
    caplog.set_level(logging.INFO, logger="eventhubs_localhub")
    with wss_hub(tmp_path) as (hub, ca), TinyProxy(tmp_path) as proxy:
        extra = proxy_settings(proxy.port) if configured_by == "settings" else {}
        if configured_by == "HTTPS_PROXY":
            monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        result = run_target(tmp_path, wss_config(hub, ca, **extra), memberships(80))
        during_run = caplog.text
        assert result.returncode == 0, result.stderr[-3000:]
        assert_states_cover(result.states, 80)
        assert arrived_profiles(hub) == expected_profiles(80)
        tunnels = proxy.tunnels()
    origin = "" if configured_by == "settings" else " (from HTTPS_PROXY)"
    assert f"over WebSockets via HTTP proxy 127.0.0.1:{proxy.port}{origin}" in result.stderr
    # The proxy opened every tunnel to the hub's WebSocket listener ...
    assert tunnels and set(tunnels) == {f"127.0.0.1:{hub.ws_port}"}, tunnels
    # ... and the hub saw connections from the proxy's side only (127.0.0.2), none from
    # the target's own address (127.0.0.1, as the TCP read-back afterwards shows).
    ws_peers = peers(during_run, "websocket")
    assert len(ws_peers) == len(tunnels) and set(ws_peers) == {BIND_ADDRESS}, ws_peers
    assert not peers(during_run, "tcp")
    assert set(peers(caplog.text, "tcp")) == {"127.0.0.1"}


def test_with_the_proxy_stopped_the_run_fails_naming_the_proxy(tmp_path: Path) -> None:
    with wss_hub(tmp_path) as (hub, ca):
        with TinyProxy(tmp_path) as proxy:
            port = proxy.port
        assert proxy.process is not None and proxy.process.returncode is not None  # stopped
        config = wss_config(hub, ca, max_retries=1, **proxy_settings(port))
        result = run_target(tmp_path, config, memberships(20), timeout=60)
        assert hub.event_count("profiles") == 0
    assert result.returncode != 0 and result.states == []
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert any(
        f"via HTTP proxy 127.0.0.1:{port}: cannot reach the proxy" in line
        and "Connection refused" in line
        for line in errors
    ), result.stderr[-3000:]
    assert SAS_KEY not in result.stdout + result.stderr


def test_proxy_authentication_right_and_wrong_credentials(tmp_path: Path) -> None:
    with wss_hub(tmp_path) as (hub, ca), TinyProxy(tmp_path, credentials=(USER, PASSWORD)) as proxy:
        settings = proxy_settings(proxy.port, http_proxy_username=USER)
        wrong = run_target(
            tmp_path,
            wss_config(hub, ca, **settings, http_proxy_password="not-the-password"),
            memberships(20),
            timeout=60,
        )
        assert hub.event_count("profiles") == 0
        right = run_target(
            tmp_path, wss_config(hub, ca, **settings, http_proxy_password=PASSWORD), memberships(30)
        )
        assert right.returncode == 0, right.stderr[-3000:]
        assert_states_cover(right.states, 30)
        assert arrived_profiles(hub) == expected_profiles(30)
        assert proxy.tunnels()
    assert f"via HTTP proxy 127.0.0.1:{proxy.port} as user '{USER}'" in right.stderr

    assert wrong.returncode != 0 and wrong.states == []
    errors = [line for line in wrong.stderr.splitlines() if "ERROR" in line]
    assert any(
        f"via HTTP proxy 127.0.0.1:{proxy.port} as user '{USER}': the proxy refused the "
        f"credentials of user '{USER}'" in line
        for line in errors
    ), wrong.stderr[-3000:]
    assert "Traceback" not in wrong.stderr
    assert "retry" not in wrong.stderr.lower()  # a refusal is final: not retried
    for result in (wrong, right):
        assert_no_password(result.stdout + result.stderr)
