"""AMQP over WebSockets: the official SDK's producer and consumer through the hub's
WebSocket listener, the handshake it checks, and AMQP frames split and joined arbitrarily
by WebSocket messages in both directions."""

from __future__ import annotations

import asyncio
import random
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket
from azure.eventhub import EventData, TransportType
from azure.eventhub.exceptions import AuthenticationError, EventDataSendError
from eventhubs_localhub import LocalHub
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from target_azure_eventhubs.testing import read_all
from tests.certs import make_tls_certs

from .conftest import FAST_FAIL

SUBPROTOCOL = "AMQPWSB10"


def ws_options(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "transport_type": TransportType.AmqpOverWebsocket,
        "custom_endpoint_address": endpoint,
        **extra,
    }


def send_bodies(make_producer, conn: str, bodies: list[bytes], **options: Any) -> None:
    producer = make_producer(conn, **options)
    batch = producer.create_batch()
    for body in bodies:
        batch.add(EventData(body))
    producer.send_batch(batch)
    producer.close()


@pytest.fixture
def ws_hub() -> Iterator[LocalHub]:
    """Plain ws:// (no TLS): reached with the emulator flag, like the TCP listener."""
    with LocalHub(hubs={"profiles": 4}, ws_port=0) as hub:
        yield hub


@pytest.fixture
def wss_hub(tmp_path: Path) -> Iterator[tuple[LocalHub, Path]]:
    ca, cert, key = make_tls_certs(tmp_path)
    with LocalHub(hubs={"profiles": 4}, tls_cert=str(cert), tls_key=str(key), ws_port=0) as hub:
        yield hub, ca


def test_sdk_round_trip_over_wss_without_the_emulator_flag(
    wss_hub: tuple[LocalHub, Path], make_producer
) -> None:
    hub, ca = wss_hub
    assert hub.ws_url == f"wss://127.0.0.1:{hub.ws_port}/$servicebus/websocket"
    conn = (
        f"Endpoint=sb://localhost/;SharedAccessKeyName={hub.key_name};"
        f"SharedAccessKey={hub.key};EntityPath=profiles"
    )
    options = ws_options(hub.ws_endpoint, connection_verify=str(ca))
    bodies = [f"wss-{i}".encode() for i in range(50)]
    send_bodies(make_producer, conn, bodies, **options)

    over_ws = read_all(conn, client_options=options)
    assert sorted(e.body for e in over_ws) == sorted(bodies)
    # The same storage as over TCP: what the TCP consumer reads is what arrived.
    over_tcp = read_all(hub.connection_string("profiles"))
    assert [(e.partition_id, e.sequence_number, e.body) for e in over_tcp] == [
        (e.partition_id, e.sequence_number, e.body) for e in over_ws
    ]


def test_tcp_and_websocket_clients_share_storage_auth_and_faults(
    ws_hub: LocalHub, make_producer
) -> None:
    conn = ws_hub.connection_string("profiles")
    options = ws_options(ws_hub.ws_endpoint)
    send_bodies(make_producer, conn, [b"tcp-1", b"tcp-2"])
    send_bodies(make_producer, conn, [b"ws-1"], **options)
    assert sorted(e.body for e in read_all(conn)) == [
        b"tcp-1",
        b"tcp-2",
        b"ws-1",
    ]
    wrong_key = conn.replace(ws_hub.key, "not-the-key")
    with pytest.raises(AuthenticationError, match="401"):
        send_bodies(make_producer, wrong_key, [b"refused"], **options, **FAST_FAIL)
    ws_hub.faults.reject_next(2)  # the SDK resends a rejected delivery once
    with pytest.raises(EventDataSendError) as busy:
        send_bodies(make_producer, conn, [b"rejected"], **options, **FAST_FAIL)
    assert busy.value.error == "server-busy"
    assert sorted(e.body for e in read_all(conn)) == [b"tcp-1", b"tcp-2", b"ws-1"]


def test_handshake_needs_the_servicebus_path_and_the_amqp_subprotocol(ws_hub: LocalHub) -> None:
    base = f"ws://127.0.0.1:{ws_hub.ws_port}"
    with pytest.raises(websocket.WebSocketBadStatusException) as wrong_path:
        websocket.create_connection(f"{base}/elsewhere", subprotocols=[SUBPROTOCOL], timeout=5)
    assert wrong_path.value.status_code == 404
    with pytest.raises(websocket.WebSocketBadStatusException) as no_protocol:
        websocket.create_connection(ws_hub.ws_url, timeout=5)
    assert no_protocol.value.status_code == 400

    ws = websocket.create_connection(ws_hub.ws_url, subprotocols=[SUBPROTOCOL], timeout=5)
    try:
        assert ws.getheaders()["sec-websocket-protocol"] == SUBPROTOCOL
        ws.send_binary(b"AMQP\x00\x01\x00\x00")  # plain AMQP header, sent in one message
        assert ws.recv() == b"AMQP\x00\x01\x00\x00"
        ws.send("a text message")  # AMQPWSB10 is binary only: the hub hangs up
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            while True:
                ws.recv()
    finally:
        ws.close()


