"""The Entra ID settings on their own: which credential they build, the authority and the
namespace suffix of each cloud, and one clear line for each mistake (nothing connects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from cryptography.hazmat.primitives import serialization
from eventhubs_localhub.entra import new_rsa_key, self_signed

from target_azure_eventhubs.delivery.connection import connection_from_config
from target_azure_eventhubs.delivery.entra import authority_host, credential_kind
from target_azure_eventhubs.errors import ConfigurationError
from target_azure_eventhubs.settings import TargetSettings

BASE = {"use_entra_id": True, "namespace": "contoso", "eventhub_name": "profiles"}
PRINCIPAL = {"tenant_id": "t", "client_id": "app"}


@pytest.mark.parametrize(
    ("settings", "kind", "cls"),
    [
        ({**PRINCIPAL, "client_secret": "s"}, "client_secret", ClientSecretCredential),
        ({}, "default", DefaultAzureCredential),
        ({"credential_kind": "managed_identity"}, "managed_identity", ManagedIdentityCredential),
    ],
)
def test_the_credential_kind_and_its_class(settings: dict[str, Any], kind: str, cls: type) -> None:
    config = {**BASE, **settings}
    assert credential_kind(config) == kind
    assert isinstance(connection_from_config(config).credential, cls)


def test_a_certificate_credential_reads_its_file(tmp_path: Path) -> None:
    key = new_rsa_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ) + self_signed(key, "app").public_bytes(serialization.Encoding.PEM)
    path = tmp_path / "app.pem"
    path.write_bytes(pem)
    config = {**BASE, **PRINCIPAL, "client_certificate_path": str(path)}
    spec = connection_from_config({**config, "client_certificate_password": "pw"})
    assert isinstance(spec.credential, CertificateCredential)
    assert "certificate, client id 'app'" in spec.describe()
    with pytest.raises(ConfigurationError, match="client_certificate_password does not open it"):
        connection_from_config({**config, "client_certificate_password": "wrong"})
    with pytest.raises(ConfigurationError, match="client_certificate_path: no such file"):
        connection_from_config({**config, "client_certificate_path": str(tmp_path / "none.pem")})


def test_workload_identity_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = {**BASE, "credential_kind": "workload_identity"}
    with pytest.raises(ConfigurationError, match=r"missing: tenant_id .*AZURE_FEDERATED_TOKEN"):
        connection_from_config(config)
    token_file = tmp_path / "token"
    token_file.write_text("x")
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "app")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    spec = connection_from_config(config)
    assert isinstance(spec.credential, WorkloadIdentityCredential)
    assert "workload identity, client id 'app'" in spec.describe()


def test_a_service_principal_needs_its_secret() -> None:
    with pytest.raises(ConfigurationError, match=r"missing: client_secret$"):
        connection_from_config({**BASE, **PRINCIPAL})
    with pytest.raises(ConfigurationError, match="keep one"):
        connection_from_config(
            {**BASE, **PRINCIPAL, "client_secret": "s", "client_certificate_path": "c.pem"}
        )


@pytest.mark.parametrize(
    ("value", "authority", "host"),
    [
        ("AzurePublicCloud", "https://login.microsoftonline.com", "contoso.servicebus.windows.net"),
        (
            "azuregovernment",
            "https://login.microsoftonline.us",
            "contoso.servicebus.usgovcloudapi.net",
        ),
        ("AzureChina", "https://login.chinacloudapi.cn", "contoso.servicebus.chinacloudapi.cn"),
        (
            "https://login.example.internal/",
            "https://login.example.internal",
            "contoso.servicebus.windows.net",
        ),
    ],
)
def test_authority_presets_and_the_namespace_suffix_of_their_cloud(
    value: str, authority: str, host: str
) -> None:
    config = {**BASE, "authority_host": value}
    assert authority_host(config) == authority
    assert connection_from_config(config).host == host
    sas = {"namespace": "contoso", "eventhub_name": "p", "sas_key_name": "k", "sas_key": "v"}
    assert connection_from_config({**sas, "authority_host": value}).host == host


def test_the_authority_is_passed_with_instance_discovery_off() -> None:
    credential = connection_from_config(
        {**BASE, **PRINCIPAL, "client_secret": "s", "authority_host": "AzureChina"}
    ).credential
    assert credential is not None
    assert credential._authority == "https://login.chinacloudapi.cn"  # type: ignore[attr-defined]
    assert credential._instance_discovery is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"authority_host": "http://login.example"}, "authority_host must be one of"),
        ({"credential_kind": "password"}, "credential_kind"),
    ],
)
def test_mistakes_are_one_line_naming_the_setting(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        TargetSettings.from_config({**BASE, **config})
    assert "\n" not in str(caught.value)


def test_the_authority_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "login.microsoftonline.us")
    assert authority_host(BASE) == "https://login.microsoftonline.us"
    assert connection_from_config(BASE).host == "contoso.servicebus.usgovcloudapi.net"
