"""The private parts of azure-eventhub that `delivery/sdk.py` relies on are still there.

When one of these fails after an upgrade of azure-eventhub, the message names what changed:
adapt `target_azure_eventhubs/delivery/sdk.py` (and only it), or pin the SDK below the
release that changed it.
"""

from __future__ import annotations

import inspect
from typing import Any

import azure.eventhub
from azure.eventhub import EventDataBatch, EventHubProducerClient
from azure.eventhub._producer import EventHubProducer

from target_azure_eventhubs.delivery import sdk

VERSION = azure.eventhub.__version__


def _changed(what: str) -> str:
    return f"azure-eventhub {VERSION} changed {what}: adapt target_azure_eventhubs/delivery/sdk.py"


class _NoToken:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("the adapter check never connects")


def _client() -> EventHubProducerClient:
    return EventHubProducerClient(
        fully_qualified_namespace="adapter-check.invalid",
        eventhub_name="hub",
        credential=_NoToken(),
    )


def test_a_batch_keeps_its_size_count_and_data_sections_where_the_adapter_reads_them() -> None:
    batch = EventDataBatch(max_size_in_bytes=1 << 20)
    assert isinstance(getattr(batch, "_size", None), int), _changed("EventDataBatch._size")
    assert isinstance(getattr(batch, "_count", None), int), _changed("EventDataBatch._count")
    message = getattr(batch, "_message", None)
    assert message is not None and isinstance(message[5], list), _changed(
        "EventDataBatch._message[5] (BatchMessage.data, the events' data sections)"
    )
    # tests/unit/delivery/test_encoding.py checks that a batch filled through the adapter
    # equals one filled with EventDataBatch.add.


def test_the_producer_client_keeps_its_producers_per_partition() -> None:
    client = _client()
    try:
        producers = getattr(client, "_producers", None)
        assert isinstance(producers, dict), _changed("EventHubProducerClient._producers")
        assert sdk.ALL_PARTITIONS in producers, _changed(
            f"the key of the partition-less producer ({sdk.ALL_PARTITIONS!r})"
        )
        assert hasattr(client, "_partition_ids"), _changed("EventHubProducerClient._partition_ids")
        start = getattr(client, "_start_producer", None)
        assert start is not None, _changed("EventHubProducerClient._start_producer")
        assert list(inspect.signature(start).parameters)[:2] == [
            "partition_id",
            "send_timeout",
        ], _changed("the parameters of EventHubProducerClient._start_producer")
        assert hasattr(client, "_amqp_transport"), _changed(
            "EventHubProducerClient._amqp_transport"
        )
    finally:
        client.close()


def test_a_partition_producer_sends_once_and_opens_with_retry() -> None:
    assert "timeout" in inspect.signature(EventHubProducer.send).parameters, _changed(
        "EventHubProducer.send(timeout=...)"
    )
    assert hasattr(EventHubProducer, "_open_with_retry"), _changed(
        "EventHubProducer._open_with_retry"
    )
    client = _client()
    try:
        producer: Any = client._producers[sdk.ALL_PARTITIONS]
        assert producer.closed is False, _changed("EventHubProducer.closed")
        assert hasattr(producer, "_handler"), _changed("EventHubProducer._handler")
    finally:
        client.close()
