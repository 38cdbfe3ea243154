"""Scenario 6 and the security checks: refused credentials, a missing hub, least privilege,
unauthenticated attaches, and secrets kept out of every output.

`UseDevelopmentEmulator=true` on a remote host is refused: covered by
tests/integration/test_target_cli.py::test_emulator_flag_for_a_remote_host_is_refused.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from azure.eventhub._pyamqp import SendClient
from azure.eventhub._pyamqp.authentication import SASLAnonymousCredential
from azure.eventhub._pyamqp.error import AMQPLinkError
from azure.eventhub._pyamqp.message import Message
from eventhubs_localhub import Policy

from tests.integration.target_runner import TARGET, run_seconds
from tests.reliability.checks import (
    HUB,
    KEY_NAME,
    SECRET_KEY,
    assert_clear_error,
    assert_no_secrets,
    check_delivery,
    local_hub,
    make_workload,
    run_target,
    target_config,
)

WRONG_KEY = "WRONG-KEY-never-printed-Hq3Lr8Zt5Yc1"


def test_wrong_sas_key_fails_fast_naming_the_key_name_only(tmp_path: Path) -> None:
    workload = make_workload(20, state_every=10)
    with local_hub() as hub:
        conn = hub.connection_string().replace(SECRET_KEY, WRONG_KEY)
        assert WRONG_KEY in conn
        result = run_target(tmp_path, target_config(conn), workload.messages)
        assert_clear_error(result)
        assert run_seconds(result.stderr) < 5, result.stderr[-3000:]
        assert f"'{KEY_NAME}'" in result.stderr
        assert "refused" in result.stderr
        assert_no_secrets(
            {"stdout": result.stdout, "stderr": result.stderr},
            (WRONG_KEY, WRONG_KEY[:12], WRONG_KEY[-12:]),
        )
        check_delivery(
            "6 wrong SAS key",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=False,
        )
    assert result.states == []


def test_missing_event_hub_fails_fast_naming_it(tmp_path: Path) -> None:
    workload = make_workload(20, state_every=10)
    with local_hub() as hub:
        config = target_config(hub.connection_string(), eventhub_name="no-such-hub")
        result = run_target(tmp_path, config, workload.messages)
        assert_clear_error(result)
        assert run_seconds(result.stderr) < 5, result.stderr[-3000:]
        assert "'no-such-hub'" in result.stderr
        check_delivery(
            "6 missing event hub",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=False,
        )
    assert result.states == []


def test_a_send_only_policy_is_enough(tmp_path: Path) -> None:
    send_key = "SEND-ONLY-KEY-Vn6Pq2Xs9Lm4"
    policies = [Policy(KEY_NAME, SECRET_KEY), Policy("send-only", send_key, frozenset({"Send"}))]
    workload = make_workload(100, state_every=25)
    with local_hub(policies=policies) as hub:
        conn = hub.connection_string().replace(
            f"SharedAccessKeyName={KEY_NAME}", "SharedAccessKeyName=send-only"
        )
        conn = conn.replace(SECRET_KEY, send_key)
        result = run_target(tmp_path, target_config(conn), workload.messages)
        assert_no_secrets(
            {"stdout": result.stdout, "stderr": result.stderr}, (send_key, send_key[:12])
        )
        # Read back with the Manage (Listen) key: the target never needed more than Send.
        check_delivery(
            "security: Send-only policy",
            workload,
            result,
            hub.connection_string(),
            tmp_path=tmp_path,
            expect_success=True,
        )
    assert "'send-only'" in result.stderr


def test_the_hub_refuses_an_attach_without_a_token() -> None:
    class _NoCbs:  # SASL ANONYMOUS and no CBS put-token at all
        auth_type = "none"
        sasl = SASLAnonymousCredential()

    with local_hub() as hub:
        client = SendClient(
            "127.0.0.1",
            f"amqps://127.0.0.1/{HUB}/Partitions/0",
            auth=_NoCbs(),
            custom_endpoint_address=f"amqp://127.0.0.1:{hub.port}",
            use_tls=False,
            retry_total=0,
        )
        try:
            client.open()
            with pytest.raises(AMQPLinkError, match="unauthorized-access"):
                client.send_message(Message(data=[b"sneaky"]))
        finally:
            client.close()
        assert hub.event_count(HUB) == 0


@pytest.mark.parametrize("about_format", [None, "json", "markdown"])
def test_about_does_not_print_the_configured_secrets(
    tmp_path: Path, about_format: str | None
) -> None:
    config = target_config(
        f"Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName={KEY_NAME};"
        f"SharedAccessKey={SECRET_KEY};UseDevelopmentEmulator=true",
        client_secret=SECRET_KEY,
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    command = [*TARGET, "--about", "--config", str(path)]
    if about_format:
        command.append(f"--format={about_format}")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "connection_string" in proc.stdout  # it did describe the settings
    assert_no_secrets({"--about stdout": proc.stdout, "--about stderr": proc.stderr})
