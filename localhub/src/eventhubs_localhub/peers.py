"""What links and the `$cbs` / `$management` nodes see of their session, connection and
server. The server's classes satisfy these protocols; links and nodes depend on them only,
so the server can import the links without an import circle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .addresses import Entity
from .auth import Authorizer, Grant
from .faults import Faults
from .storage import Storage


class Owner(Protocol):
    """A consumer link holding a partition, as other consumers of it see it (epochs)."""

    @property
    def epoch(self) -> int | None: ...

    def detach(self, condition: str, description: str) -> None: ...


class ServerView(Protocol):
    @property
    def storage(self) -> Storage: ...

    @property
    def authorizer(self) -> Authorizer: ...

    @property
    def faults(self) -> Faults: ...

    @property
    def max_message_size(self) -> int: ...

    @property
    def consumers(self) -> dict[tuple[str, str, str], list[Owner]]:
        """Receivers per (hub, consumer group, partition), lower-cased."""


class ConnectionView(Protocol):
    @property
    def server(self) -> ServerView: ...

    @property
    def peer(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    @property
    def remote_max_frame(self) -> int: ...

    def send(self, channel: int, descriptor: int, fields: list[Any], payload: bytes = b"") -> None:
        """Write one frame (dropped once the connection is closed)."""

    def authorized(self, entity: Entity, right: str) -> bool: ...

    def add_grant(self, grant: Grant) -> None: ...

    def management_allowed(self, hub: str, security_token: str | None) -> bool: ...


class SessionView(Protocol):
    next_outgoing_id: int  # links number their deliveries

    @property
    def conn(self) -> ConnectionView: ...

    @property
    def channel(self) -> int: ...

    @property
    def links(self) -> Mapping[int, object]: ...

    def session_flow_fields(self) -> list[Any]: ...