def test_ws_port_without_the_websockets_package_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['websockets'] = None\n"
        "from eventhubs_localhub.__main__ import main\n"
        "sys.exit(main(['--port', '0', '--ws-port', '0']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "pip install 'target-azure-eventhubs[websockets]'" in result.stderr
    assert "READY" not in result.stdout


# Frames split and joined -----------------------------------------------------------------


@dataclass
class Direction:
    """The bytes that went one way, and where messages ended (as received, as re-sent)."""

    stream: bytearray = field(default_factory=bytearray)
    received_ends: list[int] = field(default_factory=list)
    sent_ends: list[int] = field(default_factory=list)


def frame_ends(stream: bytes) -> list[int]:
    """Offsets where each protocol header or AMQP/SASL frame of `stream` ends."""
    ends, pos = [], 0
    while pos + 8 <= len(stream):
        size = 8 if stream[pos : pos + 4] == b"AMQP" else struct.unpack_from(">I", stream, pos)[0]
        pos += size
        ends.append(pos)
    assert pos == len(stream), "the relay saw a truncated stream"
    return ends


def splits_and_joins(message_ends: list[int], frames: list[int]) -> tuple[int, int]:
    """(messages ending inside a frame, messages holding more than one frame end)."""
    frame_set = set(frames)
    split = sum(1 for end in message_ends if end not in frame_set)
    joined, start = 0, 0
    for end in message_ends:
        joined += sum(1 for f in frames if start < f <= end) > 1
        start = end
    return split, joined


class RechunkingRelay:
    """A WebSocket relay between the SDK and the hub that re-cuts the byte stream into
    messages of random sizes: tiny ones that split frames, large ones that join them."""

    def __init__(self, target_url: str, seed: int) -> None:
        self.target_url = target_url
        self.rng = random.Random(seed)
        self.connections: list[tuple[Direction, Direction]] = []  # (up, down) each
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RechunkingRelay:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _handle(self, client: ServerConnection) -> None:
        up, down = Direction(), Direction()
        self.connections.append((up, down))
        async with connect(self.target_url, subprotocols=[SUBPROTOCOL]) as hub:
            await asyncio.gather(self._pump(client, hub, up), self._pump(hub, client, down))

    def _chunk_size(self) -> int:
        return self.rng.choice([1, 2, 3, 5, 8, 13, 40, 300, 5000, 70000])

    async def _pump(self, source: Any, sink: Any, record: Direction) -> None:
        pending = bytearray()
        while True:
            try:
                # Join: keep collecting while more arrives within a few milliseconds.
                message = await asyncio.wait_for(source.recv(), 0.005 if pending else None)
                pending += message
                record.stream += message
                record.received_ends.append(len(record.stream))
            except TimeoutError:
                message = None
            except ConnectionClosed:
                await sink.close()
                return
            while pending:
                size = self._chunk_size()
                if size > len(pending) and message is not None:
                    break  # wait for more to join with
                chunk, pending = bytes(pending[:size]), pending[size:]
                try:
                    await sink.send(chunk)
                except ConnectionClosed:
                    return
                record.sent_ends.append((record.sent_ends or [0])[-1] + len(chunk))


@pytest.mark.parametrize("seed", [1, 2])
def test_frames_split_and_joined_both_ways_by_a_relay(
    ws_hub: LocalHub, make_producer, seed: int
) -> None:
    conn = ws_hub.connection_string("profiles")
    bodies = [f"event-{seed}-{i}-".encode() * (1 + i % 9) for i in range(120)]
    with RechunkingRelay(ws_hub.ws_url, seed) as relay:
        options = ws_options(f"sb://127.0.0.1:{relay.port}")
        send_bodies(make_producer, conn, bodies[:60], **options)
        send_bodies(make_producer, conn, bodies[60:], **options)
        read = read_all(conn, client_options=options)
    assert sorted(e.body for e in read) == sorted(bodies)
    assert sorted(e.body for e in ws_hub.events("profiles")) == sorted(bodies)

    # Per direction: (messages ending inside a frame, messages holding several frame ends)
    # as the relay re-sent them, and the joins in what the hub itself sent.
    totals = {"up": [0, 0], "down": [0, 0], "hub joined": [0, 0]}
    for up, down in relay.connections:
        for name, direction, ends in (
            ("up", up, up.sent_ends),
            ("down", down, down.sent_ends),
            ("hub joined", down, down.received_ends),
        ):
            split, joined = splits_and_joins(ends, frame_ends(bytes(direction.stream)))
            totals[name][0] += split
            totals[name][1] += joined
    # The hub read frames cut anywhere and several in one message, and so did the SDK.
    assert totals["up"][0] > 50 and totals["up"][1] > 5, totals
    assert totals["down"][0] > 50 and totals["down"][1] > 5, totals
    # The hub itself sends a burst of frames (a consumer's transfers) in one message.
    assert totals["hub joined"][1] > 0, totals
