"""The token bucket alone, on an injected clock: what it releases by any time, whatever the
sends, and that a steady demand gets the whole budget."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from target_azure_eventhubs.delivery.pacing import BURST_SECONDS, Pace, Pacer, TokenBucket
from target_azure_eventhubs.errors import DeliveryError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        """A stop event's wait that is never set: time passes, nothing stops."""
        assert seconds > 0
        self.now += seconds
        return False


@dataclass
class Out:
    size: int


rates = st.floats(min_value=1.0, max_value=1e6)
sends = st.lists(
    # (seconds since the previous send asked, events, bytes)
    st.tuples(
        st.floats(min_value=0.0, max_value=2.0),
        st.integers(min_value=1, max_value=5000),
        st.integers(min_value=30, max_value=1_000_000),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(events_rate=rates, bytes_rate=st.floats(min_value=1e3, max_value=1e8), demand=sends)
def test_released_by_t_is_never_more_than_rate_times_t_plus_the_burst(
    events_rate: float, bytes_rate: float, demand: list[tuple[float, int, int]]
) -> None:
    clock = Clock()
    pacer = Pacer(Pace(events_rate, bytes_rate), clock)
    start = clock.now
    released_events = released_bytes = 0
    largest_events = largest_bytes = 0
    for gap, events, size in demand:
        clock.now += gap
        pacer.acquire(events, size, clock.wait)
        released_events += events
        released_bytes += size
        largest_events = max(largest_events, events)
        largest_bytes = max(largest_bytes, size)
        t = clock.now - start
        # A send larger than the bucket goes into debt: the bound is the larger of the two.
        burst_events = max(events_rate * BURST_SECONDS, largest_events)
        burst_bytes = max(bytes_rate * BURST_SECONDS, largest_bytes)
        assert released_events <= events_rate * t + burst_events + 1e-6 * burst_events
        assert released_bytes <= bytes_rate * t + burst_bytes + 1e-6 * burst_bytes


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=10.0, max_value=1e6),
    fractions=st.lists(st.floats(min_value=0.001, max_value=1.0), min_size=100, max_size=150),
)
def test_steady_demand_gets_at_least_95_percent_of_the_rate(
    rate: float, fractions: list[float]
) -> None:
    # Sends as cut by the pacer (at most the bucket), asking again as soon as one went.
    clock = Clock()
    pacer = Pacer(Pace(events_per_second=rate), clock)
    assert pacer.max_events is not None
    start, released = clock.now, 0
    for fraction in fractions:
        events = max(1, int(fraction * pacer.max_events))
        pacer.acquire(events, 0, clock.wait)
        released += events
    elapsed = clock.now - start
    assert released >= 0.95 * rate * elapsed
    assert released <= rate * elapsed + rate * BURST_SECONDS * (1 + 1e-6)


def test_a_send_larger_than_the_bucket_goes_when_it_is_full_and_leaves_a_debt() -> None:
    clock = Clock()
    pacer = Pacer(Pace(events_per_second=1000), clock)  # holds 250 events
    assert pacer.reserve(1000, 0) == 0.0  # full: it goes at once
    assert pacer.reserve(10, 0) == pytest.approx((750 + 10) / 1000)  # the debt, then its own


def test_the_fuller_dimension_holds_a_send_back() -> None:
    clock = Clock()
    pacer = Pacer(Pace(events_per_second=1_000_000, bytes_per_second=10_000), clock)
    assert pacer.reserve(1, 2500) == 0.0
    assert pacer.reserve(1, 100) == pytest.approx(100 / 10_000)


def test_sends_go_in_the_order_they_asked() -> None:
    # A large batch asked first; small ones after it wait behind it instead of taking the
    # tokens as they accrue.
    clock = Clock()
    bucket = TokenBucket(rate=100, capacity=25, now=clock.now)
    assert bucket.reserve(25, clock.now) == 0.0
    assert bucket.reserve(20, clock.now) == pytest.approx(0.20)
    assert bucket.reserve(1, clock.now) == pytest.approx(0.21)
    clock.now += 0.21
    assert bucket.reserve(1, clock.now) == pytest.approx(0.01)


def test_a_stop_while_waiting_raises() -> None:
    clock = Clock()
    pacer = Pacer(Pace(events_per_second=100), clock)
    pacer.acquire(25, 0, clock.wait)
    waits: list[float] = []

    def stopped(seconds: float) -> bool:
        waits.append(seconds)
        return True

    with pytest.raises(DeliveryError, match="stopped while a send waited"):
        pacer.acquire(25, 0, stopped)
    assert waits == [pytest.approx(0.25)]


def test_batches_are_cut_to_what_a_full_bucket_allows() -> None:
    pacer = Pacer(Pace(events_per_second=40, bytes_per_second=4000))  # 10 events, 1000 bytes
    assert len(list(pacer.cut([Out(10)] * 50))) == 10
    assert len(list(pacer.cut([Out(300)] * 50))) == 3
    assert len(list(pacer.cut([Out(5000)] * 3))) == 1  # one event at least, however large
    assert list(pacer.cut([])) == []
