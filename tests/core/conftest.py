"""Fixtures of the delivery-core suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eventhubs_localhub import LocalHub

from tests.core.support import HUB


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    """A fresh local hub with one event hub of 4 partitions, for one test."""
    with LocalHub(hubs={HUB: 4}) as local:
        yield local
