"""The target built inside another program, as test frameworks and orchestrators build it.

The command starts its sender process before anything else; a target built in-process
starts one only when it first opens an event hub, and ends it when its run ends. A target
that is built and never run (singer-sdk's standard tests build such targets) must leave no
process behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

from eventhubs_localhub import LocalHub

from target_azure_eventhubs.delivery import launcher
from target_azure_eventhubs.target import TargetAzureEventHubs
from target_azure_eventhubs.testing import read_all
from tests.integration.target_runner import record, schema, singer_lines, state
from tests.waiting import wait_until

SEGMENT = "6a1f0c55-3b3c-4a8a-9d2e-0f4b1c2d3e4f"


def _sender_processes() -> set[int]:
    """Live sender processes that are children of this test process."""
    me = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = stat.read_text().rsplit(")", 1)[1].split()[1]
            command = (stat.parent / "cmdline").read_bytes()  # empty once it has exited
        except (OSError, IndexError):
            continue
        if parent == me and launcher.CHILD_MODULE.encode() in command:
            found.add(int(stat.parent.name))
    return found


def _config(hub: LocalHub) -> dict[str, Any]:
    return {
        "connection_string": hub.connection_string(),
        "eventhub_name": "profiles",
        "identity_fields": {"customer_id": "crmId"},
        "max_latency_ms": 200,
    }


def _input(customers: int) -> str:
    properties = {name: {"type": "string"} for name in ("customer_id", "segment_id", "status")}
    rows = (
        {"customer_id": f"cust-{n}", "segment_id": SEGMENT, "status": "realized"}
        for n in range(customers)
    )
    return singer_lines(
        [
            schema("members", properties, []),
            *(record("members", row) for row in rows),
            state({"bookmarks": {"members": {"n": customers}}}),
        ]
    )


def _wait_until_gone(pids: set[int], seconds: float = 5.0) -> set[int]:
    wait_until(lambda: not pids & _sender_processes(), seconds)
    return pids & _sender_processes()


def test_a_target_built_and_never_run_starts_no_sender_process(local_hub: LocalHub) -> None:
    before = _sender_processes()
    targets = [TargetAzureEventHubs(config=_config(local_hub)) for _ in range(3)]
    assert all(target.settings.sender_process for target in targets)
    assert _sender_processes() == before
    assert local_hub.events("profiles") == []


def test_an_in_process_run_sends_through_a_sender_process_it_then_ends(
    local_hub: LocalHub,
) -> None:
    before = _sender_processes()
    target = TargetAzureEventHubs(config=_config(local_hub))
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        target.listen(io.StringIO(_input(5)))
    pid = target.delivery._process.pid  # the sender process the run started when it opened the hub
    assert pid not in before
    assert _wait_until_gone({pid}) == set()  # ended with the run
    assert _sender_processes() == before
    events = read_all(local_hub.connection_string(), "profiles", timeout=30)
    bodies = sorted(
        (json.loads(e.body) for e in events), key=lambda b: b["identityMap"]["crmId"][0]["id"]
    )
    assert [b["identityMap"]["crmId"][0]["id"] for b in bodies] == [f"cust-{n}" for n in range(5)]
    assert all(b["segmentMembership"]["ups"][SEGMENT]["status"] == "realized" for b in bodies)
    assert [json.loads(line) for line in stdout.getvalue().splitlines()] == [
        {"bookmarks": {"members": {"n": 5}}}
    ]
