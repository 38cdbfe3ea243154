"""Membership statuses and their synonyms, and segment ids."""

from __future__ import annotations

from typing import Any

import pytest

from target_azure_eventhubs.events import (
    InvalidRecordError,
    convert_record,
    normalise_status,
)
from tests.unit.events.support import (
    DEFAULT,
    RAW_EMAIL,
    SYNONYMS,
    event_of,
    members,
    reject,
)


@pytest.mark.parametrize(("raw", "expected"), sorted(SYNONYMS.items()))
@pytest.mark.parametrize("dress", [str, str.upper, str.title, lambda v: f"  {v}\t"])
def test_status_synonyms(raw: str, expected: str, dress: Any) -> None:
    assert normalise_status(dress(raw)) == expected
    record = {"email": "a@example.com", "segment_id": "s", "status": dress(raw)}
    assert members(event_of(record))["s"]["status"] == expected


@pytest.mark.parametrize("bad", ["", "enabled", "realised", None, 1, True, ["realized"], {}])
def test_invalid_statuses(bad: Any) -> None:
    with pytest.raises(InvalidRecordError) as info:
        normalise_status(bad)
    assert "realized, existing, exited" in info.value.reason
    if bad not in ("", None):
        reason = reject({"email": RAW_EMAIL, "segment_id": "s", "status": bad})
        assert repr(bad)[:20] in reason and "'s'" in reason


def test_missing_status_is_invalid() -> None:
    assert "no status" in reject({"email": RAW_EMAIL, "segment_id": "s1"})
    assert "no status" in reject({"email": RAW_EMAIL, "segments": [{"id": "s1"}]})
    assert "no status" in reject(
        {"email": RAW_EMAIL, "segmentMembership": {"ups": {"s1": {"lastQualificationTime": 0}}}}
    )


def test_status_without_segment_id_is_invalid() -> None:
    assert "segment_id" in reject({"email": RAW_EMAIL, "status": "realized"})


@pytest.mark.parametrize("bad_id", ["", "   ", True, 1.5, ["s"]])
def test_bad_segment_ids(bad_id: Any) -> None:
    reason = reject({"email": RAW_EMAIL, "segment_id": bad_id, "status": "realized"})
    assert "segment id" in reason
    reason = reject({"email": RAW_EMAIL, "segments": [{"id": bad_id, "status": "realized"}]})
    assert "segment id" in reason


def test_int_segment_id_becomes_string() -> None:
    record = {"email": "a@example.com", "segment_id": 42, "status": "realized"}
    assert convert_record(record, DEFAULT).segment_ids() == ["42"]
