"""Bad settings stop the command before anything is sent, in one line, naming the setting;
no secret appears in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.input.support import HUB, SCHEMA, config, row, run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"max_retires": 3},
            "Configuration error: unknown setting 'max_retires': did you "
            "mean 'max_retries'? (see `target-azure-eventhubs --about`)",
        ),
        (
            {"send_timeout_seconds": -1},
            "Configuration error: send_timeout_seconds is -1, "
            "outside its range: must be more than 0 and at most 3600",
        ),
        ({"load_method": "upsert"}, "Configuration error: load_method 'upsert' cannot work"),
    ],
)
def test_bad_settings_send_nothing(
    tmp_path: Path, hub: LocalHub, extra: dict, expected: str
) -> None:
    done = run(tmp_path, config(hub, **extra), [SCHEMA, row("p1", "s1")])
    assert done.assert_one_clear_error().startswith(expected)
    assert hub.events(HUB) == []
    assert "SharedAccessKey=" not in done.stderr
