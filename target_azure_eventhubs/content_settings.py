"""Settings of the mapping beyond the basic fields (`settings.CONTENT_SETTINGS`): which
namespaces are hashed, identities given as a list, segment namespaces per row or per
stream, and whether events may carry no membership. `events.ConversionSettings` reads and
checks them."""

from __future__ import annotations

from singer_sdk import typing as th

from target_azure_eventhubs.events.namespaces import HASH_KINDS

NAMESPACE_SETTINGS = th.PropertiesList(
    th.Property(
        "hashed_identity_namespaces",
        th.CustomType(
            {
                "type": ["array", "object", "null"],
                "items": {"type": "string"},
                "additionalProperties": {"type": "string", "enum": list(HASH_KINDS)},
            }
        ),
        description="Identity namespaces, custom ones included, whose values are normalised "
        "and sent as SHA-256 whatever their name: a list (hashed like email: trimmed, "
        'lower-cased) or an object namespace -> `"email"` or `"phone"` (digits and a '
        "leading +). Matched without regard to case; namespaces ending in `_sha256` are "
        "hashed anyway.",
    ),
    th.Property(
        "identity_list_field",
        th.StringType(),
        description='Field holding identities as a list of `{"namespace": ..., "id": ...}` '
        'items (`namespace` may also be `{"code": ...}`); merged with identityMap and '
        "identity_fields.",
    ),
    th.Property(
        "segment_namespace_field",
        th.StringType(),
        description="Field naming each row's segment namespace (e.g. `CustomerAudienceUpload`); "
        "empty: the stream's. Rows of one profile in different namespaces make one event.",
    ),
    th.Property(
        "stream_segment_namespaces",
        th.ObjectType(additional_properties=th.StringType()),
        description="Stream name -> segment namespace of its memberships, instead of "
        "segment_namespace.",
    ),
)

MAPPING_CHECK_SETTINGS = th.PropertiesList(
    th.Property(
        "allow_events_without_memberships",
        th.BooleanType(),
        default=False,
        description="Send profile and identity updates without segment memberships. Off: a "
        "stream whose first record has none of the membership fields (segment_id_field, "
        "segments_field, `segmentMembership`) stops the run, and a record in which none of "
        "them has a value is invalid (on_invalid_record).",
    ),
)
