"""Property tests over generated records: conversion, hashing, statuses and times."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from target_azure_eventhubs.events import (
    STATUSES,
    ConversionSettings,
    InvalidRecordError,
    build_event,
    convert_record,
    encode_event,
    hash_identity,
    normalise_status,
    to_iso_utc,
)
from tests.unit.events.support import (
    SYNONYMS,
    sha,
)

# ---------------------------------------------------------------------------- properties

emails = st.builds(
    lambda user, domain, pad: f"{pad}{user}@{domain}.com{pad}",
    st.text(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+", min_size=3, max_size=20
    ),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=12),
    st.sampled_from(["", " ", "  \t"]),
)
status_words = st.sampled_from(sorted(SYNONYMS)).flatmap(
    lambda w: st.sampled_from([w, w.upper(), f" {w.title()} "])
)
times = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=4_102_444_800),
    st.integers(min_value=100_000_000_000, max_value=4_102_444_800_000),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.dates(min_value=date(1971, 1, 1), max_value=date(2100, 1, 1)),
)
segment_ids = st.one_of(
    st.uuids().map(str),
    st.integers(min_value=0, max_value=10**6),
    st.text(min_size=1, max_size=12).filter(str.strip),
)
attribute_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63),
        st.decimals(allow_nan=False, allow_infinity=False, places=3),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
        st.dates(),
        st.datetimes(),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def records(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    email = draw(emails)
    record: dict[str, Any] = {"email": email}
    if draw(st.booleans()):
        record["ecid"] = str(draw(st.integers(min_value=0)))
    for name in ("first_name", "last_name", "birth_date", "tier", "_sdc_sequence"):
        if draw(st.booleans()):
            record[name] = draw(attribute_values)
    shape = draw(st.sampled_from(["row", "list", "map", "shaped", "none"]))
    if shape == "row":
        record["segment_id"] = draw(segment_ids)
        record["status"] = draw(status_words)
        record["last_qualification_time"] = draw(times)
    elif shape == "list":
        record["segments"] = [
            {
                "id": draw(segment_ids),
                "status": draw(status_words),
                "last_qualification_time": draw(times),
            }
            for _ in range(draw(st.integers(0, 3)))
        ]
    elif shape == "map":
        record["segments"] = {
            str(draw(segment_ids)): {"status": draw(status_words)}
            for _ in range(draw(st.integers(0, 3)))
        }
    elif shape == "shaped":
        record["segmentMembership"] = {
            "ups": {
                str(draw(segment_ids)).strip(): {
                    "status": draw(status_words),
                    "lastQualificationTime": draw(times),
                }
            }
        }
        record["identityMap"] = {"email_lc_sha256": [{"id": email}]}
    return record, email


def _all_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_all_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _all_strings(v)]
    return [value] if isinstance(value, str) else []


@settings(max_examples=300, deadline=None)
@given(records(), st.booleans(), st.booleans())
def test_property_valid_records_encode_to_their_event(
    drawn: tuple[dict[str, Any], str], unmapped: bool, names: bool
) -> None:
    record, email = drawn
    s = ConversionSettings(
        allow_events_without_memberships=True,
        include_unmapped_attributes=unmapped,
        include_segment_names=names,
        include_segment_timestamps=True,
        segment_catalog={"known": {"name": "Known", "createdAt": 0}},
    )
    event = build_event(convert_record(record, s), s)
    body = encode_event(event)
    assert json.loads(body) == event
    assert list(event)[-2:] == ["segmentMembership", "identityMap"]
    for entry in event["segmentMembership"]["ups"].values():
        assert entry["status"] in STATUSES
        when = entry.get("lastQualificationTime")
        assert when is None or (when.endswith("Z") and to_iso_utc(when) == when)
    # The raw email never leaves: not in the body, not under the hashed namespace.
    assert email.strip() not in _all_strings(event)
    assert email.strip().encode() not in body
    assert event["identityMap"]["email_lc_sha256"][0]["id"] == sha(email.strip().lower())
    assert "_sdc_sequence" not in json.dumps(event)


@given(
    st.sampled_from(
        ["email_lc_sha256", "phone_sha256", "phone_sha256_e164", "x_sha256", "ecid", "crmId"]
    ),
    st.text(),
)
def test_property_hashing_is_idempotent(namespace: str, value: str) -> None:
    once = hash_identity(namespace, value)
    assert hash_identity(namespace, once) == once
    if namespace.endswith("_sha256") and once:
        assert len(once) == 64 and once == once.lower()
        int(once, 16)


@given(st.one_of(st.text(), st.integers(), st.none(), st.booleans()))
def test_property_status_is_always_allowed_or_rejected(value: Any) -> None:
    try:
        assert normalise_status(value) in STATUSES
    except InvalidRecordError as exc:
        assert "allowed" in exc.reason


@given(st.datetimes(min_value=datetime(1973, 3, 4), max_value=datetime(9000, 1, 1)))
def test_property_times_round_trip_through_epoch_ms(moment: datetime) -> None:
    iso = to_iso_utc(moment)
    assert iso is not None
    ms = (moment - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
    assert to_iso_utc(ms) == iso
    assert to_iso_utc(iso) == iso
