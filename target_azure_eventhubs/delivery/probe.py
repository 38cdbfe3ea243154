"""Asking an event hub, before sending, for its partitions, its largest message, and
whether the credentials may send to it. Sends nothing.

The Send right is authorized when a sender link attaches. The SDK's `create_batch()`
attaches one (to read the largest message size) but returns as soon as the service's
attach arrives, and a service that refuses the link answers with an attach *followed* by
a detach carrying `amqp:unauthorized-access` (AMQP 1.0, 2.6.3). So, after it, the next
frame is read: a detach is the refusal, anything else (the credit a sender gets) means
the link stands.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.eventhub import EventHubProducerClient

from target_azure_eventhubs.delivery import sdk
from target_azure_eventhubs.delivery.connection import ConnectionSpec
from target_azure_eventhubs.delivery.policy import (
    DeliveryOptions,
    backoff_delay,
    classify,
    describe_failure,
    reason_line,
)
from target_azure_eventhubs.errors import DeliveryError

# A refusal follows the attach at once; this only bounds a service that sends nothing more.
_NEXT_FRAME_SECONDS = 1.0
_POLL = 0.05  # how often a wait between attempts checks whether the run stops


@dataclass(frozen=True)
class HubLimits:
    partition_ids: list[str]
    max_message_size: int  # bytes, as the sender link's attach says


def probe_hub(spec: ConnectionSpec, hub: str) -> HubLimits:
    """The hub's partition ids and largest message, asked over two connections at once
    (each costs the SDK a connect and a few 50 ms polls), with the Send right proven.

    Raises DeliveryError with `describe_failure`'s secret-free sentence.
    """

    def ask(question: Callable[[EventHubProducerClient], Any]) -> Any:
        # retry_total=0: a failure comes back at once, as it does to the senders.
        client = spec.create_producer(hub, retry_total=0)
        try:
            return question(client)
        finally:
            client.close()

    with ThreadPoolExecutor(2, thread_name_prefix="eventhubs-probe") as pool:
        ids = pool.submit(ask, lambda c: list(c.get_partition_ids()))
        size = pool.submit(ask, _max_message_size)
        try:
            return HubLimits(ids.result(), int(size.result()))
        except Exception as exc:
            raise DeliveryError(describe_failure(exc, spec, hub)) from exc


def probe_with_retries(  # noqa: PLR0917  (the delivery's parts a retry needs)
    spec: ConnectionSpec,
    hub: str,
    options: DeliveryOptions,
    logger: logging.Logger,
    stopped: threading.Event,
    should_stop: Callable[[], bool],
) -> HubLimits:
    """`probe_hub`, with the retries a send gets: a namespace that cannot be reached yet,
    or a busy service, is asked again after the same backoff, up to `max_retries` times;
    credentials refused or a missing hub fail at once. A stop ends the waiting."""
    attempt = 0
    started = time.monotonic()
    while True:
        try:
            return probe_hub(spec, hub)
        except DeliveryError as error:
            cause = error.__cause__
            kind = classify(cause) if cause is not None else "fatal"
            if kind == "fatal":
                raise
            if attempt >= options.max_retries:
                if not attempt:
                    raise
                raise DeliveryError(
                    f"{error} (gave up connecting after {attempt} retries in "
                    f"{time.monotonic() - started:.0f} s: max_retries)"
                ) from cause
            attempt += 1
            delay = backoff_delay(attempt, kind, options)
            logger.warning(
                "Connecting to %s failed (%s, %s); retry %d/%d in %.1f s",
                spec.describe(hub),
                kind,
                reason_line(cause) if cause is not None else error,
                attempt,
                options.max_retries,
                delay,
            )
            until = time.monotonic() + delay
            while (left := until - time.monotonic()) > 0:
                if stopped.wait(min(_POLL, left)) or should_stop():
                    raise DeliveryError(f"stopped while connecting to {spec.describe(hub)}") from (
                        cause
                    )


def _max_message_size(client: EventHubProducerClient) -> int:
    size = client.create_batch().max_size_in_bytes
    _confirm_sender_link(client)
    return int(size)


def _confirm_sender_link(client: EventHubProducerClient) -> None:
    """Raise the service's refusal of the sender link `create_batch` attached, if any."""
    sdk.confirm_sender_link(client, _NEXT_FRAME_SECONDS)
