"""What a test does when a server or tool it needs is missing: skip on a developer's machine,
fail under CI (the variable ``CI`` set), where scripts/install_test_services.sh installs them.

Only the tests against a real Azure namespace (tests/external, marked ``external``) may skip
under CI; tests/conftest.py turns any other skip into a failure there.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

INSTALL_SCRIPT = "scripts/install_test_services.sh"


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def service_missing(what: str, how: str = f"run {INSTALL_SCRIPT}") -> NoReturn:
    """Skip the test (fail it under CI): ``what`` is missing; ``how`` says how to get it."""
    message = f"{what}: {how}"
    if in_ci():
        pytest.fail(f"{message} (CI is set: a test never skips for a missing service there)")
    pytest.skip(message)


@contextmanager
def source_tree_lock() -> Iterator[None]:
    """Held while a build reads the repository and writes its egg-info there (``python -m
    build``, ``pip install -e`` by Meltano): pytest-xdist's workers take turns."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"target-azure-eventhubs-build-{digest}.lock"
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
