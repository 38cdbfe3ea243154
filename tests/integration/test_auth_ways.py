"""Each way of authenticating, against the local hub's TLS listener (no emulator flag)."""

from __future__ import annotations

import io
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from eventhubs_localhub import LocalHub, Policy

from target_azure_eventhubs.target import TargetAzureEventHubs
from target_azure_eventhubs.testing import read_all
from tests.certs import make_tls_certs
from tests.integration.target_runner import (
    MEMBERSHIP_PROPERTIES,
    record,
    run_target,
    schema,
    singer_lines,
    state,
)

STREAM = "memberships"
SAS_KEY = "TlsSendOnlyKeyNeverPrinted789="
MESSAGES: list[Any] = [
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


class StaticCredential:
    """An azure-core TokenCredential handing out one fixed token, as Entra ID would."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def tls_hub(tmp_path: Path) -> Iterator[tuple[LocalHub, Path]]:
    ca, cert, key = make_tls_certs(tmp_path)
    policies = [
        Policy("RootManageSharedAccessKey", "manage-key"),
        Policy("sender", SAS_KEY, {"Send"}),
    ]
    with LocalHub(
        hubs={"profiles": 4},
        tls_cert=str(cert),
        tls_key=str(key),
        policies=policies,
        accepted_bearer_tokens={"entra-token-for-target": {"Send"}},
    ) as hub:
        yield hub, ca


def tls_options(hub: LocalHub, ca: Path) -> dict[str, Any]:
    return {
        "custom_endpoint_address": f"sb://127.0.0.1:{hub.tls_port}",
        "connection_verify": str(ca),
    }


def run_in_process(config: dict[str, Any]) -> int:
    """Run the target in this process (a credential object cannot go through a file)."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return TargetAzureEventHubs(config=config).run(io.StringIO(singer_lines(MESSAGES)))
    finally:  # the target installs its own handlers; give pytest its own back
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def arrived_segments(hub: LocalHub) -> list[str]:
    conn = hub.connection_string("profiles").replace(
        f"SharedAccessKeyName={hub.key_name};SharedAccessKey={hub.key}",
        "SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=manage-key",
    )
    return sorted(e.properties["segment_ids"] for e in read_all(conn))


def test_namespace_and_sas_key_over_tls(tls_hub: tuple[LocalHub, Path], tmp_path: Path) -> None:
    hub, ca = tls_hub
    config = {
        "namespace": "localhost",
        "eventhub_name": "profiles",
        "sas_key_name": "sender",
        "sas_key": SAS_KEY,
        **tls_options(hub, ca),
    }
    result = run_target(tmp_path, config, MESSAGES)
    assert result.returncode == 0, result.stderr
    assert result.states == [{"done": True}]
    assert arrived_segments(hub) == ["s1", "s2"]
    assert SAS_KEY not in result.stdout + result.stderr


def test_tls_without_the_ca_bundle_is_refused(
    tls_hub: tuple[LocalHub, Path], tmp_path: Path
) -> None:
    hub, _ca = tls_hub
    config = {
        "namespace": "localhost",
        "eventhub_name": "profiles",
        "sas_key_name": "sender",
        "sas_key": SAS_KEY,
        "custom_endpoint_address": f"sb://127.0.0.1:{hub.tls_port}",
        "max_retries": 0,
    }
    result = run_target(tmp_path, config, MESSAGES, timeout=60)
    assert result.returncode == 1
    assert "certificate" in result.stderr.lower()
    assert hub.event_count("profiles") == 0


@pytest.mark.parametrize("sender_process", [True, False])
def test_entra_id_with_a_credential_object(
    tls_hub: tuple[LocalHub, Path], capsys: pytest.CaptureFixture[str], sender_process: bool
) -> None:
    # The hub accepts only this bearer token, so events arriving prove it was used (with a
    # sender process, a copy of the credential object is used there).
    hub, ca = tls_hub
    credential = StaticCredential("entra-token-for-target")
    config = {
        "use_entra_id": True,
        "namespace": "localhost",
        "eventhub_name": "profiles",
        "_credential": credential,
        "sender_process": sender_process,
        **tls_options(hub, ca),
    }
    code = run_in_process(config)
    assert code == 0
    assert credential.calls >= (0 if sender_process else 1)
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [{"done": True}]
    assert arrived_segments(hub) == ["s1", "s2"]


def test_entra_id_with_an_unknown_token_fails_clearly(
    tls_hub: tuple[LocalHub, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    hub, ca = tls_hub
    config = {
        "use_entra_id": True,
        "namespace": "localhost",
        "eventhub_name": "profiles",
        "_credential": StaticCredential("forged"),
        **tls_options(hub, ca),
    }
    code = run_in_process(config)
    assert code == 1
    assert capsys.readouterr().out == ""  # no STATE
    assert hub.event_count("profiles") == 0
