"""With `authority_host`, no request leaves for the public cloud: every HTTPS request of the
run goes to the named authority, and a proxy that refuses everything (`HTTPS_PROXY`, with
only this machine in `NO_PROXY`) sees none."""

from __future__ import annotations

import pytest
from azure.identity import ClientSecretCredential

from tests.entra.support import (
    SECRET,
    SECRET_APP,
    EntraHub,
    RefusingProxy,
    expected_segments,
    run_in_process,
    segments,
    singer_input,
)

SCOPE = "https://eventhubs.azure.net//.default"


def test_no_request_leaves_for_the_public_cloud(
    entra_hub: EntraHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    entra = entra_hub.entra
    with RefusingProxy() as proxy:
        for name in ("HTTPS_PROXY", "HTTP_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

        # The proxy does catch a request to the public cloud: azure-identity's default for
        # an authority MSAL does not know is to ask login.microsoftonline.com about it.
        default = ClientSecretCredential(
            entra.tenant_id,
            SECRET_APP,
            SECRET,
            authority=entra.authority_host,
            connection_verify=entra_hub.ca,
            retry_total=0,
        )
        with pytest.raises(Exception, match=r"(?i)proxy|403"):
            default.get_token(SCOPE)
        assert proxy.requests == ["CONNECT login.microsoftonline.com:443"]
        proxy.requests.clear()

        before = len(entra.requests())
        config = entra_hub.config(
            "sovereign",
            tenant_id=entra.tenant_id,
            client_id=SECRET_APP,
            client_secret=SECRET,
            sender_process=False,
        )
        assert run_in_process(config, singer_input("sovereign")) == 0
        assert proxy.requests == []
    calls = entra.requests()[before:]
    assert {(r.method, r.path.rsplit("/", 2)[-1]) for r in calls} == {
        ("GET", "openid-configuration"),
        ("POST", "token"),
    }
    assert {r.host for r in calls} == {entra.authority_host.removeprefix("https://")}
    assert segments(entra_hub.read_back("sovereign")) == expected_segments("sovereign")
