"""Fixtures of the change-tracking tests: a PostgreSQL server per module (started only by
the tests that use it), a fresh database per test, and the store to run against."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.changes.support import PG_PASSWORD, StoreView
from tests.postgres import PostgresServer, find_server_bin
from tests.services import service_missing


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    bin_dir = find_server_bin()
    if bin_dir is None:
        service_missing(
            "PostgreSQL server binaries (initdb, pg_ctl, psql) not found under "
            "/usr/lib/postgresql/*/bin or on PATH"
        )
    with PostgresServer(bin_dir, password=PG_PASSWORD, synchronous_commit=True) as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """A new, empty database on the module's server."""
    name = f"changes_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE DATABASE {name}", database="postgres")
    return pg_server.url_for(name)


def sqlite_store(tmp_path: Path) -> StoreView:
    path = tmp_path / "store" / "changes.sqlite"
    return StoreView(f"sqlite:///{path}", path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreView:
    """The store under test, each kind in turn (the server starts only when needed)."""
    if request.param == "sqlite":
        return sqlite_store(tmp_path)
    return StoreView(request.getfixturevalue("pg_url"))
