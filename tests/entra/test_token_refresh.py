"""A token refreshed in place: tokens that live 10 s, a run that sends for longer. The SDK
puts a fresh token on the CBS node of the open connection when a tenth of the old one's
lifetime is left (azure-identity fetches it: MSAL treats a token this close to expiry as
expired), so the hub never detaches a link for an expired token and every event arrives."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.core.support import SCHEMA, lines, row, state_line
from tests.entra.support import SECRET, SECRET_APP, EntraHub, run_in_process, segments

pytestmark = pytest.mark.slow

LIFETIME = 10.0  # the shortest with a refresh window: the SDK's is int(10% of the lifetime)
ROWS = 70
GAP = 0.2  # seconds between rows: ROWS * GAP spans more than one lifetime


class PacedInput:
    """Singer input that arrives a row at a time, as from a tap reading a slow source."""

    def __iter__(self) -> Iterator[str]:
        yield lines([SCHEMA])
        for i in range(ROWS):
            yield lines([row(f"refresh-p{i}", f"refresh-s{i}")])
            time.sleep(GAP)  # paced input: the run must outlive a token
        yield lines([state_line('{"done": true}')])


def test_sends_go_on_across_a_token_refresh(
    entra_hub: EntraHub, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="eventhubs_localhub")
    entra = entra_hub.entra
    issued = entra.tokens_issued
    entra.token_lifetime = LIFETIME
    try:
        config = entra_hub.config(
            "refresh",
            tenant_id=entra.tenant_id,
            client_id=SECRET_APP,
            client_secret=SECRET,
            max_latency_ms=100,
        )
        started = time.monotonic()
        assert run_in_process(config, PacedInput()) == 0
        assert time.monotonic() - started > LIFETIME * 1.2
    finally:
        entra.token_lifetime = 3600
    assert capsys.readouterr().out.strip() == '{"done": true}'
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "expired; detaching" in m]
    accepted = Counter(
        match.group(1)
        for m in messages
        if (match := re.match(r"token accepted on (\S+) for \S+/refresh ", m))
    )
    assert max(accepted.values()) >= 2, accepted  # a second token on the same connection
    assert entra.tokens_issued - issued >= 2
    expected = sorted(f"refresh-s{i}" for i in range(ROWS))
    assert segments(entra_hub.read_back("refresh")) == expected
