"""Complete snapshots (`snapshot_end`): when the input of a stream is known to be whole, the
memberships it lacks exit. End of input, or an ACTIVATE_VERSION for a version whose records
were received, completes a stream's snapshot; drain first, always."""

from __future__ import annotations

import logging
from collections.abc import Callable

from target_azure_eventhubs.changes.tracker import ChangeTracker
from target_azure_eventhubs.sink import Drained, EventHubSink


class Snapshots:
    def __init__(  # noqa: PLR0917  (what the target lends: its parts, then its steps)
        self,
        tracker: ChangeTracker | None,
        logger: logging.Logger,
        sink_for: Callable[[str], EventHubSink],
        drain: Callable[[], None],
        flush: Callable[[], None],
        send: Callable[[list[Drained]], None],
    ) -> None:
        self.end = tracker.options.snapshot_end if tracker is not None else "none"
        self._tracker = tracker
        self._logger = logger
        self._sink_for = sink_for
        self._drain = drain
        self._flush = flush
        self._send = send
        self._versions: dict[str, set[int]] = {}  # per stream, versions its records carried

    def note_version(self, stream: str, version: int) -> None:
        self._versions.setdefault(stream, set()).add(version)

    def complete(self, stream: str) -> None:
        """Send the exits of the memberships a complete snapshot of `stream` lacks.

        Every event of the snapshot must be accepted, and its decisions committed, before
        the store is compared with the snapshot: drain and flush first.
        """
        assert self._tracker is not None
        self._drain()
        self._flush()
        sink = self._sink_for(stream)
        for batch in self._tracker.exits(stream):
            self._send(
                sink.exit_events([(key, profile, change) for key, profile, _, change in batch])
            )
        self._flush()

    def activate_version(self, version: int, streams: list[str]) -> None:
        """An ACTIVATE_VERSION (the target drained before): closes or opens snapshots."""
        if self.end != "activate_version":
            self._logger.debug("ACTIVATE_VERSION %s: nothing to do", version)
            return
        for stream in streams:
            if version in self._versions.get(stream, set()):
                self._logger.info(
                    "ACTIVATE_VERSION %s: the snapshot of stream '%s' is complete", version, stream
                )
                self.complete(stream)
                self._versions[stream].discard(version)
            else:
                self._logger.info(
                    "ACTIVATE_VERSION %s of stream '%s' opens a snapshot: memberships missing "
                    "from it exit once an ACTIVATE_VERSION closes it",
                    version,
                    stream,
                )
