"""Entra mode: the hub as its own Microsoft Entra ID token authority (HTTPS), and the
check of each CBS ``jwt`` token against it. Needs the ``entra`` extra.

>>> from eventhubs_localhub import LocalHub
>>> from eventhubs_localhub.entra import EntraAuthority
>>> entra = EntraAuthority()
>>> app = entra.register("sender-app", ["sender"], secret="s3cret")
>>> with LocalHub(entra=entra) as hub:  # doctest: +SKIP
...     hub.entra_ca_path, entra.authority_host, entra.tenant_id
"""

from .authority import (
    DEFAULT_TENANT,
    EXCHANGE_AUDIENCE,
    EntraAuthority,
    FederatedCredential,
    Principal,
    RequestRecord,
    TokenError,
)
from .http import AuthorityServer
from .pki import TlsFiles, make_tls_files, new_rsa_key, self_signed
from .tokens import (
    DATA_OWNER,
    DATA_RECEIVER,
    DATA_SENDER,
    EVENTHUBS_AUDIENCE,
    TokenRejected,
    TokenVerifier,
    VerifiedToken,
)

__all__ = [
    "DATA_OWNER",
    "DATA_RECEIVER",
    "DATA_SENDER",
    "DEFAULT_TENANT",
    "EVENTHUBS_AUDIENCE",
    "EXCHANGE_AUDIENCE",
    "AuthorityServer",
    "EntraAuthority",
    "FederatedCredential",
    "Principal",
    "RequestRecord",
    "TlsFiles",
    "TokenError",
    "TokenRejected",
    "TokenVerifier",
    "VerifiedToken",
    "make_tls_files",
    "new_rsa_key",
    "self_signed",
]
