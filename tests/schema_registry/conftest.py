from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.entra.support import clean_environment
from tests.schema_registry.support import RegistryHub, start_registry_hub


@pytest.fixture(scope="module")
def registry_hub() -> Iterator[RegistryHub]:
    yield from start_registry_hub()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)
