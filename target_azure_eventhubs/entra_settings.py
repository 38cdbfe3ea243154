"""The Entra ID settings beyond `use_entra_id`, `tenant_id`, `client_id` and `client_secret`
(see `target_azure_eventhubs.delivery.entra`, which uses them)."""

from __future__ import annotations

from singer_sdk import typing as th

from target_azure_eventhubs.delivery.entra import CREDENTIAL_KINDS
from target_azure_eventhubs.registry_settings import REGISTRY_SETTINGS

ENTRA_SETTINGS = th.PropertiesList(
    th.Property(
        "credential_kind",
        th.StringType(allowed_values=list(CREDENTIAL_KINDS)),
        description="Which Entra ID credential `use_entra_id` uses: `client_secret`, "
        "`certificate`, `managed_identity` (`client_id` picks a user-assigned identity), "
        "`workload_identity` (`AZURE_FEDERATED_TOKEN_FILE`), or `default` "
        "(`DefaultAzureCredential`). Unset: `client_secret` or `certificate` when their "
        "setting is given, else `default`.",
    ),
    th.Property(
        "client_certificate_path",
        th.StringType(),
        description="PEM or PKCS#12 file holding the principal's certificate and private key "
        "(the `certificate` credential).",
    ),
    th.Property(
        "client_certificate_password",
        th.StringType(),
        secret=True,
        description="Password of client_certificate_path's private key, if it has one.",
    ),
    th.Property(
        "authority_host",
        th.StringType(),
        description="Entra ID authority: `AzurePublicCloud` (the default), "
        "`AzureGovernment`, `AzureChina`, or an `https://` URL. A bare `namespace` name takes "
        "that cloud's suffix. Instance discovery is off: no request goes to another cloud.",
    ),
    # Schema Registry takes Entra ID tokens only: its settings follow the credential's.
    *REGISTRY_SETTINGS,
)
