"""partition_for_key must agree with the SDK's own resolver for every key and count."""

from __future__ import annotations

from azure.eventhub._buffered_producer._partition_resolver import (
    PartitionResolver,
    generate_hash_code,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from target_azure_eventhubs.delivery.partitioning import (
    hash_code,
    partition_for_key,
    partitions_for_keys,
)

RESOLVERS = {n: PartitionResolver([str(i) for i in range(n)]) for n in range(1, 33)}


@settings(max_examples=3000, deadline=None)
@given(key=st.text(max_size=64), count=st.integers(min_value=1, max_value=32))
def test_partition_matches_sdk_resolver(key: str, count: int) -> None:
    assert str(partition_for_key(key, count)) == RESOLVERS[count].get_partition_id_by_partition_key(
        key
    )


@settings(max_examples=1000, deadline=None)
@given(key=st.text(alphabet=st.characters(max_codepoint=255), min_size=1, max_size=40))
def test_hash_code_matches_sdk(key: str) -> None:
    assert hash_code(key) == generate_hash_code(key)


def test_known_values_and_edges() -> None:
    assert hash_code("") == 0
    assert partition_for_key("", 4) == 0
    for key in ["a" * 12, "b" * 24, "profile-123", "é€😀", "x" * 13]:
        for count in (1, 2, 3, 4, 7, 32):
            expected = RESOLVERS[count].get_partition_id_by_partition_key(key)
            assert str(partition_for_key(key, count)) == expected


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(
        st.one_of(
            st.text(alphabet=st.characters(max_codepoint=127), max_size=40),
            st.text(max_size=20),
            st.from_regex(r"cust-[0-9]{8}", fullmatch=True),
        ),
        min_size=0,
        max_size=300,
    ),
    count=st.integers(min_value=1, max_value=32),
)
def test_many_keys_at_once_match_the_sdk_resolver(keys: list[str], count: int) -> None:
    # Lists long enough to take the vectorised path, with mixed lengths and non-ASCII keys.
    resolver = RESOLVERS[count]
    expected = [int(resolver.get_partition_id_by_partition_key(key)) for key in keys]
    assert partitions_for_keys(keys, count) == expected
