"""AMQP 1.0 over WebSockets, as Event Hubs serves it on port 443 for clients behind firewalls.

The WebSocket side (handshake, framing, masking, close) is the `websockets` library's; this
module only turns a WebSocket into the byte stream a `server.Connection` reads and writes.
Binary messages carry arbitrary slices of the AMQP byte stream: a message may hold part of
a frame or several frames, in both directions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from http import HTTPStatus
from typing import Any

from .addresses import WS_PATH, WS_SUBPROTOCOL
from .server import Connection, HubServer

try:
    from websockets.asyncio.server import Server, ServerConnection, serve
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Request, Response
except ImportError as exc:  # the base install does not include the server library
    raise ImportError(
        "the local hub's WebSocket listener (--ws-port) needs the 'websockets' package: "
        "pip install 'target-azure-eventhubs[websockets]'"
    ) from exc

# A WebSocket message carries at most one client write: a frame of the size we advertise.
_MESSAGE_SLACK = 64 * 1024
_WRITE_LIMIT = 4 * 1024 * 1024
# The library logs every connection at INFO, as the hub does itself: keep only its warnings.
_LIBRARY_LOGGER = logging.getLogger("eventhubs_localhub.websockets")
if _LIBRARY_LOGGER.level == logging.NOTSET:
    _LIBRARY_LOGGER.setLevel(logging.WARNING)


class WebSocketReader:
    """`readexactly` over the binary messages of a WebSocket (what `Connection` reads)."""

    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws
        self._buffer = bytearray()
        self._pos = 0

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) - self._pos < n:
            await self._receive(n)
        start, self._pos = self._pos, self._pos + n
        return bytes(memoryview(self._buffer)[start : self._pos])  # one copy, not two

    async def _receive(self, wanted: int) -> None:
        try:
            message = await self._ws.recv()
        except ConnectionClosed:
            raise asyncio.IncompleteReadError(bytes(self._buffer[self._pos :]), wanted) from None
        if isinstance(message, str):
            raise ConnectionError("a text WebSocket message: AMQPWSB10 carries binary only")
        # Drop what was read already, once per message: linear in the bytes received.
        del self._buffer[: self._pos]
        self._pos = 0
        self._buffer += message


class WebSocketWriter:
    """The `StreamWriter` calls `Connection` makes, sent as binary WebSocket messages.

    `write` only buffers; one task sends everything written since its last send as one
    message, so the AMQP frames of one burst travel together, in order.
    """

    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws
        self._pending = bytearray()
        self._wakeup = asyncio.Event()
        self._sent = asyncio.Event()
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._send_loop())
        self.transport = self  # `Connection` asks its writer's transport for the backlog

    def write(self, data: bytes) -> None:
        if not self._closing:
            self._pending += data
            self._wakeup.set()

    def get_write_buffer_size(self) -> int:
        return len(self._pending) + self._ws.transport.get_write_buffer_size()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._ws.transport.get_extra_info(name, default)

    async def drain(self) -> None:
        while self._pending and not self._task.done():
            self._sent.clear()
            await self._sent.wait()

    def close(self) -> None:
        """Send what is buffered (an AMQP close, typically), then close the WebSocket."""
        self._closing = True
        self._wakeup.set()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _send_loop(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                if self._pending:
                    message, self._pending = bytes(self._pending), bytearray()
                    await self._ws.send(message)
                    self._sent.set()
                if self._closing and not self._pending:
                    break
        except ConnectionClosed:
            pass
        finally:
            self._sent.set()
            self._pending.clear()
            await self._ws.close()


def _check_request(_ws: ServerConnection, request: Request) -> Response | None:
    """Only Event Hubs' WebSocket path is served; anything else gets a 404."""
    if request.path.split("?", 1)[0] == WS_PATH:
        return None
    body = f"Event Hubs serves AMQP over WebSockets at {WS_PATH}\n".encode()
    headers = Headers({"Content-Type": "text/plain", "Content-Length": str(len(body))})
    return Response(HTTPStatus.NOT_FOUND, "Not Found", headers, body)


async def listen_websocket(
    server: HubServer, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> int:
    """Serve AMQP over WebSockets for `server` on `host:port`; return the bound port."""

    async def handle(ws: ServerConnection) -> None:
        writer = WebSocketWriter(ws)
        conn = Connection(server, WebSocketReader(ws), writer, transport="websocket")
        server.connections.add(conn)
        # Cancelled when the hub stops: end quietly, as a TCP connection does.
        with contextlib.suppress(asyncio.CancelledError):
            await conn.run()
            await writer.wait_closed()

    listener: Server = await serve(
        handle,
        host,
        port,
        ssl=ssl_context,
        subprotocols=[WS_SUBPROTOCOL],  # type: ignore[list-item]
        process_request=_check_request,
        compression=None,  # the SDK does not offer it; AMQP payloads are often compressed
        ping_interval=None,  # AMQP has its own heartbeats; an idle SDK client reads nothing
        max_size=server.max_frame_size + _MESSAGE_SLACK,
        write_limit=_WRITE_LIMIT,
        logger=_LIBRARY_LOGGER,
    )
    server.add_listener(listener)
    return int(listener.sockets[0].getsockname()[1])
