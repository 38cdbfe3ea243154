"""The local hub's Entra mode on its own: the authority's endpoints as MSAL reads them, and
the hub's check of each CBS `jwt` token (signature, issuer, audience, lifetime, roles)."""

from __future__ import annotations

import json
import logging
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub.exceptions import AuthenticationError, EventHubError
from azure.identity import ClientSecretCredential
from eventhubs_localhub.entra import (
    DATA_RECEIVER,
    DATA_SENDER,
    EVENTHUBS_AUDIENCE,
    TokenRejected,
    new_rsa_key,
)

from tests.entra.support import READER_APP, SECRET, SECRET_APP, EntraHub
from tests.waiting import wait_until


def _get(entra_hub: EntraHub, path: str, **headers: str) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=entra_hub.ca)
    request = urllib.request.Request(entra_hub.entra.authority_host + path, headers=headers)
    return _open(request, context)


def _post(entra_hub: EntraHub, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=entra_hub.ca)
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(entra_hub.entra.authority_host + path, data=data)
    return _open(request, context)


def _open(request: urllib.request.Request, context: ssl.SSLContext) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_authority_serves_what_msal_reads(entra_hub: EntraHub) -> None:
    entra = entra_hub.entra
    tenant = entra.tenant_id
    status, config = _get(entra_hub, f"/{tenant}/v2.0/.well-known/openid-configuration")
    assert status == 200
    assert config["token_endpoint"] == f"{entra.authority_host}/{tenant}/oauth2/v2.0/token"
    assert config["issuer"] == entra.issuer
    status, keys = _get(entra_hub, f"/{tenant}/discovery/v2.0/keys")
    assert [k["kid"] for k in keys["keys"]] == [entra.signing_key.kid]
    _, discovery = _get(entra_hub, "/common/discovery/instance?api-version=1.1")
    assert discovery["tenant_discovery_endpoint"].endswith("/v2.0/.well-known/openid-configuration")

    status, body = _get(entra_hub, "/another-tenant/v2.0/.well-known/openid-configuration")
    assert (status, body["error_codes"]) == (400, [90002])
    token = f"/{tenant}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials", "scope": EVENTHUBS_AUDIENCE + "//.default"}
    status, body = _post(entra_hub, token, {**form, "client_id": "nobody", "client_secret": "x"})
    assert (status, body["error"]) == (400, "unauthorized_client")
    status, body = _post(entra_hub, token, {**form, "client_id": SECRET_APP, "client_secret": "x"})
    assert (status, body["error_codes"]) == (401, [7000215])
    other = {**form, "scope": "https://storage.azure.com/.default"}
    status, body = _post(
        entra_hub, token, {**other, "client_id": SECRET_APP, "client_secret": SECRET}
    )
    assert (status, body["error_codes"]) == (400, [500011])
    status, body = _post(
        entra_hub, token, {**form, "client_id": SECRET_APP, "client_secret": SECRET}
    )
    assert status == 200 and body["token_type"] == "Bearer"

    msi = "/msi/token?api-version=2019-08-01&resource=https://eventhubs.azure.net"
    status, _ = _get(entra_hub, msi, **{"X-IDENTITY-HEADER": "guessed"})
    assert status == 401
    status, body = _get(entra_hub, msi, **{"X-IDENTITY-HEADER": entra.identity_header})
    assert status == 200 and int(body["expires_on"]) > time.time()


def _claims(entra_hub: EntraHub, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "aud": EVENTHUBS_AUDIENCE,
        "iss": entra_hub.entra.issuer,
        "nbf": now - 5,
        "exp": now + 600,
        "sub": "object-id",
        "appid": "app",
        "roles": [DATA_SENDER],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(entra_hub: EntraHub, claims: dict[str, Any], key: Any = None) -> str:
    signing = entra_hub.entra.signing_key
    headers = {"kid": signing.kid}
    return jwt.encode(claims, key or signing.key, algorithm="RS256", headers=headers)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": "https://storage.azure.com"}, "audience"),
        ({"iss": "https://login.microsoftonline.com/other/v2.0"}, "issuer"),
        ({"exp": int(time.time()) - 1}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"exp": None}, "exp"),
    ],
)
def test_each_claim_is_checked(entra_hub: EntraHub, changes: dict[str, Any], reason: str) -> None:
    verifier = entra_hub.entra.verifier()
    with pytest.raises(TokenRejected, match=reason):
        verifier.verify(_signed(entra_hub, _claims(entra_hub, **changes)))


