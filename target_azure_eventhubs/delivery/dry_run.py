"""The delivery interface for `dry_run`: nothing is sent, nothing is connected to.

Events are counted as they would be sent (per stream and per membership status), a few
bodies are kept to show, and checkpoints are released at once: change-tracking decisions
leave the run's memory as if accepted (the tracker does not record them in a dry run), and
the target writes no STATE.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import orjson

from target_azure_eventhubs.delivery.encoding import Outbound
from target_azure_eventhubs.delivery.policy import DeliveryOptions, DeliveryStats
from target_azure_eventhubs.errors import DeliveryError

# Without a connection the hub's limit is unknown: the Standard tier's (and the local
# hub's) 1 MiB, unless max_batch_size_bytes says less.
ASSUMED_MAX_MESSAGE_BYTES = 1024 * 1024


class DryRunDelivery:
    def __init__(
        self,
        options: DeliveryOptions,
        on_released: Callable[[int], None],
        samples: int = 3,
    ) -> None:
        self.options = options
        self.stats = DeliveryStats()
        self.failure: DeliveryError | None = None
        self.samples: list[bytes] = []  # the first bodies, to show
        self.per_stream: dict[str, Counter[str]] = {}  # events and membership statuses
        self._keep = samples
        self._on_released = on_released

    def connect_early(self, hub: str) -> None:
        """Nothing to connect to."""

    def open_hub(self, hub: str) -> None:
        """Nothing to connect to."""

    def limits_ready(self, hub: str) -> bool:
        return True

    def max_event_bytes(self, hub: str) -> int:
        return min(ASSUMED_MAX_MESSAGE_BYTES, self.options.max_batch_size_bytes or 1 << 62)

    def submit(self, hub: str, items: Iterable[tuple[str | None, Outbound]]) -> None:
        for _, out in items:
            counts = self.per_stream.setdefault(str(out.properties.get("stream", "")), Counter())
            counts["events"] += 1
            body = orjson.loads(out.body)
            for memberships in body.get("segmentMembership", {}).values():
                counts.update(entry.get("status") for entry in memberships.values())
            if len(self.samples) < self._keep:
                self.samples.append(out.body)
            self.stats.count_batch(hub, "dry run", 1, len(out.body))

    def checkpoint(self, mark: int) -> None:
        self._on_released(mark)

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def pending_events(self) -> int:
        return 0

    def raise_if_failed(self) -> None:
        """Nothing can fail."""

    def progress(self) -> DeliveryStats:
        return self.stats

    def close(self, timeout: float = 10.0) -> None:
        """Nothing to close."""
