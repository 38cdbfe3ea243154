"""Link behaviour: producers, consumers and the $cbs/$management request/reply links."""

from __future__ import annotations

import logging
import struct
import time
from collections import deque
from typing import Any

from . import frames as F
from .addresses import Entity, SelectorError, parse_address, start_index
from .auth import LISTEN, SEND
from .codec import Symbol, Timestamp, UInt
from .nodes import handle_cbs, handle_management
from .partitioning import partition_for_key
from .peers import ConnectionView, ServerView, SessionView
from .storage import EventHubStore, PartitionLog

_LOGGER = logging.getLogger("eventhubs_localhub")

PRODUCER_CREDIT = 5000
_TAG = struct.Struct(">I")
_SEQ = Symbol("x-opt-sequence-number")
_OFFSET = Symbol("x-opt-offset")
_ENQUEUED = Symbol("x-opt-enqueued-time")
_KEY = Symbol("x-opt-partition-key")
_EPOCH = Symbol("com.microsoft:epoch")
# A receiver that desires this capability gets, on every delivery, the partition's
# last-enqueued event as delivery annotations (what the SDK calls receiver runtime metrics).
RUNTIME_METRIC = Symbol("com.microsoft:enable-receiver-runtime-metric")
_LAST_SEQ = Symbol("last_enqueued_sequence_number")
_LAST_OFFSET = Symbol("last_enqueued_offset")
_LAST_TIME = Symbol("last_enqueued_time_utc")
_RETRIEVED = Symbol("runtime_info_retrieval_time_utc")

Refusal = tuple[str, str]


class Link:
    """State shared by every link; the hub reuses the client's handle number as its own."""

    right = ""

    def __init__(self, session: SessionView, handle: int, name: str) -> None:
        self.session = session
        self.handle = handle
        self.name = name
        self.detached = False
        self.source: Any = None
        self.target: Any = None
        self.snd_settle_mode: int | None = None
        self.rcv_settle_mode: int | None = None
        self.delivery_count = 0
        self.credit = 0
        self.offered_capabilities: list[Symbol] | None = None

    @property
    def conn(self) -> ConnectionView:
        return self.session.conn

    @property
    def server(self) -> ServerView:
        return self.session.conn.server

    def open(self) -> Refusal | None:
        """Called after the attach reply; a refusal detaches the link with that error."""
        return None

    def on_flow(self, fields: list[Any]) -> None:
        delivery_count = F.field_at(fields, 5)
        link_credit = F.field_at(fields, 6)
        if link_credit is not None:
            base = delivery_count if delivery_count is not None else self.delivery_count
            self.credit = base + link_credit - self.delivery_count
        if F.field_at(fields, 9):  # echo
            self.send_flow()
        self.pump()

    def pump(self) -> None:
        """Send whatever the client has credit for (links where the hub sends)."""

    def on_transfer(self, fields: list[Any], payload: bytes) -> None:
        """A transfer frame from the client (links where the client sends)."""

    def on_closed(self) -> None:
        """The link is gone (detached, session ended or connection lost)."""

    def send_flow(self) -> None:
        self.conn.send(
            self.session.channel,
            F.FLOW,
            [
                *self.session.session_flow_fields(),
                UInt(self.handle),
                UInt(self.delivery_count & 0xFFFFFFFF),
                UInt(max(self.credit, 0)),
                None,
                False,
                False,
                None,
            ],
        )

    def detach(self, condition: str, description: str) -> None:
        if self.detached:
            return
        self.detached = True
        _LOGGER.info(
            "detaching link %r on %s: %s %s", self.name, self.conn.peer, condition, description
        )
        self.conn.send(
            self.session.channel,
            F.DETACH,
            [UInt(self.handle), True, F.error(condition, description)],
        )
        self.on_closed()

    def settle(self, delivery_id: int, state: Any) -> None:
        self.conn.send(
            self.session.channel,
            F.DISPOSITION,
            [True, UInt(delivery_id), UInt(delivery_id), True, state, None],
        )

    def send_delivery(self, payload: bytes) -> None:
        """One pre-settled delivery, split into frames that fit the client's max frame size."""
        session = self.session
        delivery_id = session.next_outgoing_id
        session.next_outgoing_id += 1
        tag = _TAG.pack(self.delivery_count & 0xFFFFFFFF)
        self.delivery_count += 1
        self.credit -= 1
        chunk = max(self.conn.remote_max_frame - 256, 256)
        pos = 0
        while True:
            piece = payload[pos : pos + chunk]
            pos += chunk
            more = pos < len(payload)
            self.conn.send(
                session.channel,
                F.TRANSFER,
                [
                    UInt(self.handle),
                    UInt(delivery_id & 0xFFFFFFFF),
                    tag,
                    UInt(0),
                    True,
                    more,
                    None,
                    None,
                    None,
                    None,
                    None,
                ],
                piece,
            )
            if not more:
                break


