"""Fixtures shared by every suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from target_azure_eventhubs.localhub import LocalHub


@pytest.fixture
def local_hub() -> Iterator[LocalHub]:
    """A started in-process local Event Hubs (hub ``profiles`` with 4 partitions, free port).

    Use ``local_hub.connection_string()`` (namespace-level) or
    ``local_hub.connection_string("profiles")`` (with EntityPath), ``local_hub.events(...)``
    and ``local_hub.faults`` to inject failures. Stopped after the test.
    """
    with LocalHub(hubs={"profiles": 4}) as hub:
        yield hub


@pytest.fixture
def local_hub_connection_string(local_hub: LocalHub) -> str:
    """Connection string (with ``EntityPath=profiles``) of the ``local_hub`` fixture."""
    return local_hub.connection_string("profiles")
