"""The command lines: the local hub started with `--entra` (principals given as arguments,
its addresses printed), and the installed target command authenticating with the managed
identity it serves; exit code, STATE and the events read back are checked."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import Any

import pytest
from eventhubs_localhub import LocalHubProcess

from tests.entra.support import (
    READER_APP,
    READER_SECRET,
    environment,
    expected_segments,
    read_events,
    segments,
    singer_input,
)
from tests.integration.target_runner import run_target

pytestmark = pytest.mark.slow


def test_the_target_command_with_the_managed_identity_of_the_hub_command(
    tmp_path: Path,
) -> None:
    args = [
        "--entra",
        "--entra-dir",
        str(tmp_path / "entra"),
        "--entra-managed-identity",
        "mi-cli",
        "--entra-app",
        f"{READER_APP}/receiver:{READER_SECRET}",
    ]
    with LocalHubProcess(hubs={"cli": 2}, tls_port=0, extra_args=args) as hub:
        printed = dict(line.split(" ", 1) for line in hub.startup_lines if " " in line)
        authority, tenant = printed["ENTRA"].split()
        ca = printed["ENTRA_CA"]
        endpoint = f"sb://127.0.0.1:{hub.tls_port}"
        config: dict[str, Any] = {
            "use_entra_id": True,
            "credential_kind": "managed_identity",
            "namespace": "localhost",
            "eventhub_name": "cli",
            "custom_endpoint_address": endpoint,
            "connection_verify": ca,
        }
        env = environment(
            IDENTITY_ENDPOINT=printed["IDENTITY_ENDPOINT"],
            IDENTITY_HEADER=printed["IDENTITY_HEADER"],
        )
        messages: list[dict[str, Any] | str] = list(singer_input("cli").splitlines())
        result = run_target(tmp_path, config, messages, timeout=60, env=env)
        assert result.returncode == 0, result.stderr
        assert result.states == [{"done": True}]
        assert hub.control("count cli") == "OK 3"
        events = read_events(authority, tenant, ca, endpoint, "cli", 3)
    assert segments(events) == expected_segments("cli")


def test_the_hub_command_with_entra_takes_the_tls_port_asked_for(tmp_path: Path) -> None:
    """`--entra` serves TLS with a certificate of its own: `tls_port=0` must still mean a
    free port, not the command's default 5671 (taken here, by this test or by another)."""
    with socket.socket() as holder:
        with contextlib.suppress(OSError):  # already taken: the same situation
            holder.bind(("127.0.0.1", 5671))
            holder.listen()
        args = ["--entra", "--entra-dir", str(tmp_path / "entra")]
        with LocalHubProcess(hubs={"cli": 1}, tls_port=0, extra_args=args) as hub:
            assert hub.tls_port not in (None, 0, 5671)
