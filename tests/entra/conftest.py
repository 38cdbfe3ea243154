from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.entra.support import EntraHub, clean_environment, start_entra_hub


@pytest.fixture(scope="module")
def entra_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraHub]:
    yield from start_entra_hub(Path(tmp_path_factory.mktemp("entra")))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)
