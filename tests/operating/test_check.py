"""`target-azure-eventhubs --check` through the real command, against the local hub.

Each case prints how long the command took (shown by `pytest -rA`); no assertion on time.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eventhubs_localhub import LocalHub, Policy
from eventhubs_localhub.hub import connection_string

from tests.certs import make_tls_certs

COMMAND = [sys.executable, "-m", "target_azure_eventhubs"]
SEND_KEY = "SendOnlyKeyForTheCheck123="
LISTEN_KEY = "ListenOnlyKeyForTheCheck456="
WRONG_KEY = "NotTheRightKeyAtAll789="
SECRETS = (SEND_KEY, LISTEN_KEY, WRONG_KEY, "manage-key-never-used")


@dataclass
class Checked:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "| ERROR " in line]


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    policies = [
        Policy("RootManageSharedAccessKey", "manage-key-never-used"),
        Policy("sender", SEND_KEY, {"Send"}),
        Policy("listener", LISTEN_KEY, {"Listen"}),
    ]
    with LocalHub(hubs={"profiles": 4, "audit": 2}, policies=policies) as local:
        yield local


def conn_str(hub: LocalHub, key_name: str = "sender", key: str = SEND_KEY) -> str:
    return connection_string("127.0.0.1", hub.port, key_name, key)


def check(
    tmp_path: Path,
    *configs: dict[str, Any],
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> Checked:
    args: list[str] = []
    for index, config in enumerate(configs):
        path = tmp_path / f"config{index}.json"
        path.write_text(json.dumps(config))
        args += ["--config", str(path)]
    started = time.monotonic()
    proc = subprocess.run(
        [*COMMAND, *args, *extra, "--check"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        check=False,
    )
    result = Checked(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    print(f"--check took {result.seconds:.2f} s, exit {result.code}")
    print(result.stdout)
    print(result.stderr)
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def assert_fails_with(result: Checked, *expected: str) -> None:
    assert result.code == 1
    assert len(result.errors) == 1, result.stderr
    for text in expected:
        assert text in result.errors[0]


def test_a_good_configuration_is_reported_and_nothing_is_sent(
    hub: LocalHub, tmp_path: Path
) -> None:
    dead_letters = tmp_path / "not-yet" / "invalid.jsonl"
    store = tmp_path / "changes.sqlite"
    config = {
        "connection_string": conn_str(hub),
        "eventhub_name": "profiles",
        "stream_eventhubs": {"audit_log": "audit"},
        "on_invalid_record": "dead_letter",
        "dead_letter_path": str(dead_letters),
        "change_tracking": True,
        "change_store": f"sqlite:///{store}",
    }
    result = check(tmp_path, config)
    assert result.code == 0
    assert result.errors == []
    out = result.stdout
    assert "auth:            connection string, shared access key name 'sender'" in out
    assert f"namespace:       127.0.0.1:{hub.port}" in out
    assert "transport:       amqp" in out
    assert (
        "event hub 'profiles' (default hub): 4 partitions, max message size 1048576 bytes, "
        "Send right proven" in out
    )
    assert (
        "event hub 'audit' (stream_eventhubs: audit_log): 2 partitions, max message size "
        "1048576 bytes, Send right proven" in out
    )
    assert f"dead-letter file {dead_letters} can be created (with its folder)" in out
    assert f"store sqlite:///{store} opens (new: created now, empty)" in out
    assert out.rstrip().endswith("Check passed: a run can connect and send with this configuration")
    # Nothing sent, nothing left behind but the change store a run would create.
    assert hub.event_count("profiles") == 0
    assert hub.event_count("audit") == 0
    assert not dead_letters.parent.exists()
    assert store.exists()


def test_namespace_and_sas_key_over_tls_are_reported(tmp_path: Path) -> None:
    ca, cert, key = make_tls_certs(tmp_path)
    policies = [Policy("sender", SEND_KEY, {"Send"})]
    with LocalHub(
        hubs={"profiles": 4}, tls_cert=str(cert), tls_key=str(key), policies=policies
    ) as tls_hub:
        endpoint = f"sb://127.0.0.1:{tls_hub.tls_port}"
        config = {
            "namespace": "localhost",
            "eventhub_name": "profiles",
            "sas_key_name": "sender",
            "sas_key": SEND_KEY,
            "custom_endpoint_address": endpoint,
            "connection_verify": str(ca),
        }
        result = check(tmp_path, config)
        assert result.code == 0, result.stderr
        assert "namespace + SAS key, shared access key name 'sender'" in result.stdout
        assert "namespace:       localhost" in result.stdout
        assert f"custom endpoint: {endpoint}" in result.stdout
        assert f"TLS CA bundle:   {ca}" in result.stdout
        assert "event hub 'profiles' (default hub): 4 partitions" in result.stdout
        assert tls_hub.event_count("profiles") == 0


def test_the_config_is_read_as_a_run_reads_it(hub: LocalHub, tmp_path: Path) -> None:
    # Two files (the later wins) and the environment with --config=ENV.
    first, second = {"eventhub_name": "missing-hub"}, {"eventhub_name": "audit"}
    env = {"TARGET_AZURE_EVENTHUBS_CONNECTION_STRING": conn_str(hub)}
    result = check(tmp_path, first, second, env=env, extra=("--config=ENV",))
    assert result.code == 0, result.stderr
    assert "event hub 'audit' (default hub): 2 partitions" in result.stdout
    assert "missing-hub" not in result.stdout


def test_a_wrong_key(hub: LocalHub, tmp_path: Path) -> None:
    config = {"connection_string": conn_str(hub, key=WRONG_KEY), "eventhub_name": "profiles"}
    result = check(tmp_path, config)
    assert_fails_with(
        result,
        "Event Hubs refused the credentials for event hub 'profiles'",
        "key name 'sender'",
    )
    assert "event hub 'profiles' (default hub): FAILED" in result.stdout


def test_a_missing_hub(hub: LocalHub, tmp_path: Path) -> None:
    config = {
        "connection_string": conn_str(hub),
        "eventhub_name": "profiles",
        "stream_eventhubs": {"orders": "no-such-hub"},
    }
    result = check(tmp_path, config)
    assert_fails_with(result, "Cannot send to event hub 'no-such-hub'", "does not exist")
    assert "event hub 'profiles' (default hub): 4 partitions" in result.stdout


def test_a_listen_only_policy_has_no_send_right(hub: LocalHub, tmp_path: Path) -> None:
    config = {
        "connection_string": conn_str(hub, "listener", LISTEN_KEY),
        "eventhub_name": "profiles",
    }
    result = check(tmp_path, config)
    assert_fails_with(
        result, "key name 'listener'", "the credentials lack the Send right on this event hub"
    )
    assert hub.event_count("profiles") == 0


def test_an_unreachable_port(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {
        "connection_string": connection_string("127.0.0.1", port, "sender", SEND_KEY),
        "eventhub_name": "profiles",
    }
    result = check(tmp_path, config)
    assert_fails_with(result, "Cannot send to event hub 'profiles'", "Connection refused")


def test_the_emulator_flag_on_a_remote_host(tmp_path: Path) -> None:
    config = {
        "connection_string": "Endpoint=sb://contoso.servicebus.windows.net/;"
        f"SharedAccessKeyName=sender;SharedAccessKey={SEND_KEY};UseDevelopmentEmulator=true",
        "eventhub_name": "profiles",
    }
    result = check(tmp_path, config)
    assert_fails_with(
        result, "Configuration error: connection_string sets UseDevelopmentEmulator=true"
    )
    assert "event hub" not in result.stdout  # refused before any connection


def test_an_unwritable_dead_letter_path(hub: LocalHub, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = {
        "connection_string": conn_str(hub),
        "eventhub_name": "profiles",
        "on_invalid_record": "dead_letter",
        "dead_letter_path": str(blocker / "invalid.jsonl"),
    }
    result = check(tmp_path, config)
    assert_fails_with(result, f"dead_letter_path {blocker / 'invalid.jsonl'} cannot be appended")
    assert "invalid records: FAILED" in result.stdout
    assert "event hub 'profiles' (default hub): 4 partitions" in result.stdout
    assert blocker.read_text() == "not a folder"


def test_a_change_store_that_cannot_open(hub: LocalHub, tmp_path: Path) -> None:
    store = tmp_path / "changes.sqlite"
    store.write_bytes(b"this is not a SQLite database, " * 100)
    config = {
        "connection_string": conn_str(hub),
        "eventhub_name": "profiles",
        "change_tracking": True,
        "change_store": f"sqlite:///{store}",
    }
    result = check(tmp_path, config)
    assert_fails_with(result, f"change store sqlite:///{store}: cannot open")
    assert "change tracking: FAILED" in result.stdout
    with pytest.raises(sqlite3.DatabaseError):  # left as it was
        sqlite3.connect(store).execute("SELECT 1 FROM sqlite_master").fetchall()
