"""Microsoft Entra ID: which credential, and which authority (cloud). The settings are in
`target_azure_eventhubs.entra_settings` (this module is imported by the sender process,
which does not load singer-sdk).

Every credential is one of azure-identity's public classes. With an authority named (the
`authority_host` setting, or `AZURE_AUTHORITY_HOST`), instance discovery is off: MSAL would
otherwise ask `login.microsoftonline.com` about any authority it does not know, so a
private or sovereign authority would still send a request to the public cloud first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential

from target_azure_eventhubs.errors import ConfigurationError

CLIENT_SECRET = "client_secret"
CERTIFICATE = "certificate"
MANAGED_IDENTITY = "managed_identity"
WORKLOAD_IDENTITY = "workload_identity"
DEFAULT = "default"
CREDENTIAL_KINDS = (CLIENT_SECRET, CERTIFICATE, MANAGED_IDENTITY, WORKLOAD_IDENTITY, DEFAULT)

PUBLIC_SUFFIX = ".servicebus.windows.net"
# Preset name (lower-case) -> (authority host, namespace suffix of that cloud).
CLOUDS: Mapping[str, tuple[str, str]] = {
    "azurepubliccloud": ("login.microsoftonline.com", PUBLIC_SUFFIX),
    "azuregovernment": ("login.microsoftonline.us", ".servicebus.usgovcloudapi.net"),
    "azurechina": ("login.chinacloudapi.cn", ".servicebus.chinacloudapi.cn"),
}
_CLOUD_BY_HOST = {host: suffix for host, suffix in CLOUDS.values()}


def authority_host(config: Mapping[str, Any]) -> str | None:
    """The `https://` authority named by `authority_host` or `AZURE_AUTHORITY_HOST`, or None."""
    value = str(config.get("authority_host") or "").strip()
    setting = "authority_host"
    if not value:
        value = os.environ.get("AZURE_AUTHORITY_HOST", "").strip()
        setting = "the AZURE_AUTHORITY_HOST variable"
    if not value:
        return None
    if preset := CLOUDS.get(value.lower()):
        return "https://" + preset[0]
    if "://" not in value:
        value = "https://" + value
    if not value.lower().startswith("https://") or len(value) <= len("https://"):
        names = ", ".join(("AzurePublicCloud", "AzureGovernment", "AzureChina"))
        raise ConfigurationError(
            f"{setting} must be one of {names} or an https:// URL, not {value!r}"
        )
    return value.rstrip("/")


def namespace_suffix(config: Mapping[str, Any]) -> str:
    """The host suffix a bare namespace name takes: that of the authority's cloud."""
    authority = authority_host(config)
    if authority is None:
        return PUBLIC_SUFFIX
    return _CLOUD_BY_HOST.get(authority.split("://", 1)[1].split("/")[0].lower(), PUBLIC_SUFFIX)


def credential_kind(config: Mapping[str, Any]) -> str:
    """The configured or inferred kind of credential (one of `CREDENTIAL_KINDS`)."""
    kind = str(config.get("credential_kind") or "").strip().lower()
    if kind:
        if kind not in CREDENTIAL_KINDS:
            raise ConfigurationError(
                f"credential_kind must be one of {', '.join(CREDENTIAL_KINDS)}, not {kind!r}"
            )
        return kind
    if config.get("client_secret") and config.get("client_certificate_path"):
        raise ConfigurationError(
            "client_secret and client_certificate_path are both set: keep one, or name the "
            "credential with credential_kind"
        )
    if config.get("client_certificate_path"):
        return CERTIFICATE
    if config.get("client_secret") or config.get("tenant_id") or config.get("client_id"):
        return CLIENT_SECRET
    return DEFAULT


def describe(config: Mapping[str, Any]) -> str:
    """A secret-free name of the credential, e.g. `certificate, client id 'app'`."""
    kind = credential_kind(config)
    text = {
        CLIENT_SECRET: "client secret",
        CERTIFICATE: "certificate",
        MANAGED_IDENTITY: "managed identity",
        WORKLOAD_IDENTITY: "workload identity",
        DEFAULT: "DefaultAzureCredential",
    }[kind]
    client_id = config.get("client_id") or (
        os.environ.get("AZURE_CLIENT_ID") if kind == WORKLOAD_IDENTITY else None
    )
    if client_id and kind != DEFAULT:
        text += f", client id '{client_id}'"
    return text


