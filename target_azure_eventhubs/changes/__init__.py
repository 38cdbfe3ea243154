"""Change tracking: derive realized / existing / exited from what was delivered before,
and send only what changed. `diff` holds the rules (pure), `store` and its SQLite and
PostgreSQL implementations what was delivered, `tracker` the decisions of one run."""

from __future__ import annotations

import logging

from target_azure_eventhubs.changes.postgres import PostgresStore
from target_azure_eventhubs.changes.sqlite import SQLiteStore
from target_azure_eventhubs.changes.store import ChangeStore, safe_location
from target_azure_eventhubs.changes.tracker import ChangeTracker, Options
from target_azure_eventhubs.errors import ConfigurationError


def open_store(url: str, *, read_only: bool = False) -> ChangeStore:
    """The store at `url`, opened (created on first use, unless `read_only`)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return SQLiteStore(url, read_only=read_only)
    if scheme in {"postgresql", "postgres"}:
        return PostgresStore(url, read_only=read_only)
    raise ConfigurationError(
        f"change_store must be sqlite:///PATH or postgresql://..., not {safe_location(url)!r}"
    )


def open_tracker(url: str, options: Options, logger: logging.Logger) -> ChangeTracker:
    """The run's change tracker, on the store at `url` (its location logged)."""
    store = open_store(url, read_only=not options.record)
    logger.info(
        "Change tracking: store %s%s, snapshot_end %s%s",
        store.location,
        " (created: every profile is new in this run)" if store.created else "",
        options.snapshot_end,
        "" if options.record else " (dry run: read only)",
    )
    if options.baseline:
        logger.warning(
            "change_tracking_baseline is on: this run records the input in the change store "
            "and sends nothing; turn it off for the next run"
        )
    return ChangeTracker(store, options, logger)
