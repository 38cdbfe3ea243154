"""Checking Entra access tokens as a resource server does: signature against the authority's
JWKS, then ``iss``, ``aud``, ``exp`` and ``nbf``. The ``roles`` claim stands in for Azure
RBAC role assignments.

Independent of AMQP: the ``$cbs`` node turns a :class:`VerifiedToken` into rights on an
entity, and any other endpoint of the hub (a REST API) can check the same bearer tokens
with the same :class:`TokenVerifier`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from ..auth import LISTEN, MANAGE, SEND, AuthError

#: What azure-eventhub asks for (scope ``https://eventhubs.azure.net//.default``); the
#: service accepts tokens for this audience in every cloud.
EVENTHUBS_AUDIENCE = "https://eventhubs.azure.net"

DATA_SENDER = "Azure Event Hubs Data Sender"
DATA_RECEIVER = "Azure Event Hubs Data Receiver"
DATA_OWNER = "Azure Event Hubs Data Owner"

ROLE_RIGHTS: Mapping[str, frozenset[str]] = {
    DATA_SENDER: frozenset({SEND}),
    DATA_RECEIVER: frozenset({LISTEN}),
    DATA_OWNER: frozenset({SEND, LISTEN, MANAGE}),
}
#: Short names accepted wherever roles are given (CLI, Python API).
ROLE_ALIASES = {
    "sender": DATA_SENDER,
    "send": DATA_SENDER,
    "receiver": DATA_RECEIVER,
    "listen": DATA_RECEIVER,
    "owner": DATA_OWNER,
    "manage": DATA_OWNER,
}
SIGNING_ALGORITHMS = ["RS256"]


def role_names(roles: Iterable[str]) -> frozenset[str]:
    """Full role names for ``roles``, which may use the short names of ``ROLE_ALIASES``."""
    result = set()
    for role in roles:
        name = ROLE_ALIASES.get(role.strip().lower(), role.strip())
        if name not in ROLE_RIGHTS:
            known = ", ".join(sorted(ROLE_RIGHTS))
            raise ValueError(f"unknown role {role!r}; use one of {known} (or sender, receiver)")
        result.add(name)
    return frozenset(result)


def rights_for_roles(roles: Iterable[str]) -> frozenset[str]:
    """The SAS-style rights (Send, Listen, Manage) that Event Hubs data roles grant."""
    rights: set[str] = set()
    for role in roles:
        rights |= ROLE_RIGHTS.get(role, frozenset())
    return frozenset(rights)


class TokenRejected(AuthError):
    """A token that does not pass; ``reason`` names the failed check, never the token."""


@dataclass(frozen=True)
class VerifiedToken:
    subject: str
    client_id: str
    roles: frozenset[str]
    expires_at: float
    claims: Mapping[str, Any]


class TokenVerifier:
    """Verifies bearer tokens issued by one authority, for one audience.

    ``jwks`` is the authority's JWKS document, or a function returning it (read on each
    unknown key id, as a resource server refreshes its key cache).
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._jwks_source = jwks
        self._keys: dict[str, jwt.PyJWK] = {}

    def _key(self, kid: str | None) -> jwt.PyJWK:
        if kid not in self._keys:
            document = self._jwks_source() if callable(self._jwks_source) else self._jwks_source
            self._keys = {
                str(k["kid"]): jwt.PyJWK(dict(k), algorithm="RS256") for k in document["keys"]
            }
        try:
            return self._keys[str(kid)]
        except KeyError:
            raise TokenRejected(f"token signed with unknown key id {kid!r}") from None

    def verify(self, token: str, now: float | None = None) -> VerifiedToken:
        """The token's principal and roles, or :class:`TokenRejected`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRejected("token is not a JWT") from None
        if header.get("alg") not in SIGNING_ALGORITHMS:
            raise TokenRejected(f"token algorithm {header.get('alg')!r} is not accepted")
        key = self._key(header.get("kid"))
        now = time.time() if now is None else now
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=SIGNING_ALGORITHMS,
                audience=[self.audience, self.audience + "/"],
                issuer=self.issuer,
                options={"require": ["exp", "nbf", "iss", "aud"], "verify_iat": False},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(f"token audience is not {self.audience}") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected(f"token issuer is not {self.issuer}") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("token signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(f"token is invalid: {exc}") from None
        expires_at = float(claims["exp"])
        if expires_at <= now:
            raise TokenRejected("token has expired")
        roles = claims.get("roles") or []
        return VerifiedToken(
            subject=str(claims.get("sub", "")),
            client_id=str(claims.get("appid") or claims.get("azp") or ""),
            roles=frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset(),
            expires_at=expires_at,
            claims=claims,
        )

    def cbs_rights(self, token: str) -> tuple[frozenset[str], float]:
        """(rights, expiry) of a CBS ``jwt`` token: the hook of :class:`~..auth.Authorizer`."""
        verified = self.verify(token)
        return rights_for_roles(verified.roles), verified.expires_at