class _IncomingLink(Link):
    """A link where the client sends: reassembles multi-frame transfers and grants credit."""

    def __init__(self, session: SessionView, handle: int, name: str) -> None:
        super().__init__(session, handle, name)
        self._chunks: list[bytes] = []
        self._delivery_id = 0
        self._settled = False
        self._format = 0

    def grant_credit(self) -> None:
        self.credit = PRODUCER_CREDIT
        self.send_flow()

    def on_transfer(self, fields: list[Any], payload: bytes) -> None:
        if self.detached:
            return
        if not self._chunks:
            self._delivery_id = fields[1]
            self._settled = bool(F.field_at(fields, 4))
            self._format = F.field_at(fields, 3) or 0
        self._chunks.append(payload)
        if F.field_at(fields, 9):  # aborted
            self._chunks = []
            return
        if F.field_at(fields, 5):  # more
            return
        message = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        self.delivery_count += 1
        self.credit -= 1
        if self.credit < PRODUCER_CREDIT // 2:
            self.credit = PRODUCER_CREDIT
            self.send_flow()
        self.on_message(self._delivery_id, self._format, message, self._settled)

    def on_message(
        self, delivery_id: int, message_format: int, message: bytes, settled: bool
    ) -> None:
        raise NotImplementedError

    def respond(self, delivery_id: int, settled: bool, state: Any) -> None:
        if not settled:
            self.settle(delivery_id, state)


def _not_found(entity_name: str) -> Refusal:
    return ("amqp:not-found", f"The messaging entity '{entity_name}' could not be found.")


def _resolve(
    server: ServerView, address: str
) -> tuple[Entity, EventHubStore, PartitionLog | None] | Refusal:
    entity = parse_address(address)
    if entity is None:
        return _not_found(address)
    hub = server.storage.get(entity.hub)
    if hub is None:
        return _not_found(f"sb://localhub/{entity.hub}")
    log = None
    if entity.partition_id is not None:
        log = hub.partition(entity.partition_id)
        if log is None:
            return _not_found(f"sb://localhub/{entity.path}")
    return entity, hub, log


def _unauthorized(right: str, entity: Entity) -> Refusal:
    return (
        "amqp:unauthorized-access",
        f"Unauthorized access. '{right}' claim(s) are required to perform this operation. "
        f"Resource: 'sb://localhub/{entity.path}'.",
    )


