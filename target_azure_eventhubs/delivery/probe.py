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

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.eventhub import EventHubProducerClient

from target_azure_eventhubs.delivery import sdk
from target_azure_eventhubs.delivery.connection import ConnectionSpec
from target_azure_eventhubs.delivery.policy import describe_failure
from target_azure_eventhubs.errors import DeliveryError

# A refusal follows the attach at once; this only bounds a service that sends nothing more.
_NEXT_FRAME_SECONDS = 1.0


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


def _max_message_size(client: EventHubProducerClient) -> int:
    size = client.create_batch().max_size_in_bytes
    _confirm_sender_link(client)
    return int(size)


def _confirm_sender_link(client: EventHubProducerClient) -> None:
    """Raise the service's refusal of the sender link `create_batch` attached, if any."""
    sdk.confirm_sender_link(client, _NEXT_FRAME_SECONDS)
