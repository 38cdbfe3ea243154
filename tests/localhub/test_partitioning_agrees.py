"""The local hub routes a partition key where the target (and the SDK) expect it: each
product has its own copy of the service's key hash, and they must agree."""

from __future__ import annotations

from azure.eventhub._buffered_producer._partition_resolver import (  # the SDK's reference
    PartitionResolver,
)
from eventhubs_localhub.partitioning import partition_for_key as hub_partition
from hypothesis import given, settings
from hypothesis import strategies as st

from target_azure_eventhubs.delivery.partitioning import partition_for_key as target_partition


@settings(max_examples=500, deadline=None)
@given(key=st.text(min_size=1, max_size=60), count=st.integers(1, 32))
def test_the_hub_the_target_and_the_sdk_route_a_key_alike(key: str, count: int) -> None:
    expected = PartitionResolver([str(p) for p in range(count)]).get_partition_id_by_partition_key(
        key
    )
    assert str(hub_partition(key, count)) == expected
    assert str(target_partition(key, count)) == expected