class ProducerLink(_IncomingLink):
    right = SEND

    def __init__(self, session: SessionView, handle: int, name: str, address: str) -> None:
        super().__init__(session, handle, name)
        self.address = address
        self.entity = Entity("")
        self.hub: EventHubStore | None = None
        self.fixed_partition: PartitionLog | None = None

    def open(self) -> Refusal | None:
        resolved = _resolve(self.server, self.address)
        if len(resolved) == 2:
            return resolved
        self.entity, self.hub, self.fixed_partition = resolved
        if self.entity.consumer_group is not None:
            return ("amqp:not-allowed", "Cannot send to a consumer group.")
        if not self.conn.authorized(self.entity, SEND):
            _LOGGER.warning(
                "auth failure on %s: sender on %s has no Send token",
                self.conn.peer,
                self.entity.path,
            )
            return _unauthorized(SEND, self.entity)
        self.grant_credit()
        return None

    def on_message(
        self, delivery_id: int, message_format: int, message: bytes, settled: bool
    ) -> None:
        server = self.server
        assert self.hub is not None
        if len(message) > server.max_message_size:
            _LOGGER.warning(
                "rejecting %d-byte message on %s: over max message size %d",
                len(message),
                self.entity.path,
                server.max_message_size,
            )
            self.respond(
                delivery_id,
                settled,
                F.rejected(
                    "amqp:link:message-size-exceeded",
                    f"The received message (delivery-id:{delivery_id}, "
                    f"size:{len(message)} bytes) exceeds "
                    f"the limit ({server.max_message_size} bytes) currently allowed on the link.",
                ),
            )
            return
        if server.faults.black_holed:
            _LOGGER.warning("black hole: withholding disposition of delivery %d", delivery_id)
            return
        try:
            events, keys = F.split_events(message, message_format == F.BATCH_FORMAT)
        except (ValueError, IndexError, KeyError) as exc:
            self.respond(
                delivery_id, settled, F.rejected("amqp:decode-error", f"Malformed message: {exc}")
            )
            return
        rejection = server.faults.take_rejection(self.hub.name, len(events), len(message))
        if rejection is not None:
            _LOGGER.warning(
                "rejecting delivery %d on %s: %s", delivery_id, self.entity.path, rejection[0]
            )
            server.faults.note_transfer(self.hub.name, message, len(events), rejection[0])
            self.respond(delivery_id, settled, F.rejected(*rejection))
            return
        log = self.fixed_partition
        if log is None:
            key = keys[0] if keys else None
            if key is not None:
                log = self.hub.partitions[partition_for_key(key, len(self.hub.partitions))]
            else:
                log = self.hub.next_round_robin()
        log.append(events, keys)
        server.faults.note_transfer(self.hub.name, message, len(events), "accepted")
        self.respond(delivery_id, settled, F.accepted())


