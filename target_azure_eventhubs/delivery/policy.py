"""What to do when a send fails, and the options and counters of delivery.

The SDK's own retries are switched off (`retry_total=0`): its throttling retry has no
backoff and its timeout doubles, so delivery owns the whole retry budget, decided here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import ClientAuthenticationError
from azure.eventhub.exceptions import AuthenticationError, EventHubError

from target_azure_eventhubs.delivery.connection import ConnectionSpec
from target_azure_eventhubs.delivery.pacing import Pace, pace_from_config
from target_azure_eventhubs.delivery.proxy import is_fatal_proxy_refusal, proxy_failure

SERVER_BUSY_MIN_WAIT = 4.0  # the service asks publishers to wait 4 s when throttled
_FATAL_CONDITIONS = {
    "not-found": "the event hub or partition does not exist",
    "unauthorized-access": "the credentials lack the Send right on this event hub",
    "link:message-size-exceeded": "an event or batch is larger than the hub accepts",
    "message-size-exceeded": "an event or batch is larger than the hub accepts",
}


@dataclass(frozen=True)
class DeliveryOptions:
    max_retries: int = 8
    retry_backoff_seconds: float = 1.0
    retry_backoff_max_seconds: float = 30.0
    send_timeout_seconds: float = 30.0
    max_batch_size_bytes: int | None = None
    max_buffered_bytes: int = 64 * 1024 * 1024
    max_parallel_sends: int = 4
    round_robin: bool = False
    report_seconds: float = 0.0  # how often the sender process reports progress (0: never)
    pace: Pace | None = None  # the namespace's throughput budget (see delivery/pacing.py)


def options_from_config(config: Mapping[str, Any]) -> DeliveryOptions:
    """The delivery settings of a target configuration (see the target's settings)."""
    return DeliveryOptions(
        max_retries=int(config.get("max_retries", 8)),
        retry_backoff_seconds=float(config.get("retry_backoff_seconds", 1.0)),
        retry_backoff_max_seconds=float(config.get("retry_backoff_max_seconds", 30.0)),
        send_timeout_seconds=float(config.get("send_timeout_seconds", 30.0)),
        max_batch_size_bytes=config.get("max_batch_size_bytes"),
        max_buffered_bytes=int(config.get("max_buffered_mb", 64)) * 1024 * 1024,
        max_parallel_sends=int(config.get("max_parallel_sends", 4)),
        round_robin=config.get("partitioning") == "round_robin",
        report_seconds=1.0 if float(config.get("progress_interval_seconds", 30) or 0) else 0.0,
        pace=pace_from_config(config),
    )


@dataclass
class DeliveryStats:
    """What Event Hubs accepted so far, and what is still in flight (see Delivery.progress)."""

    events_sent: int = 0
    bytes_sent: int = 0
    batches_sent: int = 0
    retries: int = 0
    throttled: int = 0
    per_partition: dict[str, int] = field(default_factory=dict)
    per_hub: dict[str, tuple[int, int]] = field(default_factory=dict)  # hub: (events, bytes)
    in_flight: int = 0  # events submitted, not yet accepted
    oldest_unacknowledged: float = 0.0  # seconds the oldest of them has waited

    def count_batch(self, hub: str, label: str, events: int, size: int) -> None:
        self.events_sent += events
        self.bytes_sent += size
        self.batches_sent += 1
        self.per_partition[label] = self.per_partition.get(label, 0) + events
        hub_events, hub_bytes = self.per_hub.get(hub, (0, 0))
        self.per_hub[hub] = (hub_events + events, hub_bytes + size)


def _condition_of(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    if error:
        return str(error).lower()
    text = str(exc).lower()
    for condition in (*_FATAL_CONDITIONS, "server-busy"):
        if condition in text:
            return condition
    return ""


def _entra_refusal(exc: BaseException) -> bool:
    """Whether Entra ID refused the credential (a wrong secret): the SDK raises a bare
    EventHubError while handling azure-identity's ClientAuthenticationError."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ClientAuthenticationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def classify(exc: BaseException) -> str:
    """'fatal', 'throttled' or 'transient' for an exception raised by a send."""
    if is_fatal_proxy_refusal(exc) or _entra_refusal(exc):
        return "fatal"
    condition = _condition_of(exc)
    expired = "expired" in str(exc).lower()
    if expired and (condition == "unauthorized-access" or isinstance(exc, AuthenticationError)):
        # The token of an open connection ran out (the SDK renews it only while the
        # connection works, so an idle spell outlives it): a new connection gets a fresh one.
        return "transient"
    if isinstance(exc, AuthenticationError):
        return "fatal"
    if condition in _FATAL_CONDITIONS:
        return "fatal"
    if "server-busy" in condition:
        return "throttled"
    if isinstance(exc, EventHubError | OSError | TimeoutError):
        return "transient"
    return "fatal"


def describe_failure(exc: BaseException, spec: ConnectionSpec, hub: str) -> str:
    """A secret-free sentence saying what went wrong and where."""
    where = spec.describe(hub)
    if isinstance(exc, AuthenticationError):
        if _entity_missing(exc):
            missing = _FATAL_CONDITIONS["not-found"]
            return f"Cannot send to {where}: {missing} ({reason_line(exc)})"
        return f"Event Hubs refused the credentials for {where}: the key or token was rejected"
    if problem := proxy_failure(exc, spec.proxy):
        return f"Cannot send to {where}: {problem}"
    condition = _condition_of(exc)
    if reason := _FATAL_CONDITIONS.get(condition):
        return f"Cannot send to {where}: {reason} ({reason_line(exc)})"
    text = f"Cannot send to {where}: {type(exc).__name__}: {reason_line(exc)}"
    if spec.ignored_proxy_variable and "Failed to initiate the connection" in str(exc):
        text += (
            f" ({spec.ignored_proxy_variable} is set, but transport_type 'amqp' does not use "
            "proxies: set transport_type to 'amqp_websockets' to go through it)"
        )
    return text


def reason_line(exc: BaseException) -> str:
    """One line saying why: the service's own `Description:` where the SDK's message
    carries one (a refused token's first line is only "CBS Token authentication failed."),
    else the message's first line."""
    lines = str(exc).strip().splitlines()
    for line in lines:
        if line.startswith("Description:"):
            return line.removeprefix("Description:").strip()[:300]
    return lines[0][:300] if lines else type(exc).__name__


def _entity_missing(exc: BaseException) -> bool:
    # The service refuses a token for an event hub the namespace lacks with status 404.
    text = str(exc)
    return "Status code: 404" in text or "could not be found" in text


def backoff_delay(attempt: int, kind: str, options: DeliveryOptions) -> float:
    """Exponential backoff with full jitter; throttling always waits at least 4 s."""
    ceiling = min(
        options.retry_backoff_max_seconds, options.retry_backoff_seconds * 2 ** (attempt - 1)
    )
    delay = random.uniform(ceiling / 2, ceiling)
    if kind == "throttled":
        delay = max(delay, SERVER_BUSY_MIN_WAIT)
    return delay
