"""The tap's STATE comes back exactly as it was sent: no decoding, no re-encoding."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.core.support import SCHEMA, SENDER_PROCESS, Target, config, row, state_line

pytestmark = pytest.mark.slow  # runs the target as a subprocess

# Each as the tap wrote it, spacing included: a 17-digit decimal bookmark, a 30-digit
# integer, non-ASCII text (raw and escaped), nested empty objects and arrays.
VALUES = [
    '{"bookmarks": {"members": {"replication_key_value": 12345678901234567.89}}}',
    '{"bookmarks":{"members":{"id":123456789012345678901234567890,"neg":-98765432109876543210}}}',
    '{"cursor": "Zürich · 東京 😀", "escaped": "\\u00e9\\n", "e": 1E+400}',
    '{"a": {}, "b": {"c": {"d": {}}}, "l": [], "n": null, "t": true, "f": 0.1000000000000000055}',
]


@pytest.mark.parametrize("sender_process", SENDER_PROCESS)
def test_state_lines_are_relayed_byte_for_byte(
    tmp_path: Path, hub: LocalHub, sender_process: bool
) -> None:
    messages: list[dict | str] = [SCHEMA]
    for n, value in enumerate(VALUES):
        messages += [row(f"p{n}", f"r{n}"), state_line(value)]
    target = Target(tmp_path, config(hub, sender_process=sender_process))
    try:
        target.send(messages)
        target.close_input()
        assert target.wait(60) == 0, target.stderr
    finally:
        target.kill()
    written = target.states
    assert written, target.stderr
    assert written[-1] == VALUES[-1].encode()
    assert all(state in [v.encode() for v in VALUES] for state in written)
    assert hub.event_count("profiles") == len(VALUES)