class ConsumerLink(Link):
    right = LISTEN

    def __init__(  # noqa: PLR0917
        self,
        session: SessionView,
        handle: int,
        name: str,
        address: str,
        selector: str | None,
        epoch: Any,
        desired_capabilities: Any = None,
    ) -> None:
        super().__init__(session, handle, name)
        self.address = address
        self.selector = selector
        self.epoch: int | None = int(epoch) if isinstance(epoch, int) else None
        desired = desired_capabilities if isinstance(desired_capabilities, list) else []
        self.runtime_metric = RUNTIME_METRIC in desired or desired_capabilities == RUNTIME_METRIC
        if self.runtime_metric:
            self.offered_capabilities = [RUNTIME_METRIC]
        self.entity = Entity("")
        self.log: PartitionLog | None = None
        self.next_seq = 0
        self._key: tuple[str, str, str] | None = None

    def open(self) -> Refusal | None:
        resolved = _resolve(self.server, self.address)
        if len(resolved) == 2:
            return resolved
        self.entity, _hub, self.log = resolved
        if self.entity.consumer_group is None or self.log is None:
            return (
                "amqp:not-allowed",
                "Receive from <hub>/ConsumerGroups/<group>/Partitions/<id>.",
            )
        if not self.conn.authorized(self.entity, LISTEN):
            _LOGGER.warning(
                "auth failure on %s: receiver on %s has no Listen token",
                self.conn.peer,
                self.entity.path,
            )
            return _unauthorized(LISTEN, self.entity)
        try:
            self.next_seq = start_index(self.selector, self.log)
        except (SelectorError, ValueError) as exc:
            return ("amqp:not-implemented", str(exc))
        refusal = self._claim_ownership()
        if refusal is not None:
            return refusal
        self.log.listeners.append(self.pump)
        return None

    def _claim_ownership(self) -> Refusal | None:
        """Owner level: a higher epoch steals the partition, a lower one is refused."""
        assert self.log is not None and self.entity.consumer_group is not None
        self._key = (
            self.entity.hub.lower(),
            self.entity.consumer_group.lower(),
            self.log.partition_id,
        )
        others = self.server.consumers.setdefault(self._key, [])
        for other in others:
            if other.epoch is not None and (self.epoch is None or other.epoch > self.epoch):
                self._key = None
                return (
                    "amqp:link:stolen",
                    f"Receiver with epoch '{self.epoch}' cannot be created: "
                    "a receiver with a higher "
                    f"epoch '{other.epoch}' already exists on '{self.entity.path}'.",
                )
        if self.epoch is not None:
            for other in list(others):
                if other.epoch is None or other.epoch < self.epoch:
                    other.detach(
                        "amqp:link:stolen",
                        f"New receiver with higher epoch of '{self.epoch}' "
                        "is created hence current "
                        f"receiver with epoch '{other.epoch}' is getting disconnected.",
                    )
        others.append(self)
        return None

    def pump(self) -> None:
        log = self.log
        if log is None or self.detached or self.conn.closed:
            return
        while self.credit > 0 and self.next_seq < len(log.events):
            seq = self.next_seq
            annotations: dict[Any, Any] = {
                _SEQ: seq,
                _OFFSET: str(log.offsets[seq]),
                _ENQUEUED: Timestamp(log.times[seq]),
            }
            key = log.keys[seq]
            if key is not None:
                annotations[_KEY] = key
            metric = None
            if self.runtime_metric:
                metric = {
                    _LAST_SEQ: log.last_sequence_number,
                    _LAST_OFFSET: str(log.offsets[-1]),
                    _LAST_TIME: Timestamp(log.times[-1]),
                    _RETRIEVED: Timestamp(int(time.time() * 1000)),
                }
            self.send_delivery(F.with_annotations(log.events[seq], annotations, metric))
            self.next_seq += 1

    def on_closed(self) -> None:
        self.detached = True
        if self.log is not None and self.pump in self.log.listeners:
            self.log.listeners.remove(self.pump)
        if self._key is not None:
            others = self.server.consumers.get(self._key, [])
            if self in others:
                others.remove(self)


class RequestLink(_IncomingLink):
    """The client's sender on $cbs / $management: each message is a request."""

    def __init__(self, session: SessionView, handle: int, name: str, node: str) -> None:
        super().__init__(session, handle, name)
        self.node = node

    def open(self) -> Refusal | None:
        self.grant_credit()
        return None

    def on_message(
        self, delivery_id: int, message_format: int, message: bytes, settled: bool
    ) -> None:
        request = F.decode_message(message)
        if self.node == "$cbs":
            reply = handle_cbs(self.conn, request)
        else:
            reply = handle_management(self.conn, request)
        self.respond(delivery_id, settled, F.accepted())
        properties = request.get("properties") or []
        reply_to = properties[4] if len(properties) > 4 else None
        candidates = [
            link
            for link in self.session.links.values()
            if isinstance(link, ReplyLink) and link.node == self.node and not link.detached
        ]
        for link in candidates:
            if reply_to is None or link.reply_address == reply_to:
                link.enqueue(reply)
                return
        if candidates:
            candidates[0].enqueue(reply)


class ReplyLink(Link):
    """The client's receiver on $cbs / $management: replies go out here, credit permitting."""

    def __init__(
        self, session: SessionView, handle: int, name: str, node: str, reply_address: str
    ) -> None:
        super().__init__(session, handle, name)
        self.node = node
        self.reply_address = reply_address
        self._queue: deque[bytes] = deque()

    def enqueue(self, payload: bytes) -> None:
        self._queue.append(payload)
        self.pump()

    def pump(self) -> None:
        while self.credit > 0 and self._queue and not self.detached:
            self.send_delivery(self._queue.popleft())
