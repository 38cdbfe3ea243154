"""The budget's settings: one number for the namespace's throughput units, explicit rates
below it, and a one-line refusal of what contradicts itself."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from target_azure_eventhubs.delivery.pacing import Pace, pace_from_config
from target_azure_eventhubs.delivery.policy import options_from_config
from target_azure_eventhubs.errors import ConfigurationError
from target_azure_eventhubs.settings import CONFIG_JSONSCHEMA, TargetSettings

CONNECTION = {
    "connection_string": "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;"
    "SharedAccessKey=v;EntityPath=profiles;UseDevelopmentEmulator=true"
}


@pytest.mark.parametrize(
    ("settings", "pace"),
    [
        ({}, None),
        ({"throughput_units": None}, None),
        ({"throughput_units": 2}, Pace(2000, 2_000_000)),
        ({"throughput_units": 0.5}, Pace(500, 500_000)),
        ({"throughput_units": Decimal("1.5")}, Pace(1500, 1_500_000)),  # as the CLI reads it
        ({"throughput_units": 2, "max_events_per_second": 1500}, Pace(1500, 2_000_000)),
        ({"throughput_units": 2, "max_bytes_per_second": 2_000_000}, Pace(2000, 2_000_000)),
        ({"max_events_per_second": 300}, Pace(300, None)),
        ({"max_bytes_per_second": 65536}, Pace(None, 65536)),
        ({"max_events_per_second": 10, "max_bytes_per_second": 4096}, Pace(10, 4096)),
    ],
)
def test_the_budget_each_setting_asks_for(settings: dict[str, Any], pace: Pace | None) -> None:
    assert pace_from_config(settings) == pace
    assert TargetSettings.from_config({**CONNECTION, **settings}).delivery.pace == pace


def test_without_a_budget_the_options_are_the_unpaced_ones() -> None:
    assert options_from_config(CONNECTION) == options_from_config(
        {**CONNECTION, "throughput_units": None}
    )
    assert options_from_config(CONNECTION).pace is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"throughput_units": 2, "max_events_per_second": 2500},
            "max_events_per_second 2500 is above what throughput_units 2 allows (2000 events/s)",
        ),
        (
            {"throughput_units": 1, "max_bytes_per_second": 2_000_000},
            "max_bytes_per_second 2e+06 is above what throughput_units 1 allows",
        ),
        ({"throughput_units": 0}, "throughput_units is 0, outside its range"),
        ({"max_events_per_second": -5}, "max_events_per_second is -5, outside its range"),
        ({"max_bytes_per_second": 100}, "max_bytes_per_second is 100, outside its range"),
        ({"throughput_units": "two"}, "throughput_units"),
    ],
)
def test_contradictions_and_out_of_range_values_are_one_line_errors(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        TargetSettings.from_config({**CONNECTION, **settings})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_schema_states_the_ranges() -> None:
    properties = CONFIG_JSONSCHEMA["properties"]
    assert properties["throughput_units"]["exclusiveMinimum"] == 0
    assert properties["max_events_per_second"]["exclusiveMinimum"] == 0
    assert properties["max_bytes_per_second"]["minimum"] == 1024
