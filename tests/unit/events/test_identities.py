"""Identities: normalising, hashing, and records without any."""

from __future__ import annotations

from decimal import Decimal

from target_azure_eventhubs.events import (
    ConversionSettings,
    convert_record,
    hash_identity,
)
from tests.unit.events.support import (
    EMAIL_HASH,
    PHONE_HASH,
    RAW_EMAIL,
    event_of,
    reject,
    sha,
)

# ---------------------------------------------------------------------------- identities


def test_email_hash_vector() -> None:
    assert hash_identity("email_lc_sha256", RAW_EMAIL) == EMAIL_HASH
    assert hash_identity("email_lc_sha256", "john.doe@example.com") == EMAIL_HASH


def test_already_hashed_passes_through_lower_cased() -> None:
    assert hash_identity("email_lc_sha256", EMAIL_HASH.upper()) == EMAIL_HASH
    assert hash_identity("email_lc_sha256", f" {EMAIL_HASH} ") == EMAIL_HASH
    assert hash_identity("phone_sha256", PHONE_HASH.upper()) == PHONE_HASH


def test_phone_normalisation() -> None:
    assert hash_identity("phone_sha256", "+1 (555) 010-9999") == PHONE_HASH
    assert hash_identity("phone_sha256_e164", " +1.555.010.9999 ") == PHONE_HASH
    assert hash_identity("mobile_phone_sha256", "+15550109999") == PHONE_HASH
    assert hash_identity("phone_sha256", "(555) 010-9999") == sha("5550109999")
    assert hash_identity("phone_sha256", "n/a") == ""
    assert hash_identity("custom_sha256_e164", "+1 555 010 9999") == PHONE_HASH


def test_other_hashed_and_plain_namespaces() -> None:
    assert hash_identity("loyalty_sha256", " AbC ") == sha("abc")
    assert hash_identity("crmId", " AbC ") == "AbC"


def test_identity_values_lists_numbers_duplicates_and_order() -> None:
    s = ConversionSettings(
        allow_events_without_memberships=True,
        identity_fields={
            "email": "email_lc_sha256",
            "email2": "email_lc_sha256",
            "crm_id": "crmId",
            "phone": "phone_sha256",
        },
    )
    record = {
        "email": [RAW_EMAIL, None, "", "other@example.com"],
        "email2": "JOHN.DOE@example.com",
        "crm_id": Decimal("12345"),
        "phone": 15550109999,
    }
    profile = convert_record(record, s)
    assert profile.identities == {
        "email_lc_sha256": [EMAIL_HASH, sha("other@example.com")],
        "crmId": ["12345"],
        "phone_sha256": [sha("15550109999")],
    }
    assert profile.first_identity() == f"email_lc_sha256:{EMAIL_HASH}"
    assert event_of(record, s)["identityMap"]["crmId"] == [{"id": "12345"}]


def test_no_identity_is_invalid() -> None:
    reason = reject({"first_name": "A", "email": "   ", "segment_id": "s", "status": "realized"})
    assert reason.startswith("no identity")
    assert "email, phone, ecid, crm_id" in reason


def test_unsupported_identity_type_reason_withholds_value() -> None:
    reason = reject({"email": {"address": RAW_EMAIL}})
    assert "email" in reason and "dict" in reason
    assert "unsupported type bool" in reject({"email": True})
