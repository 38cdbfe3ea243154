"""Fault injection state, set from tests (any thread) and read by the server's event loop.

Setters take a lock and, for one-shot actions (detach links, close connections), schedule
the action on the server loop through registered callbacks.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

SERVER_BUSY = "com.microsoft:server-busy"
SERVER_BUSY_DESCRIPTION = (
    "The request was terminated because the entity is being throttled. Error code : 50002. "
    "Please wait 4 seconds and try again."
)


@dataclass(frozen=True)
class Transfer:
    """One transfer the hub answered: when, to which hub, its outcome, and a digest of its
    payload (a resend of the same batch has the same digest)."""

    at: float  # time.monotonic() of the hub's process
    hub: str
    digest: str
    events: int
    outcome: str  # "accepted", or the condition it was rejected with
    size: int = 0  # the payload's bytes, what a byte-rate throttle counts


_JOURNAL_SIZE = 100_000


@dataclass
class _Bucket:
    rate: float  # events or bytes per second; it holds one second of them
    tokens: float
    updated: float

    def allows(self, amount: int, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        # A transfer larger than a second's worth goes through a full bucket, into debt.
        return self.tokens >= amount or (amount > self.rate and self.tokens >= self.rate)


class Faults:
    """Thread-safe switches; all off by default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reject_count = 0
        self._reject_condition = SERVER_BUSY
        self._reject_description = SERVER_BUSY_DESCRIPTION
        self._throttles: dict[str | None, list[tuple[_Bucket, bool]]] = {}  # (bucket, bytes?)
        self._black_hole = False
        self._refuse_tokens = False
        self._token_lifetime: float | None = None
        self._actions: list[Callable[[str], None]] = []
        self._journal: deque[Transfer] = deque(maxlen=_JOURNAL_SIZE)

    # ---- setters (tests)

    def reject_next(
        self, n: int = 1, condition: str = SERVER_BUSY, description: str | None = None
    ) -> None:
        """Reject the next ``n`` transfers with ``condition`` (server-busy by default)."""
        with self._lock:
            self._reject_count = n
            self._reject_condition = condition
            self._reject_description = description or (
                SERVER_BUSY_DESCRIPTION
                if condition == SERVER_BUSY
                else f"Injected fault: {condition}"
            )

    def throttle(
        self,
        events_per_second: float | None,
        hub: str | None = None,
        bytes_per_second: float | None = None,
    ) -> None:
        """Answer server-busy above ``events_per_second`` and/or ``bytes_per_second`` (of
        transfer payloads), per hub or over all hubs; both None: off.

        1 throughput unit = 1000 events/s or 1 MB/s. A bucket holds one second of its rate.
        """
        with self._lock:
            key = hub.lower() if hub else None
            now = time.monotonic()
            rates = ((events_per_second, False), (bytes_per_second, True))
            buckets = [(_Bucket(rate, rate, now), size) for rate, size in rates if rate]
            if buckets:
                self._throttles[key] = buckets
            else:
                self._throttles.pop(key, None)

    def black_hole(self, enabled: bool = True) -> None:
        """Withhold dispositions: transfers are neither stored nor settled."""
        with self._lock:
            self._black_hole = enabled

    def refuse_tokens(self, enabled: bool = True) -> None:
        """Answer every CBS put-token with 401."""
        with self._lock:
            self._refuse_tokens = enabled

    def token_lifetime(self, seconds: float | None) -> None:
        """Accepted tokens expire after ``seconds`` whatever their ``se``; None: off."""
        with self._lock:
            self._token_lifetime = seconds

    def detach_links(self) -> None:
        """Detach every producer/consumer link now (amqp:link:detach-forced)."""
        self._run("detach_links")

    def close_connections(self) -> None:
        """Close every client connection now (amqp:connection:forced)."""
        self._run("close_connections")

    def reset(self) -> None:
        with self._lock:
            self._reject_count = 0
            self._throttles.clear()
            self._black_hole = False
            self._refuse_tokens = False
            self._token_lifetime = None

    def transfers(self) -> list[Transfer]:
        """The transfers answered so far (the latest 100,000), oldest first."""
        with self._lock:
            return list(self._journal)

    def note_transfer(self, hub: str, payload: bytes, events: int, outcome: str) -> None:
        """Journal a transfer's outcome (server loop)."""
        digest = hashlib.sha256(payload).hexdigest()[:16]
        entry = Transfer(time.monotonic(), hub, digest, events, outcome, len(payload))
        with self._lock:
            self._journal.append(entry)

    # ---- queries (server loop)

    def take_rejection(self, hub: str, events: int, size: int = 0) -> tuple[str, str] | None:
        """The (condition, description) to reject this transfer (``events`` events in
        ``size`` bytes) with, if any."""
        with self._lock:
            if self._reject_count > 0:
                self._reject_count -= 1
                return self._reject_condition, self._reject_description
            now = time.monotonic()
            for key in (hub.lower(), None):
                buckets = self._throttles.get(key, [])
                if not all(b.allows(size if by_size else events, now) for b, by_size in buckets):
                    return SERVER_BUSY, SERVER_BUSY_DESCRIPTION
                for bucket, by_size in buckets:
                    bucket.tokens -= size if by_size else events
        return None

    @property
    def black_holed(self) -> bool:
        with self._lock:
            return self._black_hole

    @property
    def tokens_refused(self) -> bool:
        with self._lock:
            return self._refuse_tokens

    @property
    def forced_token_lifetime(self) -> float | None:
        with self._lock:
            return self._token_lifetime

    # ---- wiring

    def add_action_listener(self, listener: Callable[[str], None]) -> None:
        with self._lock:
            self._actions.append(listener)

    def _run(self, action: str) -> None:
        with self._lock:
            listeners = list(self._actions)
        for listener in listeners:
            listener(action)
