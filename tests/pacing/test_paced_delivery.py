"""`Delivery` paced to the budget the local hub is throttled to, in this process: no
server-busy answer and at least 95% of the budget, over all hubs of the namespace; unpaced,
the same throttle answers server-busy; a close while sends wait for the budget is prompt."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from eventhubs_localhub import LocalHub

from target_azure_eventhubs.delivery.connection import connection_from_config
from target_azure_eventhubs.delivery.encoding import Outbound
from target_azure_eventhubs.delivery.pacing import Pace
from target_azure_eventhubs.delivery.policy import DeliveryOptions
from target_azure_eventhubs.delivery.sender import Delivery
from target_azure_eventhubs.errors import DeliveryError
from tests.pacing.support import refused, sustained_rate

HUBS = {"profiles": 4, "orders": 2}
LIMIT = 2000  # events/s: 2 throughput units


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub(hubs=HUBS) as local:
        yield local


def delivery(hub: LocalHub, **options: object) -> Delivery:
    settings = {"connection_string": hub.connection_string(), "eventhub_name": "profiles"}
    spec = connection_from_config(settings)
    return Delivery(spec, DeliveryOptions(**options), on_released=lambda mark: None)  # type: ignore[arg-type]


def events(hub_name: str, count: int, size: int = 200) -> list[tuple[str | None, Outbound]]:
    return [
        (f"{hub_name}-{n}", Outbound(f"{n:06d}".encode() * (size // 6), {"stream": hub_name}))
        for n in range(count)
    ]


def test_paced_to_the_throttle_every_transfer_is_accepted_at_95_percent_of_it(
    hub: LocalHub,
) -> None:
    hub.faults.throttle(LIMIT)  # over all hubs, as the service counts a namespace
    paced = delivery(hub, pace=Pace(events_per_second=LIMIT))
    try:
        for name in HUBS:  # both hubs share the budget
            paced.open_hub(name)
        for name in HUBS:
            paced.submit(name, events(name, 3000))
        assert paced.flush(timeout=30)
    finally:
        paced.close()
    journal = hub.faults.transfers()
    assert refused(journal) == []
    assert hub.event_count("profiles") == hub.event_count("orders") == 3000
    rate = sustained_rate(journal)
    assert 0.95 * LIMIT <= rate <= 1.25 * LIMIT, rate  # over ~3 s, a bucket's worth above


def test_paced_to_a_byte_budget_every_transfer_is_accepted_at_95_percent_of_it(
    hub: LocalHub,
) -> None:
    budget = 400_000  # bytes/s; 1 kB events: the bytes bind before the events
    hub.faults.throttle(LIMIT, bytes_per_second=budget)
    paced = delivery(hub, pace=Pace(events_per_second=LIMIT, bytes_per_second=budget))
    try:
        paced.submit("profiles", events("profiles", 1100, size=1000))
        assert paced.flush(timeout=30)
    finally:
        paced.close()
    journal = hub.faults.transfers()
    assert refused(journal) == []
    assert hub.event_count("profiles") == 1100
    rate = sustained_rate(journal, by_size=True)
    assert 0.95 * budget <= rate <= 1.25 * budget, rate


def test_unpaced_the_same_throttle_answers_server_busy(hub: LocalHub) -> None:
    hub.faults.throttle(LIMIT)
    unpaced = delivery(hub, max_retries=0)  # the first refusal ends it: no 4 s wait here
    try:
        unpaced.submit("profiles", events("profiles", 6000))
        with pytest.raises(DeliveryError, match="being throttled"):
            unpaced.flush(timeout=30)
    finally:
        unpaced.close()
    assert refused(hub.faults.transfers())


def test_a_close_while_sends_wait_for_the_budget_is_prompt(hub: LocalHub) -> None:
    paced = delivery(hub, pace=Pace(events_per_second=20))  # 5 events a batch, 4 a second
    paced.submit("profiles", events("profiles", 200))
    assert not paced.flush(timeout=0.5)  # waiting for the budget
    started = time.monotonic()
    paced.close(timeout=5.0)
    took = time.monotonic() - started
    assert took < 1.0, took
    assert isinstance(paced.failure, DeliveryError)
    assert 0 < hub.event_count("profiles") < 200
