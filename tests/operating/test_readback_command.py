"""`python -m target_azure_eventhubs.testing`: what a hub holds, printed; every mistake a
user can make with it is one line naming the hub and the cause, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.eventhub import EventData, EventHubProducerClient
from eventhubs_localhub import LocalHub

from target_azure_eventhubs.testing.readback import main


def put(hub: LocalHub, *bodies: bytes) -> None:
    with EventHubProducerClient.from_connection_string(
        hub.connection_string(), eventhub_name="profiles"
    ) as producer:
        batch = producer.create_batch(partition_id="1")
        for body in bodies:
            batch.add(EventData(body))
        producer.send_batch(batch)


def fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code not in (0, None)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    message = lines[-1] if raised.value.code == 2 else str(raised.value.code)
    assert "Traceback" not in err
    return message


def test_the_last_events_are_printed_json_or_not(
    local_hub: LocalHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(local_hub, b'{"a": 1}', b"\x00avro")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"connection_string": local_hub.connection_string(), "eventhub_name": "profiles"}
        )
    )
    main(["--config", str(config), "--last", "2"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("partition 1 #0 id ")
    assert '"a": 1' in out
    assert "b'\\x00avro'" in out


def test_a_hub_that_does_not_exist(local_hub: LocalHub, capsys: pytest.CaptureFixture[str]) -> None:
    conn = local_hub.connection_string()
    message = fails(["--connection-string", conn, "--eventhub", "nope"], capsys)
    assert message.startswith("Cannot read event hub 'nope' in namespace '127.0.0.1:")
    assert "could not be found" in message
    assert "localhub-development-key" not in message


def test_no_hub_named(local_hub: LocalHub, capsys: pytest.CaptureFixture[str]) -> None:
    message = fails(["--connection-string", local_hub.connection_string()], capsys)
    assert "no event hub named: give --eventhub" in message


def test_a_namespace_that_cannot_be_reached(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.proxy import free_port

    conn = (
        f"Endpoint=sb://127.0.0.1:{free_port()};SharedAccessKeyName=k;SharedAccessKey=secret;"
        "UseDevelopmentEmulator=true"
    )
    message = fails(["--connection-string", conn, "--eventhub", "profiles"], capsys)
    assert "Cannot read event hub 'profiles' in namespace '127.0.0.1:" in message
    assert "Connection refused" in message
    assert "secret" not in message


def test_a_config_file_that_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    message = fails(["--config", str(broken)], capsys)
    assert f"--config {broken} cannot be read" in message
