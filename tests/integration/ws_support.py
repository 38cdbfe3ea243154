"""What the WebSocket and HTTP proxy tests share: a wss hub, its input and its connection log."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eventhubs_localhub import LocalHub

from target_azure_eventhubs.testing import read_all
from tests.certs import make_tls_certs
from tests.integration.target_runner import MEMBERSHIP_PROPERTIES, record, schema, state

STREAM = "memberships"
SAS_KEY_NAME = "sender"
SAS_KEY = "WsSendKeyNeverPrinted-3f9a1c"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY")
_OPENED = re.compile(r"connection opened from (\S+):\d+ over (\w+)")


def clear_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Targets started by the test inherit no proxy variable of the machine."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@contextmanager
def wss_hub(tmp_path: Path) -> Iterator[tuple[LocalHub, Path]]:
    """A hub serving wss:// (and TCP), with a send-only policy; yields (hub, CA bundle)."""
    from eventhubs_localhub import Policy

    ca, cert, key = make_tls_certs(tmp_path)
    policies = [
        Policy("RootManageSharedAccessKey", "manage-key"),
        Policy(SAS_KEY_NAME, SAS_KEY, {"Send"}),
    ]
    with LocalHub(
        hubs={"profiles": 4}, tls_cert=str(cert), tls_key=str(key), policies=policies, ws_port=0
    ) as hub:
        yield hub, ca


def wss_config(hub: LocalHub, ca: Path, **extra: Any) -> dict[str, Any]:
    """SAS key settings for the wss listener, as for a real namespace (TLS verified)."""
    return {
        "namespace": "localhost",
        "eventhub_name": "profiles",
        "sas_key_name": SAS_KEY_NAME,
        "sas_key": SAS_KEY,
        "connection_verify": str(ca),
        "identity_fields": {"email": "email_lc_sha256", "profile_id": "crmId"},
        "max_latency_ms": 200,
        **hub.ws_settings(),
        **extra,
    }


def manage_connection_string(hub: LocalHub) -> str:
    return hub.connection_string("profiles").replace(
        f"SharedAccessKeyName={hub.key_name};SharedAccessKey={hub.key}",
        "SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=manage-key",
    )


def memberships(count: int, state_every: int = 10) -> list[Any]:
    """`count` profiles with one membership each, a STATE after every `state_every`."""
    messages: list[Any] = [schema(STREAM, MEMBERSHIP_PROPERTIES, ["profile_id"])]
    for i in range(count):
        row = {"profile_id": f"p{i:04d}", "email": f"p{i}@example.com", "segment_id": f"s{i % 5}"}
        messages.append(record(STREAM, {**row, "status": "realized"}))
        if (i + 1) % state_every == 0 or i + 1 == count:
            messages.append(state({"done": i + 1}))
    return messages


def assert_states_cover(states: list[dict[str, Any]], count: int) -> None:
    """The STATEs of a complete run of `memberships(count)`: increasing, the last one last."""
    done = [s["done"] for s in states]
    assert done and done == sorted(set(done)) and done[-1] == count, done


def expected_profiles(count: int) -> list[str]:
    return [f"p{i:04d}" for i in range(count)]


def arrived_profiles(hub: LocalHub) -> list[str]:
    """The crmId of every event in the hub, read back with the official consumer (TCP)."""
    events = read_all(manage_connection_string(hub))
    return sorted(json.loads(e.body)["identityMap"]["crmId"][0]["id"] for e in events)


def peers(log_text: str, transport: str) -> list[str]:
    """The peer address of every connection the hub logged opening over `transport`."""
    return [host for host, over in _OPENED.findall(log_text) if over == transport]
