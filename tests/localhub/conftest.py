"""Fixtures for the local hub's own suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.eventhub import EventHubConsumerClient, EventHubProducerClient
from eventhubs_localhub import LocalHub

# Short SDK timeouts so failure tests fail fast.
FAST_FAIL: dict[str, Any] = {"retry_total": 0, "retry_backoff_factor": 0.01}


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    """An in-process hub with ``profiles`` (4 partitions) and ``orders`` (2)."""
    with LocalHub(hubs={"profiles": 4, "orders": 2}) as running:
        yield running


@pytest.fixture
def producer(hub: LocalHub) -> Iterator[EventHubProducerClient]:
    client = EventHubProducerClient.from_connection_string(hub.connection_string("profiles"))
    with client:
        yield client


@pytest.fixture
def make_producer() -> Iterator[Callable[..., EventHubProducerClient]]:
    """Factory for producers closed at teardown: make_producer(conn_str, **kwargs)."""
    clients: list[EventHubProducerClient] = []

    def make(conn_str: str, **kwargs: Any) -> EventHubProducerClient:
        client = EventHubProducerClient.from_connection_string(conn_str, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def make_consumer() -> Iterator[Callable[..., EventHubConsumerClient]]:
    clients: list[EventHubConsumerClient] = []

    def make(conn_str: str, **kwargs: Any) -> EventHubConsumerClient:
        kwargs.setdefault("consumer_group", "$Default")
        client = EventHubConsumerClient.from_connection_string(conn_str, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
