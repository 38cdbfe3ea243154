"""The asyncio AMQP 1.0 server: connections, sessions and links.

One :class:`Connection` per TCP (or TLS) socket. Sessions map channels to links. Links are
``ProducerLink`` (the client sends events), ``ConsumerLink`` (we send events), or the
request/reply pairs of the ``$cbs`` and ``$management`` nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import time
from typing import Any, Protocol

from . import frames as F
from .addresses import Entity, SelectorError
from .auth import LISTEN, SEND, Authorizer, Grant
from .codec import Symbol, SymbolArray, UByte, UInt, ULong, UShort
from .faults import Faults
from .links import ConsumerLink, Link, ProducerLink, ReplyLink, RequestLink
from .peers import Owner
from .storage import Storage

_LOGGER = logging.getLogger("eventhubs_localhub")
_FRAME_HEADER = struct.Struct(">IBBH")

# Our own max frame size: large, so a 1 MB batch usually arrives in one frame.
MAX_FRAME_SIZE = 4 * 1024 * 1024
SESSION_WINDOW = 2**31 - 1
TOKEN_CHECK_INTERVAL = 0.2


class ByteReader(Protocol):
    """What a connection reads from: a TCP stream, or the messages of a WebSocket."""

    async def readexactly(self, n: int) -> bytes: ...


class ByteWriter(Protocol):
    """What a connection writes to (`asyncio.StreamWriter`, or `ws.WebSocketWriter`)."""

    @property
    def transport(self) -> Any: ...  # its get_write_buffer_size() is the backlog

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class Session:
    def __init__(self, conn: Connection, channel: int) -> None:
        self.conn = conn
        self.channel = channel
        self.links: dict[int, Link] = {}  # by the client's handle (we reuse it as ours)
        self.next_incoming_id = 0
        self.next_outgoing_id = 0

    def session_flow_fields(self) -> list[Any]:
        return [
            UInt(self.next_incoming_id & 0xFFFFFFFF),
            UInt(SESSION_WINDOW),
            UInt(self.next_outgoing_id & 0xFFFFFFFF),
            UInt(SESSION_WINDOW),
        ]


class Connection:
    def __init__(
        self, server: HubServer, reader: ByteReader, writer: ByteWriter, transport: str = "tcp"
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.transport = transport
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.sessions: dict[int, Session] = {}
        self.grants: list[Grant] = []
        self.remote_max_frame = 512
        self.closed = False
        self._tasks: list[asyncio.Task[None]] = []

    # ---- output

    def send(self, channel: int, descriptor: int, fields: list[Any], payload: bytes = b"") -> None:
        if self.closed:
            return
        self.writer.write(F.encode_frame(channel, descriptor, fields, payload))

    # ---- auth

    def add_grant(self, grant: Grant) -> None:
        # A refreshed token for the same audience replaces the old one.
        self.grants = [g for g in self.grants if g.path != grant.path] + [grant]

    def authorized(self, entity: Entity, right: str) -> bool:
        now = time.time()
        return any(g.covers(entity.path, right, now) for g in self.grants)

    def management_allowed(self, hub: str, security_token: str | None) -> bool:
        now = time.time()
        hub_path = hub.lower()
        if any(g.expires_at > now and g.path in (hub_path, "") for g in self.grants):
            return True
        if security_token:
            for token_type in ("servicebus.windows.net:sastoken", "jwt"):
                try:
                    self.server.authorizer.validate(security_token, token_type, hub)
                    return True
                except Exception:
                    continue
        return False

    # ---- lifecycle

    async def run(self) -> None:
        _LOGGER.info("connection opened from %s over %s", self.peer, self.transport)
        self._tasks.append(asyncio.create_task(self._watch_tokens()))
        try:
            await self._handshake()
            while not self.closed:
                head = await self.reader.readexactly(8)
                size, doff, frame_type, channel = _FRAME_HEADER.unpack(head)
                body = await self.reader.readexactly(size - 8) if size > 8 else b""
                if doff > 2:
                    body = body[(doff - 2) * 4 :]
                frame = F.decode_frame_body(channel, frame_type, body)
                if frame.descriptor is not None:
                    self._dispatch(frame)
                    if self.writer.transport.get_write_buffer_size() > 4 * 1024 * 1024:
                        await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        except Exception as exc:  # malformed input must not kill the server
            _LOGGER.exception("connection %s failed: %s", self.peer, exc)
            self.close_with_error("amqp:internal-error", str(exc))
        finally:
            self._teardown()

    async def _handshake(self) -> None:
        header = await self.reader.readexactly(8)
        if header == F.SASL_HEADER:
            self.writer.write(F.SASL_HEADER)
            self.writer.write(
                F.encode_frame(
                    0, F.SASL_MECHANISMS, [SymbolArray(["ANONYMOUS"])], frame_type=F.FRAME_SASL
                )
            )
            head = await self.reader.readexactly(8)
            size = _FRAME_HEADER.unpack(head)[0]
            await self.reader.readexactly(size - 8)  # sasl-init: ANONYMOUS carries nothing we need
            self.writer.write(
                F.encode_frame(0, F.SASL_OUTCOME, [UByte(0), None], frame_type=F.FRAME_SASL)
            )
            header = await self.reader.readexactly(8)
        if header != F.AMQP_HEADER:
            self.writer.write(F.AMQP_HEADER)
            raise ConnectionError(f"unsupported protocol header {header!r}")
        self.writer.write(F.AMQP_HEADER)

    def _teardown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for session in self.sessions.values():
            for link in session.links.values():
                link.on_closed()
        self.sessions.clear()
        self.closed = True
        self.server.connections.discard(self)
        with contextlib.suppress(Exception):
            self.writer.close()
        _LOGGER.info("connection closed from %s over %s", self.peer, self.transport)

    def close_with_error(self, condition: str, description: str) -> None:
        if self.closed:
            return
        self.send(0, F.CLOSE, [F.error(condition, description)])
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()

    async def _watch_tokens(self) -> None:
        """Detach links whose token has expired (and was not refreshed)."""
        while True:
            await asyncio.sleep(TOKEN_CHECK_INTERVAL)
            for session in list(self.sessions.values()):
                for link in list(session.links.values()):
                    if (
                        isinstance(link, (ProducerLink, ConsumerLink))
                        and not link.detached
                        and not self.authorized(link.entity, link.right)
                    ):
                        _LOGGER.warning(
                            "auth failure on %s: token for %s expired; detaching link",
                            self.peer,
                            link.entity.path,
                        )
                        link.detach("amqp:unauthorized-access", "The token has expired.")

    # ---- dispatch

    def _dispatch(self, frame: F.Frame) -> None:
        d = frame.descriptor
        if d == F.TRANSFER:
            self._on_transfer(frame)
        elif d == F.FLOW:
            self._on_flow(frame)
        elif d == F.DISPOSITION:
            pass  # we send pre-settled; client dispositions need no action
        elif d == F.OPEN:
            self._on_open(frame)
        elif d == F.BEGIN:
            self._on_begin(frame)
        elif d == F.ATTACH:
            self._on_attach(frame)
        elif d == F.DETACH:
            self._on_detach(frame)
        elif d == F.END:
            self._on_end(frame)
        elif d == F.CLOSE:
            self.send(0, F.CLOSE, [None])
            self.closed = True

    def _on_open(self, frame: F.Frame) -> None:
        self.remote_max_frame = F.field_at(frame.fields, 2) or 2**32 - 1
        idle = F.field_at(frame.fields, 4)
        self.send(
            0,
            F.OPEN,
            [
                self.server.container_id,
                None,
                UInt(self.server.max_frame_size),
                UShort(65535),
                None,
                None,
                None,
                None,
                None,
                None,
            ],
        )
        if idle:
            self._tasks.append(asyncio.create_task(self._heartbeat(idle / 2000)))

    async def _heartbeat(self, interval: float) -> None:
        while not self.closed:
            await asyncio.sleep(interval)
            self.writer.write(F.HEARTBEAT)

    def _on_begin(self, frame: F.Frame) -> None:
        session = Session(self, frame.channel)
        session.next_incoming_id = F.field_at(frame.fields, 1) or 0
        self.sessions[frame.channel] = session
        self.send(
            frame.channel,
            F.BEGIN,
            [
                UShort(frame.channel),
                UInt(0),
                UInt(SESSION_WINDOW),
                UInt(SESSION_WINDOW),
                UInt(2**32 - 1),
                None,
                None,
                None,
            ],
        )

    def _on_end(self, frame: F.Frame) -> None:
        session = self.sessions.pop(frame.channel, None)
        if session is not None:
            for link in session.links.values():
                link.on_closed()
        self.send(frame.channel, F.END, [None])

    def _on_attach(self, frame: F.Frame) -> None:
        session = self.sessions[frame.channel]
        f = frame.fields
        name, handle, client_is_receiver = f[0], f[1], bool(f[2])
        source = F.field_at(f, 5)
        target = F.field_at(f, 6)
        source_fields = source.value if source is not None else []
        target_fields = target.value if target is not None else []
        source_address = F.field_at(source_fields, 0) or ""
        target_address = F.field_at(target_fields, 0) or ""
        properties = F.field_at(f, 13) or {}
        link: Link
        if client_is_receiver:
            filters = F.field_at(source_fields, 7) or {}
            node = str(source_address)
            if node in ("$cbs", "$management"):
                link = ReplyLink(session, handle, name, node, str(target_address))
            else:
                selector = None
                for value in filters.values():
                    if hasattr(value, "value") and isinstance(value.value, str):
                        selector = value.value
                epoch = properties.get(
                    Symbol("com.microsoft:epoch"), properties.get("com.microsoft:epoch")
                )
                link = ConsumerLink(
                    session, handle, name, str(source_address), selector, epoch, F.field_at(f, 12)
                )
            link.source = F.described_list(
                F.SOURCE, [source_address, None, None, None, None, None, None, filters or None]
            )
            link.target = F.described_list(F.TARGET, [target_address])
        else:
            node = str(target_address)
            if node in ("$cbs", "$management"):
                link = RequestLink(session, handle, name, node)
            else:
                link = ProducerLink(session, handle, name, node)
            link.source = F.described_list(F.SOURCE, [source_address])
            link.target = F.described_list(F.TARGET, [target_address])
            link.delivery_count = F.field_at(f, 9) or 0
        link.snd_settle_mode = F.field_at(f, 3)
        link.rcv_settle_mode = F.field_at(f, 4)
        session.links[handle] = link
        self._reply_attach(link)
        refusal = link.open()
        if refusal is not None:
            link.detach(*refusal)

    def _reply_attach(self, link: Link) -> None:
        we_send = isinstance(link, (ConsumerLink, ReplyLink))
        self.send(
            link.session.channel,
            F.ATTACH,
            [
                link.name,
                UInt(link.handle),
                not we_send,  # role: True = receiver
                UByte(link.snd_settle_mode) if link.snd_settle_mode is not None else None,
                UByte(link.rcv_settle_mode) if link.rcv_settle_mode is not None else None,
                link.source,
                link.target,
                None,
                False,
                UInt(0) if we_send else None,
                ULong(self.server.max_message_size),
                SymbolArray(link.offered_capabilities) if link.offered_capabilities else None,
                None,
                None,
            ],
        )

    def _on_detach(self, frame: F.Frame) -> None:
        session = self.sessions.get(frame.channel)
        if session is None:
            return
        handle = frame.fields[0]
        link = session.links.pop(handle, None)
        if link is None:
            return
        if not link.detached:
            self.send(frame.channel, F.DETACH, [UInt(handle), True, None])
        link.on_closed()

    def _on_flow(self, frame: F.Frame) -> None:
        session = self.sessions.get(frame.channel)
        handle = F.field_at(frame.fields, 4)
        if session is None or handle is None:
            return
        link = session.links.get(handle)
        if link is not None:
            link.on_flow(frame.fields)

    def _on_transfer(self, frame: F.Frame) -> None:
        session = self.sessions[frame.channel]
        link = session.links.get(frame.fields[0])
        delivery_id = F.field_at(frame.fields, 1)
        if delivery_id is not None:
            session.next_incoming_id = delivery_id + 1
        if link is not None:
            link.on_transfer(frame.fields, frame.payload)


class Listener(Protocol):
    """A listening server: `asyncio.Server`, or the `websockets` library's."""

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class HubServer:
    """Owns the listeners, the storage and every connection."""

    def __init__(
        self,
        storage: Storage,
        authorizer: Authorizer,
        faults: Faults,
        max_message_size: int = 1024 * 1024,
        *,
        container_id: str = "localhub",
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        self.max_frame_size = max_frame_size
        self.storage = storage
        self.authorizer = authorizer
        self.faults = faults
        self.max_message_size = max_message_size
        self.container_id = container_id
        self.connections: set[Connection] = set()
        self.consumers: dict[tuple[str, str, str], list[Owner]] = {}
        self._servers: list[Listener] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        faults.add_action_listener(self._on_fault_action)

    async def listen(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> int:
        """Start a listener; return its bound port."""
        self._loop = asyncio.get_running_loop()
        server = await asyncio.start_server(self._accept, host, port, ssl=ssl_context, limit=2**22)
        self.add_listener(server)
        return int(server.sockets[0].getsockname()[1])

    def add_listener(self, listener: Listener) -> None:
        """Track a listener (TCP here, WebSocket in `ws`), closed with the hub."""
        self._loop = asyncio.get_running_loop()
        self._servers.append(listener)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self, reader, writer)
        self.connections.add(conn)
        # Cancelled when the hub stops: end quietly, or asyncio logs the cancellation as an
        # error when the stream protocol inspects this task.
        with contextlib.suppress(asyncio.CancelledError):
            await conn.run()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.close_with_error("amqp:connection:forced", "The local hub is shutting down.")
        for server in self._servers:
            await server.wait_closed()
        self.storage.close()

    def _on_fault_action(self, action: str) -> None:
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._apply_fault_action, action)

    def _apply_fault_action(self, action: str) -> None:
        if action == "detach_links":
            _LOGGER.warning("fault injection: detaching every producer/consumer link")
            for conn in list(self.connections):
                for session in list(conn.sessions.values()):
                    for link in list(session.links.values()):
                        if isinstance(link, (ProducerLink, ConsumerLink)):
                            link.detach(
                                "amqp:link:detach-forced", "Link detached by fault injection."
                            )
        elif action == "close_connections":
            _LOGGER.warning("fault injection: closing every connection")
            for conn in list(self.connections):
                conn.close_with_error(
                    "amqp:connection:forced", "Connection closed by fault injection."
                )


__all__ = ["LISTEN", "SEND", "Connection", "HubServer", "SelectorError", "Session"]
