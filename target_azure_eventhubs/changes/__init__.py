"""Change tracking: derive realized / existing / exited from what was delivered before,
and send only what changed. `diff` holds the rules (pure), `store` and its SQLite and
PostgreSQL implementations what was delivered, `tracker` the decisions of one run."""

from __future__ import annotations

from target_azure_eventhubs.changes.postgres import PostgresStore
from target_azure_eventhubs.changes.sqlite import SQLiteStore
from target_azure_eventhubs.changes.store import ChangeStore, safe_location
from target_azure_eventhubs.errors import ConfigurationError


def open_store(url: str) -> ChangeStore:
    """The store at `url`, opened (created on first use)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return SQLiteStore(url)
    if scheme in {"postgresql", "postgres"}:
        return PostgresStore(url)
    raise ConfigurationError(
        f"change_store must be sqlite:///PATH or postgresql://..., not {safe_location(url)!r}"
    )
