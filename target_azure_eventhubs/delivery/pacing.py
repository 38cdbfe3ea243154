"""Pacing sends to a throughput budget: a token bucket shared by every sender of a namespace.

Event Hubs sells ingress in throughput units (Standard tier: 1 MB/s or 1000 events/s per
unit, whichever comes first); above them it answers server-busy and asks the publisher to
wait 4 s. A `Pacer` holds each batch back until the budget allows it instead, so a run
keeps to the budget steadily and never meets that wait.

- One `Pacer` per `Delivery`, which sends to one namespace: the sender threads of every
  partition and every hub draw from it (the service counts per namespace).
- Two buckets, events and bytes; a batch goes when both allow it. Bytes are the batch's
  size as the SDK counts it: the batch envelope and every event, properties included.
- Each bucket holds `BURST_SECONDS` of its rate and starts full. Batches are cut to that
  size (`cut`), so a send is never more than that share of a second of budget: sends that
  reach the service late, after later ones, still fit in its one-second allowance. An
  event larger than the bucket on its own still goes once the bucket is full, and the
  bucket goes into debt for it, which the following sends wait off.
- A send takes its share when it asks (the bucket may go negative) and waits until the
  bucket, before its share, held it: sends go in the order they asked, so a large batch is
  not held back by small ones that keep taking the few tokens that accrue.
- So by any time t the sends released total at most rate * t + the larger of the
  bucket and the largest send, and while sends are waiting the budget is used in full.

Without a budget there is no `Pacer` at all: the senders' path is the unpaced one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from target_azure_eventhubs.errors import ConfigurationError, DeliveryError

EVENTS_PER_UNIT = 1000  # events/s per throughput unit, Standard tier
BYTES_PER_UNIT = 1_000_000  # 1 MB/s per unit, read as 10^6 bytes: within either reading
BURST_SECONDS = 0.25  # what a bucket holds, in seconds of its rate
_SLACK = 1e-9  # relative: float rounding must not make a waiter wait a few ns more


@dataclass(frozen=True)
class Pace:
    """A throughput budget; None in a dimension leaves it unlimited."""

    events_per_second: float | None = None
    bytes_per_second: float | None = None

    def describe(self) -> str:
        parts = []
        if self.events_per_second is not None:
            parts.append(f"{self.events_per_second:,.0f} events/s")
        if self.bytes_per_second is not None:
            parts.append(f"{self.bytes_per_second:,.0f} bytes/s")
        return " and ".join(parts)


def pace_from_config(config: Mapping[str, Any]) -> Pace | None:
    """The budget the settings ask for, None without one.

    `throughput_units` sets both rates; `max_events_per_second` and `max_bytes_per_second`
    set one each, alone or to keep below the units' figures (sharing the namespace with
    other publishers). Above the units' figures they contradict them: ConfigurationError.
    """
    units = _positive(config, "throughput_units")
    events = _positive(config, "max_events_per_second")
    size = _positive(config, "max_bytes_per_second")
    if units is not None:
        for name, value, per_unit, unit in (
            ("max_events_per_second", events, EVENTS_PER_UNIT, "events/s"),
            ("max_bytes_per_second", size, BYTES_PER_UNIT, "bytes/s"),
        ):
            if value is not None and value > units * per_unit:
                raise ConfigurationError(
                    f"{name} {value:g} is above what throughput_units {units:g} allows "
                    f"({units * per_unit:g} {unit}): lower it or leave it out"
                )
        events = units * EVENTS_PER_UNIT if events is None else events
        size = units * BYTES_PER_UNIT if size is None else size
    if events is None and size is None:
        return None
    return Pace(events, size)


def _positive(config: Mapping[str, Any], name: str) -> float | None:
    value = config.get(name)
    if value is None:
        return None
    # The target reads its config's numbers as Decimal.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not value > 0:
        raise ConfigurationError(f"{name} must be a number above 0, not {value!r}")
    return float(value)


class TokenBucket:
    """Tokens accrue at `rate` up to `capacity`. An amount is taken at once, and may go
    when the bucket, before it was taken, would have held it, or been full for an amount
    larger than that. Not thread-safe: `Pacer` locks around it."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def reserve(self, amount: float, now: float) -> float:
        """Take `amount`; the seconds from `now` until it may go (0.0: at once)."""
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        missing = min(amount, self.capacity) - self.tokens
        self.tokens -= amount
        return missing / self.rate if missing > self.capacity * _SLACK else 0.0


class _Sized(Protocol):
    size: int


_Out = TypeVar("_Out", bound=_Sized)


class Pacer:
    """The namespace's budget, shared by its sender threads."""

    def __init__(self, pace: Pace, clock: Callable[[], float] = time.monotonic) -> None:
        self.pace = pace
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self.events: TokenBucket | None = None
        self.bytes: TokenBucket | None = None
        if pace.events_per_second is not None:
            rate = pace.events_per_second
            self.events = TokenBucket(rate, rate * BURST_SECONDS, now)
        if pace.bytes_per_second is not None:
            rate = pace.bytes_per_second
            self.bytes = TokenBucket(rate, rate * BURST_SECONDS, now)
        # How far a batch is cut: what a full bucket allows, one event at least.
        self.max_events = max(1, int(self.events.capacity)) if self.events else None
        self.max_bytes = self.bytes.capacity if self.bytes else None

    def reserve(self, events: int, size: int) -> float:
        """Take the budget for a send of `events` events and `size` bytes; the seconds
        until the send may go."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            if self.events is not None:
                wait = self.events.reserve(events, now)
            if self.bytes is not None:
                wait = max(wait, self.bytes.reserve(size, now))
            return wait

    def acquire(self, events: int, size: int, wait: Callable[[float], bool]) -> None:
        """Return once the send may go. `wait(seconds)` waits and says whether delivery is
        stopping (the sender's stop event's `wait`): a DeliveryError then."""
        seconds = self.reserve(events, size)
        if seconds > 0.0 and wait(seconds):
            raise DeliveryError("stopped while a send waited for the throughput budget")

    def cut(self, queued: Iterable[_Out]) -> Iterator[_Out]:
        """The head of a queue, as much of it as one send may carry (one event at least)."""
        total = 0
        for count, out in enumerate(queued):
            total += out.size
            if count and (
                (self.max_events is not None and count >= self.max_events)
                or (self.max_bytes is not None and total > self.max_bytes)
            ):
                return
            yield out
