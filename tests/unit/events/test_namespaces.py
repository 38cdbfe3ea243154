"""Identity namespaces marked for hashing, identities given as a list of {namespace, id}
items, and segment namespaces per row and per stream (events.namespaces)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_azure_eventhubs.events import (
    ConversionSettings,
    InvalidRecordError,
    ProfileEvent,
    convert_record,
)
from target_azure_eventhubs.events.body import build_event
from target_azure_eventhubs.events.namespaces import hashed_namespaces, kind_lookup
from tests.unit.events.support import (
    EMAIL_HASH,
    PHONE_HASH,
    RAW_EMAIL,
    SEG,
    SEG2,
    event_of,
    reject,
    sha,
)

# Records about identities alone: profile updates without memberships are allowed.
MARKED = ConversionSettings(
    allow_events_without_memberships=True,
    identity_fields={"email": "Email", "phone": "Phone", "crm": "crmId"},
    hashed_identity_namespaces={"email": "email", "PHONE": "phone"},
)
LISTED = ConversionSettings(
    allow_events_without_memberships=True,
    identity_fields={"crm": "crmId"},
    identity_list_field="identities",
)
PER_ROW = ConversionSettings(
    allow_events_without_memberships=True,
    identity_fields={"crm": "crmId"},
    segment_namespace_field="segment_namespace",
)


# ------------------------------------------------------------------ hashed namespaces


def test_a_marked_custom_namespace_is_hashed_like_email_or_phone() -> None:
    event = event_of({"email": RAW_EMAIL, "phone": "+1 (555) 010-9999", "crm": "C1"}, MARKED)
    assert event["identityMap"] == {
        "Email": [{"id": EMAIL_HASH}],
        "Phone": [{"id": PHONE_HASH}],
        "crmId": [{"id": "C1"}],
    }


def test_a_list_marks_each_namespace_email_and_matching_ignores_case() -> None:
    s = ConversionSettings(
        allow_events_without_memberships=True,
        identity_fields={"m": "LoyaltyId"},
        hashed_identity_namespaces=["loyaltyid"],
    )
    assert event_of({"m": " AbC "}, s)["identityMap"] == {"LoyaltyId": [{"id": sha("abc")}]}
    assert s.is_hashed("LOYALTYID") and s.is_hashed("email_lc_sha256") and not s.is_hashed("ecid")


def test_marks_apply_to_identity_map_input_too() -> None:
    record = {"identityMap": {"email": [{"id": RAW_EMAIL}], "Ecid": [{"id": "E1"}]}}
    assert event_of(record, MARKED)["identityMap"] == {
        "email": [{"id": EMAIL_HASH}],
        "Ecid": [{"id": "E1"}],
    }


def test_without_marks_only_sha256_names_are_hashed() -> None:
    kind_of = kind_lookup({})
    assert [kind_of(n) for n in ("Email", "email_lc_sha256", "phone_sha256")] == [0, 1, 2]


def _identities(record: dict[str, Any], s: ConversionSettings) -> list[str] | str:
    try:
        return next(iter(convert_record(record, s).identities.values()))
    except InvalidRecordError as exc:
        return exc.reason.split(":")[0]


@given(st.text(max_size=40), st.sampled_from(["email", "phone"]))
def test_a_marked_namespace_hashes_as_its_builtin_twin(value: str, kind: str) -> None:
    builtin = "email_lc_sha256" if kind == "email" else "phone_sha256"
    plain = ConversionSettings(identity_fields={"v": builtin})
    marked = ConversionSettings(
        identity_fields={"v": "Custom"}, hashed_identity_namespaces={"Custom": kind}
    )
    assert _identities({"v": value}, marked) == _identities({"v": value}, plain)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Email": "sha1"}, "namespace 'Email' has kind 'sha1'; use 'email' or 'phone'"),
        (["Email", ""], "'' is not a namespace name"),
        (3, "must be a list of namespaces or an object namespace -> kind"),
        ("[nope", "must be a list or an object (or its JSON text)"),
    ],
)
def test_bad_marks_are_configuration_errors(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match="hashed_identity_namespaces") as info:
        ConversionSettings(hashed_identity_namespaces=value)
    assert message in str(info.value)


def test_marks_may_be_json_text() -> None:
    assert hashed_namespaces('["A"]') == {"A": "email"}
    assert hashed_namespaces('{"B": "phone"}') == {"B": "phone"}


# --------------------------------------------------------------------- identity lists


def test_list_items_join_identity_map_and_fields_in_that_order() -> None:
    record = {
        "identityMap": {"ecid": [{"id": "E1"}]},
        "identities": [
            {"namespace": "email_lc_sha256", "id": RAW_EMAIL, "primary": True},
            {"namespace": {"code": "ecid"}, "id": "E2", "authenticatedState": "ambiguous"},
            None,
            {"namespace": "ecid", "id": "E1"},
            {"namespace": "loyalty", "id": 42},
        ],
        "crm": "C1",
    }
    assert event_of(record, LISTED)["identityMap"] == {
        "ecid": [{"id": "E1"}, {"id": "E2"}],
        "email_lc_sha256": [{"id": EMAIL_HASH}],
        "loyalty": [{"id": "42"}],
        "crmId": [{"id": "C1"}],
    }


def test_list_items_follow_the_hashing_marks_and_may_be_json_text() -> None:
    s = ConversionSettings(
        allow_events_without_memberships=True,
        identity_list_field="ids",
        hashed_identity_namespaces=["Email"],
    )
    record = {"ids": '[{"namespace": "Email", "id": "  John.Doe@Example.COM "}]'}
    assert event_of(record, s)["identityMap"] == {"Email": [{"id": EMAIL_HASH}]}


def test_a_record_whose_only_identities_are_listed_is_valid_and_the_list_is_no_attribute() -> None:
    s = ConversionSettings(
        allow_events_without_memberships=True,
        identity_list_field="ids",
        include_unmapped_attributes=True,
    )
    event = event_of({"ids": [{"namespace": "ecid", "id": "E1"}], "tier": "gold"}, s)
    assert event == {
        "attributes": {"tier": "gold"},
        "segmentMembership": {"ups": {}},
        "identityMap": {"ecid": [{"id": "E1"}]},
    }
    assert "or the identity list ids" in reject({"ids": []}, s)


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        ("nope", "identity list field 'identities' is text but not JSON"),
        ({"namespace": "a"}, "identity list field 'identities' must be a list of"),
        (["x"], "identity list field 'identities' item 0 must be an object"),
        ([{"id": "1"}], "identity list field 'identities' item 0 has no namespace"),
        ([None, {"namespace": " ", "id": "1"}], "item 1 has no namespace"),
        ([{"namespace": {"id": "x"}, "id": "1"}], "item 0 has no namespace"),
        ([{"namespace": "ecid"}], "item 0 (namespace 'ecid') has no id"),
        ([{"namespace": "ecid", "id": " "}], "item 0 (namespace 'ecid') has no id"),
        ([{"namespace": "ecid", "id": {"v": 1}}], "item 0.id has a value of unsupported type"),
        ([{"namespace": "ecid", "id": True}], "item 0.id has a value of unsupported type bool"),
    ],
)
def test_malformed_list_items_make_the_record_invalid(items: Any, reason: str) -> None:
    assert reason in reject({"crm": "C1", "identities": items}, LISTED)


def test_a_malformed_item_never_quotes_its_value() -> None:
    assert "secret@example.com" not in reject(
        {"crm": "C1", "identities": [{"namespace": "email", "id": ["secret@example.com"]}]}, LISTED
    )


def test_the_list_field_cannot_also_be_an_identity_field() -> None:
    with pytest.raises(ValueError, match="identity_list_field 'email' is also in identity_fields"):
        ConversionSettings(identity_list_field="email")


# ------------------------------------------------------------------ segment namespaces


def row(seg: str, status: str, namespace: str | None = None) -> dict[str, Any]:
    return {"crm": "C1", "segment_id": seg, "status": status, "segment_namespace": namespace}


def test_a_row_names_its_namespace_and_an_empty_one_is_the_streams() -> None:
    event = event_of(row(SEG, "realized", "CustomerAudienceUpload"), PER_ROW)
    assert event["segmentMembership"] == {"CustomerAudienceUpload": {SEG: {"status": "realized"}}}
    for blank in (None, "", "ups", " "):
        assert event_of(row(SEG, "exited", blank), PER_ROW)["segmentMembership"] == {
            "ups": {SEG: {"status": "exited"}}
        }


def test_grouped_rows_of_several_namespaces_make_one_event() -> None:
    s = PER_ROW
    merged = convert_record(row(SEG, "realized", "CustomerAudienceUpload"), s)
    for later in (
        row(SEG, "existing"),
        row(SEG2, "realized", "CustomerAudienceUpload"),
        row(SEG, "exited", "CustomerAudienceUpload"),
        {"crm": "C1"},
    ):
        merged.merge(convert_record(later, s))
    assert build_event(merged, s)["segmentMembership"] == {
        "ups": {SEG: {"status": "existing"}},
        "CustomerAudienceUpload": {SEG: {"status": "exited"}, SEG2: {"status": "realized"}},
    }
    assert merged.segment_ids() == [SEG, SEG, SEG2]
    assert list(merged.all_memberships()) == [
        SEG,
        f"CustomerAudienceUpload:{SEG}",
        f"CustomerAudienceUpload:{SEG2}",
    ]


def test_an_identity_only_row_of_another_namespace_keeps_the_streams_empty_section() -> None:
    assert event_of({"crm": "C1", "segment_namespace": "X"}, PER_ROW)["segmentMembership"] == {
        "ups": {}
    }


def test_segment_membership_input_is_read_under_the_rows_namespace() -> None:
    record = {
        "identityMap": {"crmId": [{"id": "C1"}]},
        "segment_namespace": "CustomerAudienceUpload",
        "segmentMembership": {"CustomerAudienceUpload": {SEG: {"status": "realized"}}, "ups": {}},
    }
    assert event_of(record, PER_ROW)["segmentMembership"] == {
        "CustomerAudienceUpload": {SEG: {"status": "realized"}}
    }
    record["segmentMembership"] = {"ups": {SEG: {"status": "realized"}}}
    assert "accepted only under 'CustomerAudienceUpload' (segment_namespace_field)" in reject(
        record, PER_ROW
    )


def test_a_namespace_that_is_not_a_string_is_invalid() -> None:
    assert "field 'segment_namespace' must name a segment namespace (a string), got int" in (
        reject({**row(SEG, "realized"), "segment_namespace": 7}, PER_ROW)
    )


def test_a_stream_may_have_its_own_namespace() -> None:
    s = ConversionSettings(stream_segment_namespaces={"audiences": "CustomerAudienceUpload"})
    assert s.for_stream("profiles") is s
    audiences = s.for_stream("audiences")
    event = event_of({"email": RAW_EMAIL, "segment_id": SEG, "status": "realized"}, audiences)
    assert event["segmentMembership"] == {"CustomerAudienceUpload": {SEG: {"status": "realized"}}}
    per_row = ConversionSettings(
        segment_namespace_field="ns", stream_segment_namespaces={"audiences": "CAU"}
    ).for_stream("audiences")
    record = {"email": RAW_EMAIL, "segment_id": SEG, "status": "realized", "ns": "ups"}
    assert event_of(record, per_row)["segmentMembership"] == {"ups": {SEG: {"status": "realized"}}}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"stream_segment_namespaces": {"a": " "}}, "stream 'a' has an empty namespace"),
        ({"stream_segment_namespaces": ["a"]}, "stream_segment_namespaces must be an object"),
        ({"segment_namespace_field": ""}, "segment_namespace_field must be a non-empty string"),
        (
            {"segment_namespace_field": "ns", "require_status": False},
            "segment_namespace_field cannot be combined with change_tracking",
        ),
    ],
)
def test_bad_namespace_settings_are_configuration_errors(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ConversionSettings(**settings)


def test_from_config_reads_the_new_settings() -> None:
    s = ConversionSettings.from_config(
        {
            "hashed_identity_namespaces": ["Email"],
            "identity_list_field": "ids",
            "segment_namespace_field": "ns",
            "stream_segment_namespaces": {"a": "CAU"},
        }
    )
    assert (s.hashed_identity_namespaces, s.identity_list_field) == ({"Email": "email"}, "ids")
    assert (s.segment_namespace_field, s.stream_segment_namespaces) == ("ns", {"a": "CAU"})
    assert ConversionSettings.from_config({}) == ConversionSettings()


def test_a_profile_without_other_namespaces_is_unchanged() -> None:
    profile = ProfileEvent({"ecid": ["E1"]}, {}, {SEG: {"status": "realized"}})
    assert profile.others is None and profile.all_memberships() is profile.memberships