def test_roles_stand_in_for_rbac(entra_hub: EntraHub) -> None:
    verifier = entra_hub.entra.verifier()
    rights, _ = verifier.cbs_rights(_signed(entra_hub, _claims(entra_hub)))
    assert rights == {"Send"}
    rights, _ = verifier.cbs_rights(_signed(entra_hub, _claims(entra_hub, roles=[DATA_RECEIVER])))
    assert rights == {"Listen"}


class _Static:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 600)


def _producer(entra_hub: EntraHub, credential: Any, **options: Any) -> EventHubProducerClient:
    return EventHubProducerClient(
        fully_qualified_namespace=f"127.0.0.1:{entra_hub.hub.port}",
        eventhub_name="refresh",
        credential=credential,
        use_tls=False,
        **options,
    )


@pytest.mark.parametrize("forgery", ["another key", "expired"])
def test_a_bad_token_gets_401_on_cbs(
    entra_hub: EntraHub, forgery: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="eventhubs_localhub")
    if forgery == "another key":
        token = _signed(entra_hub, _claims(entra_hub), key=new_rsa_key())
    else:
        token = _signed(entra_hub, _claims(entra_hub, exp=int(time.time()) - 1))
    with (
        _producer(entra_hub, _Static(token), retry_total=0) as producer,
        pytest.raises(AuthenticationError, match="401"),
    ):
        producer.send_batch([EventData(b"forged")], partition_id="0")
    expected = "signature does not verify" if forgery == "another key" else "token has expired"
    assert any(expected in r.getMessage() for r in caplog.records)


def test_an_expired_token_ends_sends_on_its_link_until_a_fresh_one(
    entra_hub: EntraHub, caplog: pytest.LogCaptureFixture
) -> None:
    # Tokens of 2 s: the hub detaches the sender link when its token expires; the next send
    # gets a fresh token from the authority and goes through.
    caplog.set_level(logging.INFO, logger="eventhubs_localhub")
    entra = entra_hub.entra
    credential = ClientSecretCredential(
        entra.tenant_id,
        SECRET_APP,
        SECRET,
        authority=entra.authority_host,
        disable_instance_discovery=True,
        connection_verify=entra_hub.ca,
    )
    before = entra.tokens_issued
    entra.token_lifetime = 2
    try:
        with _producer(entra_hub, credential) as producer:
            producer.send_batch([EventData(b"first")], partition_id="1")
            assert wait_until(
                lambda: any("expired; detaching" in r.getMessage() for r in caplog.records), 30
            )
            producer.send_batch([EventData(b"after expiry")], partition_id="1")
    finally:
        entra.token_lifetime = 3600
    bodies = [e.body for e in entra_hub.hub.events("refresh", "1")]
    assert bodies[-2:] == [b"first", b"after expiry"]
    assert entra.tokens_issued - before >= 2


def test_a_receiver_token_may_not_send(
    entra_hub: EntraHub, caplog: pytest.LogCaptureFixture
) -> None:
    # The token is good, so $cbs accepts it; the sender link is refused for want of Send.
    caplog.set_level(logging.INFO, logger="eventhubs_localhub")
    before = entra_hub.hub.event_count("refresh", "0")
    token = _signed(entra_hub, _claims(entra_hub, roles=[DATA_RECEIVER], appid=READER_APP))
    with (
        _producer(entra_hub, _Static(token), retry_total=0) as producer,
        pytest.raises(EventHubError),
    ):
        producer.send_batch([EventData(b"not allowed")], partition_id="0")
    messages = [r.getMessage() for r in caplog.records]
    assert any("token accepted" in m and "(rights Listen)" in m for m in messages)
    assert any("sender on refresh/partitions/0 has no Send token" in m for m in messages)
    assert entra_hub.hub.event_count("refresh", "0") == before
