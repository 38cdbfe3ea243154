"""Refusals, as the target's user sees them: one clear line naming the credential and the
hub, quickly, nothing sent and no STATE written (the target runs as a command, so that its
exit code and stdout are what is checked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.entra.support import READER_APP, READER_SECRET, SECRET_APP, EntraHub, singer_input
from tests.integration.target_runner import Result, run_seconds, run_target

pytestmark = pytest.mark.slow


def _run(entra_hub: EntraHub, tmp_path: Path, config: dict[str, Any]) -> Result:
    messages: list[dict[str, Any] | str] = list(singer_input("refused").splitlines())
    return run_target(tmp_path, config, messages, timeout=60, env=entra_hub.environment())


def _problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line or "| WARNING" in line]


def test_a_wrong_secret_is_one_clear_line_and_nothing_sent(
    entra_hub: EntraHub, tmp_path: Path
) -> None:
    wrong = "Not-The-Secret-0"
    config = entra_hub.config(
        "refused", tenant_id=entra_hub.entra.tenant_id, client_id=SECRET_APP, client_secret=wrong
    )
    result = _run(entra_hub, tmp_path, config)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""  # no STATE
    [line] = _problems(result.stderr)
    assert "Cannot send to event hub 'refused'" in line
    assert "client id 'secret-app'" in line
    assert "AADSTS7000215: Invalid client secret" in line
    assert wrong not in result.stderr
    assert run_seconds(result.stderr) < 10
    assert entra_hub.hub.event_count("refused") == 0


def test_a_principal_that_may_only_receive_is_not_authorised_to_send(
    entra_hub: EntraHub, tmp_path: Path
) -> None:
    # The token is good (the hub accepts it on $cbs); its role is Data Receiver, so the
    # sender link is refused.
    config = entra_hub.config(
        "refused",
        tenant_id=entra_hub.entra.tenant_id,
        client_id=READER_APP,
        client_secret=READER_SECRET,
    )
    result = _run(entra_hub, tmp_path, config)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    [line] = _problems(result.stderr)
    assert "Cannot send to event hub 'refused'" in line
    assert "client id 'reader-app'" in line
    assert "lack the Send right on this event hub" in line
    assert run_seconds(result.stderr) < 10
    assert entra_hub.hub.event_count("refused") == 0