def _require(config: Mapping[str, Any], kind: str, names: tuple[str, ...]) -> None:
    missing = [name for name in names if not config.get(name)]
    if missing:
        raise ConfigurationError(
            f"the {kind} credential needs {', '.join(names)}; missing: {', '.join(missing)}"
        )


def entra_credential(config: Mapping[str, Any]) -> TokenCredential:
    """The azure-identity credential the settings describe; ConfigurationError if it cannot
    be built. Builds only: no request is made until the first token is needed."""
    from azure import identity  # noqa: PLC0415  (imported only with Entra ID)

    kind = credential_kind(config)
    # A refused credential is reported once, by the target, naming the credential and the
    # hub; azure-identity would log the same refusal at WARNING for each attempt before it.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    common: dict[str, Any] = {}
    if verify := config.get("connection_verify"):
        # The same CA bundle verifies the authority: a private authority or a TLS-inspecting
        # proxy is signed by the same CA as the private endpoint.
        common["connection_verify"] = verify
    authority = authority_host(config)
    with_authority = dict(common)
    if authority is not None:
        with_authority.update(authority=authority, disable_instance_discovery=True)

    if kind == CLIENT_SECRET:
        _require(config, "client secret", ("tenant_id", "client_id", "client_secret"))
        return identity.ClientSecretCredential(
            config["tenant_id"], config["client_id"], config["client_secret"], **with_authority
        )
    if kind == CERTIFICATE:
        _require(config, "certificate", ("tenant_id", "client_id", "client_certificate_path"))
        return _certificate_credential(config, with_authority)
    if kind == MANAGED_IDENTITY:
        return identity.ManagedIdentityCredential(client_id=config.get("client_id"), **common)
    if kind == WORKLOAD_IDENTITY:
        return _workload_credential(config, with_authority)
    options = dict(with_authority)
    if config.get("client_id"):
        options["managed_identity_client_id"] = config["client_id"]
    return identity.DefaultAzureCredential(**options)


def _certificate_credential(config: Mapping[str, Any], options: dict[str, Any]) -> TokenCredential:
    from azure.identity import CertificateCredential  # noqa: PLC0415

    path = Path(str(config["client_certificate_path"])).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"client_certificate_path: no such file '{path}'")
    password = config.get("client_certificate_password")
    try:
        return CertificateCredential(
            config["tenant_id"],
            config["client_id"],
            certificate_path=str(path),
            password=password.encode() if isinstance(password, str) else password,
            **options,
        )
    except (ValueError, TypeError) as exc:
        # The library's reason names the format problem and never the password.
        raise ConfigurationError(
            f"client_certificate_path '{path}' is not a PEM or PKCS#12 certificate with its "
            f"private key, or client_certificate_password does not open it ({exc})"
        ) from None


def _workload_credential(config: Mapping[str, Any], options: dict[str, Any]) -> TokenCredential:
    from azure.identity import WorkloadIdentityCredential  # noqa: PLC0415

    tenant = config.get("tenant_id") or os.environ.get("AZURE_TENANT_ID")
    client = config.get("client_id") or os.environ.get("AZURE_CLIENT_ID")
    token_file = os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
    missing = [
        name
        for name, value in (
            ("tenant_id (or AZURE_TENANT_ID)", tenant),
            ("client_id (or AZURE_CLIENT_ID)", client),
            ("the AZURE_FEDERATED_TOKEN_FILE variable", token_file),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(
            "the workload identity credential needs tenant_id, client_id and "
            f"AZURE_FEDERATED_TOKEN_FILE; missing: {', '.join(missing)}"
        )
    return WorkloadIdentityCredential(
        tenant_id=tenant, client_id=client, token_file_path=token_file, **options
    )
