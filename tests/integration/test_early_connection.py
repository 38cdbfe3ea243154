"""The command line connects before the target has loaded; only matching settings keep it."""

from __future__ import annotations

import io
import json
import logging
import signal
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from target_azure_eventhubs.delivery import launcher
from target_azure_eventhubs.target import TargetAzureEventHubs
from target_azure_eventhubs.testing import read_all
from tests.integration.target_runner import (
    MEMBERSHIP_PROPERTIES,
    record,
    run_target,
    schema,
    singer_lines,
    state,
)

STREAM = "memberships"
MESSAGES = [
    schema(STREAM, MEMBERSHIP_PROPERTIES, ["profile_id"]),
    record(
        STREAM,
        {"profile_id": "p1", "email": "a@example.com", "segment_id": "s1", "status": "realized"},
    ),
    record(
        STREAM,
        {"profile_id": "p2", "email": "b@example.com", "segment_id": "s2", "status": "exited"},
    ),
    state({"done": True}),
]


def config_for(hub: LocalHub) -> dict[str, object]:
    return {
        "connection_string": hub.connection_string(),
        "eventhub_name": "profiles",
        "send_timeout_seconds": 4,
        "max_latency_ms": 200,
    }


def test_the_command_line_sends_over_its_early_connection(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    result = run_target(tmp_path, config_for(local_hub), MESSAGES, env={"LOGLEVEL": "DEBUG"})
    assert result.returncode == 0, result.stderr
    assert "Sending over the connection opened while the target loaded" in result.stderr
    assert result.states == [{"done": True}]
    events = read_all(local_hub.connection_string("profiles"))
    assert sorted(e.properties["segment_ids"] for e in events) == ["s1", "s2"]


def test_an_early_connection_with_other_settings_is_not_used(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The early connection goes to one hub; the validated settings name another. Every
    # event must reach the second, none the first.
    with LocalHub(hubs={"profiles": 2}) as early, LocalHub(hubs={"profiles": 2}) as configured:
        monkeypatch.setenv("LOGLEVEL", "DEBUG")  # read by the sender process as it starts
        launcher.prestart(config_for(early))
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        target_logger = logging.getLogger(TargetAzureEventHubs.name)
        level = target_logger.level
        try:
            target_logger.setLevel(logging.DEBUG)  # the level the sender process is given
            target = TargetAzureEventHubs(config=config_for(configured))
            code = target.run(io.StringIO(singer_lines(MESSAGES)))
        finally:
            target_logger.setLevel(level)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        assert code == 0
        out, err = capfd.readouterr()
        assert [json.loads(line) for line in out.splitlines()] == [{"done": True}]
        assert "Settings differ from the command line's: connecting again" in err
        arrived = read_all(configured.connection_string("profiles"))
        assert sorted(e.properties["segment_ids"] for e in arrived) == ["s1", "s2"]
        assert early.event_count("profiles") == 0
