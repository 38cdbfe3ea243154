"""A token that expires while the run has nothing to send: the SDK refreshes a connection's
token only while it works, so after an idle spell longer than the token's life the hub
has detached the link. The next send must reconnect with a fresh token, not fail the run."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.core.support import SCHEMA, lines, row, state_line
from tests.entra.support import SECRET, SECRET_APP, EntraHub, run_in_process, segments

pytestmark = pytest.mark.slow

LIFETIME = 10.0  # seconds a token lives here
IDLE = LIFETIME + 3.0  # the tap reads nothing for longer than that


class InputWithAnIdleSpell:
    """Singer input with a pause in the middle, as from a tap waiting on a slow source."""

    def __iter__(self) -> Iterator[str]:
        yield lines([SCHEMA])
        for i in range(6):
            if i == 3:
                time.sleep(IDLE)  # the behaviour under test is a duration: idle past a token
            yield lines([row(f"idle-p{i}", f"idle-s{i}")])
        yield lines([state_line('{"done": true}')])


def test_a_token_that_expired_while_idle_is_renewed_for_the_next_send(
    entra_hub: EntraHub, capsys: pytest.CaptureFixture[str]
) -> None:
    entra = entra_hub.entra
    entra.token_lifetime = LIFETIME
    try:
        config = entra_hub.config(
            "refresh",
            tenant_id=entra.tenant_id,
            client_id=SECRET_APP,
            client_secret=SECRET,
            max_latency_ms=100,
        )
        assert run_in_process(config, InputWithAnIdleSpell()) == 0
    finally:
        entra.token_lifetime = 3600
    assert capsys.readouterr().out.strip() == '{"done": true}'
    assert segments(entra_hub.read_back("refresh")) == sorted(f"idle-s{i}" for i in range(6))
