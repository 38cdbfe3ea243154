"""The retry policy of delivery: which failures are retried, and how long it waits."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.eventhub.exceptions import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    EventDataSendError,
    EventHubError,
    OperationTimeoutError,
)

from target_azure_eventhubs.delivery.connection import connection_from_config
from target_azure_eventhubs.delivery.encoding import Outbound, event_fits
from target_azure_eventhubs.delivery.policy import (
    SERVER_BUSY_MIN_WAIT,
    DeliveryOptions,
    backoff_delay,
    classify,
    describe_failure,
)

SPEC = connection_from_config(
    {"namespace": "contoso", "eventhub_name": "profiles", "sas_key_name": "send", "sas_key": "k3y"}
)


def _with_condition(exc_type: type[Exception], condition: str, text: str = "failed") -> Exception:
    exc = exc_type(text)
    exc.error = condition  # type: ignore[attr-defined]  # as the SDK sets it from the AMQP error
    return exc


def _expired_client_secret() -> Exception:
    """As the SDK raises it: a bare EventHubError while handling azure-identity's refusal."""
    wrapped = EventHubError("Authentication failed")
    wrapped.__context__ = ClientAuthenticationError("AADSTS7000222: client secret is expired")
    return wrapped


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (AuthenticationError("CBS put-token failed 401"), "fatal"),
        # the token of a connection idle past its life: the next connection gets a new one
        (AuthenticationError("CBS Authentication Expired."), "transient"),
        (_expired_client_secret(), "fatal"),  # an Entra ID refusal, whatever its words
        (_with_condition(ConnectError, "not-found"), "fatal"),
        (_with_condition(ConnectError, "unauthorized-access"), "fatal"),
        (
            _with_condition(ConnectionLostError, "unauthorized-access", "The token has expired."),
            "transient",
        ),
        (_with_condition(EventDataSendError, "link:message-size-exceeded"), "fatal"),
        (_with_condition(EventDataSendError, "server-busy"), "throttled"),
        (
            EventDataSendError("rejected: com.microsoft:server-busy, please wait 4 seconds"),
            "throttled",
        ),
        (ConnectionLostError("connection closed"), "transient"),
        (OperationTimeoutError("send timed out"), "transient"),
        (ConnectError("connection refused"), "transient"),
        (ConnectionResetError("reset by peer"), "transient"),
        (ValueError("a bug"), "fatal"),
    ],
)
def test_classify(exc: Exception, kind: str) -> None:
    assert classify(exc) == kind


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_grows_and_is_capped(attempt: int) -> None:
    options = DeliveryOptions(retry_backoff_seconds=0.5, retry_backoff_max_seconds=10)
    ceiling = min(10, 0.5 * 2 ** (attempt - 1))
    for _ in range(50):
        delay = backoff_delay(attempt, "transient", options)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_throttling_waits_at_least_what_the_service_asks(attempt: int) -> None:
    options = DeliveryOptions(retry_backoff_seconds=0.01)
    for _ in range(50):
        assert backoff_delay(attempt, "throttled", options) >= SERVER_BUSY_MIN_WAIT


def test_failure_descriptions_name_the_hub_and_key_name_but_not_the_key() -> None:
    text = describe_failure(AuthenticationError("401 unauthorized"), SPEC, "profiles")
    assert "refused the credentials" in text
    assert "'send'" in text and "'profiles'" in text
    assert "k3y" not in text
    missing = describe_failure(_with_condition(ConnectError, "not-found"), SPEC, "nohub")
    assert "'nohub'" in missing and "does not exist" in missing


def test_event_fits_is_exact_at_the_limit() -> None:
    from azure.eventhub import EventDataBatch

    from target_azure_eventhubs.delivery.encoding import encode_message

    out = Outbound(b"x" * 1000, {"stream": "s"})
    exact = EventDataBatch()._size + len(encode_message(out.body, out.properties)) + 8  # vbin32
    assert event_fits(out, exact)
    assert not event_fits(out, exact - 1)
    out.encode()
    assert EventDataBatch()._size + out.size == exact
