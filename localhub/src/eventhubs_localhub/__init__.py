"""A local Event Hubs-compatible AMQP 1.0 server for tests and development.

The official ``azure-eventhub`` SDK produces to and consumes from it unmodified, using a
connection string with ``UseDevelopmentEmulator=true`` (see :meth:`LocalHub.connection_string`).
"""

from .auth import DEFAULT_KEY, DEFAULT_KEY_NAME, LISTEN, MANAGE, SEND, Policy
from .faults import SERVER_BUSY, SERVER_BUSY_DESCRIPTION, Faults
from .hub import LocalHub, LocalHubProcess, StoredEvent

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_KEY_NAME",
    "LISTEN",
    "MANAGE",
    "SEND",
    "SERVER_BUSY",
    "SERVER_BUSY_DESCRIPTION",
    "Faults",
    "LocalHub",
    "LocalHubProcess",
    "Policy",
    "StoredEvent",
]
