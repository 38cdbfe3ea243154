"""Each injected fault, and exactly what the official SDK raises for it."""

from __future__ import annotations

import time

import pytest
from azure.eventhub import EventData
from azure.eventhub.exceptions import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    EventDataSendError,
    OperationTimeoutError,
)
from eventhubs_localhub import SERVER_BUSY_DESCRIPTION, LocalHub

from tests.waiting import wait_until

from .conftest import FAST_FAIL


def test_one_server_busy_is_resent_by_the_sdk(hub: LocalHub, make_producer) -> None:
    producer = make_producer(hub.connection_string("profiles"), **FAST_FAIL)
    hub.faults.reject_next(1)
    producer.send_batch([EventData(b"survivor")])
    assert [e.body for e in hub.events("profiles")] == [b"survivor"]


def test_server_busy_twice_is_event_data_send_error(hub: LocalHub, make_producer) -> None:
    # The SDK resends a rejected delivery once, whatever retry_total says.
    producer = make_producer(hub.connection_string("profiles"), retry_total=3)
    hub.faults.reject_next(2)
    with pytest.raises(EventDataSendError) as info:
        producer.send_batch([EventData(b"rejected")])
    assert info.value.error == "server-busy"
    assert SERVER_BUSY_DESCRIPTION in info.value.message
    assert hub.event_count("profiles") == 0
    producer.send_batch([EventData(b"later")])
    assert [e.body for e in hub.events("profiles")] == [b"later"]


def test_throttle_answers_server_busy_above_the_rate(hub: LocalHub, make_producer) -> None:
    hub.faults.throttle(100, hub="profiles")
    producer = make_producer(hub.connection_string("profiles"), **FAST_FAIL)
    sent = 0
    with pytest.raises(EventDataSendError) as info:
        for _ in range(10):
            producer.send_batch([EventData(b"t") for _ in range(60)])
            sent += 60
    assert info.value.error == "server-busy"
    assert sent >= 60
    assert hub.event_count("profiles") == sent
    hub.faults.throttle(None, hub="profiles")
    producer.send_batch([EventData(b"t") for _ in range(60)])
    assert hub.event_count("profiles") == sent + 60


def test_black_hole_times_out(hub: LocalHub, make_producer) -> None:
    producer = make_producer(hub.connection_string("profiles"), **FAST_FAIL)
    hub.faults.black_hole(True)
    started = time.monotonic()
    with pytest.raises(OperationTimeoutError, match="Sending message timed out"):
        producer.send_batch([EventData(b"void")], timeout=1)
    assert time.monotonic() - started < 10
    assert hub.event_count("profiles") == 0
    hub.faults.black_hole(False)


def applied(caplog: pytest.LogCaptureFixture, action: str, before: int) -> bool:
    """The hub's event loop has run fault action ``action`` once more than ``before``."""
    return caplog.text.count(f"fault injection: {action}") > before


def inject(hub: LocalHub, caplog: pytest.LogCaptureFixture, fault: str) -> None:
    """Inject ``fault`` (detach_links or close_connections) and wait until the hub ran it."""
    action = {"detach_links": "detaching", "close_connections": "closing"}[fault]
    before = caplog.text.count(f"fault injection: {action}")
    getattr(hub.faults, fault)()
    assert wait_until(lambda: applied(caplog, action, before), 10), caplog.text[-2000:]


def test_detach_and_close_are_retried(hub: LocalHub, make_producer, caplog) -> None:
    producer = make_producer(hub.connection_string("profiles"), retry_backoff_factor=0.05)
    producer.send_batch([EventData(b"a")])
    inject(hub, caplog, "detach_links")
    producer.send_batch([EventData(b"b")])
    inject(hub, caplog, "close_connections")
    producer.send_batch([EventData(b"c")])
    assert sorted(e.body for e in hub.events("profiles")) == [b"a", b"b", b"c"]


def test_refused_tokens_are_authentication_error(hub: LocalHub, make_producer) -> None:
    hub.faults.refuse_tokens(True)
    producer = make_producer(hub.connection_string("profiles"), **FAST_FAIL)
    with pytest.raises(AuthenticationError, match="Status code: 401"):
        producer.send_batch([EventData(b"x")])
    assert hub.event_count("profiles") == 0


def test_token_lifetime_detaches_then_sdk_recovers(hub: LocalHub, make_producer, caplog) -> None:
    hub.faults.token_lifetime(0.5)
    producer = make_producer(hub.connection_string("profiles"), retry_backoff_factor=0.05)
    producer.send_batch([EventData(b"first")])
    assert wait_until(lambda: "token for profiles expired; detaching link" in caplog.text, 10)
    producer.send_batch([EventData(b"second")])
    assert sorted(e.body for e in hub.events("profiles")) == [b"first", b"second"]


def test_detach_and_close_without_retries_raise(hub: LocalHub, make_producer, caplog) -> None:
    producer = make_producer(hub.connection_string("profiles"), retry_total=0)
    producer.send_batch([EventData(b"a")])
    inject(hub, caplog, "detach_links")
    with pytest.raises(ConnectionLostError) as lost:
        producer.send_batch([EventData(b"lost")])
    assert lost.value.error == "link:detach-forced"
    producer.send_batch([EventData(b"b")])
    inject(hub, caplog, "close_connections")
    with pytest.raises(ConnectError) as closed:
        producer.send_batch([EventData(b"lost")])
    assert closed.value.error == "connection:forced"
    assert sorted(e.body for e in hub.events("profiles")) == [b"a", b"b"]
