"""Every kind of Entra ID credential the target offers, against the local hub's Entra mode
(a real token authority over HTTPS; the hub checks each token's signature, issuer,
audience, lifetime and roles), over TCP and over WebSockets. Each test reads back, with an
Entra-authenticated consumer, the events that arrived."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.entra.support import (
    CERT_APP,
    CERT_PASSWORD,
    MI_APP,
    SECRET,
    SECRET_APP,
    TRANSPORTS,
    WORKLOAD_APP,
    WORKLOAD_SUBJECT,
    EntraHub,
    expected_segments,
    run_in_process,
    segments,
    singer_input,
)


def _short(transport: str) -> str:
    return "ws" if transport == "amqp_websockets" else "amqp"


def _token_requests(entra_hub: EntraHub, client_id: str) -> int:
    return sum(
        1
        for r in entra_hub.entra.requests()
        if r.client_id == client_id and r.status == 200 and r.path.endswith("/token")
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_secret(entra_hub: EntraHub, transport: str) -> None:
    hub_name = f"secret-{_short(transport)}"
    config = entra_hub.config(
        hub_name,
        transport,
        tenant_id=entra_hub.entra.tenant_id,
        client_id=SECRET_APP,
        client_secret=SECRET,
        sender_process=False,
    )
    assert run_in_process(config, singer_input(hub_name)) == 0
    assert segments(entra_hub.read_back(hub_name)) == expected_segments(hub_name)
    assert _token_requests(entra_hub, SECRET_APP) >= 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_certificate(entra_hub: EntraHub, transport: str) -> None:
    # The client assertion is signed with the app's key; the authority checks it against the
    # certificate registered for the app. The sender process builds its own credential.
    hub_name = f"cert-{_short(transport)}"
    config = entra_hub.config(
        hub_name,
        transport,
        tenant_id=entra_hub.entra.tenant_id,
        client_id=CERT_APP,
        client_certificate_path=str(entra_hub.cert_path),
        client_certificate_password=CERT_PASSWORD,
        sender_process=transport == "amqp_websockets",
    )
    assert run_in_process(config, singer_input(hub_name)) == 0
    assert segments(entra_hub.read_back(hub_name)) == expected_segments(hub_name)
    assert _token_requests(entra_hub, CERT_APP) >= 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_managed_identity(
    entra_hub: EntraHub, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # App Service's managed identity: IDENTITY_ENDPOINT and IDENTITY_HEADER; over WebSockets
    # the identity is named (user-assigned), over TCP it is the system-assigned one.
    monkeypatch.setenv("IDENTITY_ENDPOINT", entra_hub.entra.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", entra_hub.entra.identity_header)
    hub_name = f"mi-{_short(transport)}"
    named = {"client_id": MI_APP} if transport == "amqp_websockets" else {}
    config = entra_hub.config(
        hub_name, transport, credential_kind="managed_identity", sender_process=False, **named
    )
    del config["authority_host"]  # a managed identity has no authority
    assert run_in_process(config, singer_input(hub_name)) == 0
    assert segments(entra_hub.read_back(hub_name)) == expected_segments(hub_name)
    assert _token_requests(entra_hub, MI_APP) + sum(
        1 for r in entra_hub.entra.requests() if r.path == "/msi/token" and r.status == 200
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_workload_identity(
    entra_hub: EntraHub, transport: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # What the AKS workload identity webhook injects: a federated token file (signed by an
    # issuer the authority trusts for this subject), the tenant, the client and the
    # authority host. Over WebSockets the authority comes from the variable alone.
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(entra_hub.entra.federated_token(WORKLOAD_SUBJECT))
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_TENANT_ID", entra_hub.entra.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", WORKLOAD_APP)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", entra_hub.entra.authority_host)
    hub_name = f"workload-{_short(transport)}"
    config = entra_hub.config(
        hub_name, transport, credential_kind="workload_identity", sender_process=False
    )
    if transport == "amqp_websockets":
        del config["authority_host"]
    assert run_in_process(config, singer_input(hub_name)) == 0
    assert segments(entra_hub.read_back(hub_name)) == expected_segments(hub_name)
    assert _token_requests(entra_hub, WORKLOAD_APP) >= 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_default_azure_credential(
    entra_hub: EntraHub, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `use_entra_id` alone: DefaultAzureCredential finds a service principal in the
    # environment (TCP), or the managed identity when that is all there is (WebSockets).
    if transport == "amqp":
        monkeypatch.setenv("AZURE_TENANT_ID", entra_hub.entra.tenant_id)
        monkeypatch.setenv("AZURE_CLIENT_ID", SECRET_APP)
        monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
        monkeypatch.setenv("AZURE_AUTHORITY_HOST", entra_hub.entra.authority_host)
    else:
        monkeypatch.setenv("IDENTITY_ENDPOINT", entra_hub.entra.identity_endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", entra_hub.entra.identity_header)
    hub_name = f"default-{_short(transport)}"
    config = entra_hub.config(hub_name, transport, sender_process=False)
    del config["authority_host"]
    before = len(entra_hub.entra.requests())
    assert run_in_process(config, singer_input(hub_name)) == 0
    assert segments(entra_hub.read_back(hub_name)) == expected_segments(hub_name)
    used = {r.path.rsplit("/", 1)[-1] for r in entra_hub.entra.requests()[before:]}
    assert used >= {"token"}
