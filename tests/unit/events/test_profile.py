"""ProfileEvent: merging the rows of one profile."""

from __future__ import annotations

from target_azure_eventhubs.events import (
    ProfileEvent,
    convert_record,
)
from tests.unit.events.support import (
    DEFAULT,
    EMAIL_HASH,
    RAW_EMAIL,
)

# ---------------------------------------------------------------------------- merging


def test_merge_later_row_wins_and_identities_union() -> None:
    first = convert_record(
        {
            "email": RAW_EMAIL,
            "ecid": "e1",
            "first_name": "A",
            "last_name": "Old",
            "segment_id": "s1",
            "status": "realized",
            "last_qualification_time": 0,
        },
        DEFAULT,
    )
    second = convert_record(
        {
            "email": "john.doe@example.com",
            "ecid": "e2",
            "last_name": "New",
            "segment_id": "s2",
            "status": "existing",
        },
        DEFAULT,
    )
    third = convert_record({"crm_id": "c1", "segment_id": "s1", "status": "exited"}, DEFAULT)
    first.merge(second)
    first.merge(third)
    assert first.identities == {
        "email_lc_sha256": [EMAIL_HASH],
        "ecid": ["e1", "e2"],
        "crmId": ["c1"],
    }
    assert first.memberships == {"s1": {"status": "exited"}, "s2": {"status": "existing"}}
    assert first.attributes == {"person": {"name": {"firstName": "A", "lastName": "New"}}}
    assert first.segment_ids() == ["s1", "s2"]


def test_merge_does_not_alias_the_later_profile() -> None:
    base = ProfileEvent({"ecid": ["1"]}, {}, {})
    later = ProfileEvent({"ecid": ["2"]}, {"person": {"name": {"firstName": "A"}}}, {})
    base.merge(later)
    base.merge(ProfileEvent({}, {"person": {"name": {"lastName": "B"}}}, {}))
    assert later.attributes == {"person": {"name": {"firstName": "A"}}}
    assert later.identities == {"ecid": ["2"]}
    assert base.attributes == {"person": {"name": {"firstName": "A", "lastName": "B"}}}


def test_first_identity_none_when_empty() -> None:
    assert ProfileEvent().first_identity() is None
    assert ProfileEvent({"x": [], "ecid": ["1"]}).first_identity() == "ecid:1"
