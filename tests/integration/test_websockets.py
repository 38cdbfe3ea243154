"""The target over AMQP over WebSockets (wss, TLS verified) against the local hub's
WebSocket listener: with and without the sender process, and through a plain TCP
forwarder reached with `custom_endpoint_address`."""

from __future__ import annotations

import asyncio
import logging
import threading
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

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxy_environment(monkeypatch)


@pytest.mark.parametrize("sender_process", [True, False])
def test_target_sends_over_wss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, sender_process: bool
) -> None:
    caplog.set_level(logging.INFO, logger="eventhubs_localhub")
    with wss_hub(tmp_path) as (hub, ca):
        config = wss_config(hub, ca, sender_process=sender_process)
        result = run_target(tmp_path, config, memberships(60))
        during_run = caplog.text  # before the read-back, which connects over TCP
        assert result.returncode == 0, result.stderr[-3000:]
        assert_states_cover(result.states, 60)
        assert arrived_profiles(hub) == expected_profiles(60)
    assert "with SAS key name 'sender' over WebSockets" in result.stderr
    assert SAS_KEY not in result.stdout + result.stderr
    # Every connection the target opened went to the WebSocket listener.
    assert peers(during_run, "websocket") and not peers(during_run, "tcp"), during_run[-2000:]


class TcpForwarder:
    """A plain TCP forwarder (what a load balancer or port mapping does), whose outgoing
    connections leave from `source`, so the hub can tell them apart."""

    def __init__(self, target_port: int, source: str = "127.0.0.3") -> None:
        self.target_port = target_port
        self.source = source
        self.port = 0
        self.connections = 0
        self.bytes_up = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> TcpForwarder:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._forward, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port, local_addr=(self.source, 0)
        )
        await asyncio.gather(self._copy(reader, up_writer, True), self._copy(up_reader, writer))

    async def _copy(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, up: bool = False
    ) -> None:
        try:
            while data := await source.read(65536):
                if up:
                    self.bytes_up += len(data)
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()


def test_custom_endpoint_address_through_a_tcp_forwarder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventhubs_localhub")
    with wss_hub(tmp_path) as (hub, ca), TcpForwarder(hub.ws_port or 0) as forwarder:
        config = wss_config(
            hub, ca, custom_endpoint_address=f"sb://127.0.0.1:{forwarder.port}", max_retries=0
        )
        result = run_target(tmp_path, config, memberships(40))
        during_run = caplog.text
        assert result.returncode == 0, result.stderr[-3000:]
        assert_states_cover(result.states, 40)
        assert arrived_profiles(hub) == expected_profiles(40)
    assert forwarder.connections >= 1 and forwarder.bytes_up > 40 * 100
    # The hub saw the WebSocket connections come from the forwarder's address only.
    ws_peers = peers(during_run, "websocket")
    assert ws_peers and set(ws_peers) == {"127.0.0.3"}, ws_peers
    assert not peers(during_run, "tcp")
