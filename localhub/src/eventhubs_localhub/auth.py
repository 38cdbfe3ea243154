"""Authorization: SAS policies, SAS token validation and accepted bearer tokens.

Bearer (``jwt``) tokens are either fixed strings given to the hub, or checked by a
``bearer_validator`` (the Entra mode's JWT verifier), which returns the rights and expiry.

A token grants rights on an entity path (``<hub>`` or ``<hub>/consumergroups/<cg>``); a link
is authorized when a live token covers its entity path (path prefix, case-insensitive) and
carries the right it needs (Send for producers, Listen for consumers; Manage implies both).
Never log keys or signatures: failure reasons name only the key name and the audience.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote_plus, urlparse

SEND = "Send"
LISTEN = "Listen"
MANAGE = "Manage"
ALL_RIGHTS = frozenset({SEND, LISTEN, MANAGE})

DEFAULT_KEY_NAME = "RootManageSharedAccessKey"
DEFAULT_KEY = "localhub-development-key"

SAS_TOKEN_TYPE = "servicebus.windows.net:sastoken"
JWT_TOKEN_TYPE = "jwt"


def normalize_rights(
    rights: frozenset[str] | set[str] | list[str] | tuple[str, ...],
) -> frozenset[str]:
    """Canonical right names; Manage implies Send and Listen."""
    canonical = {r.lower(): r for r in ALL_RIGHTS}
    result = set()
    for right in rights:
        try:
            result.add(canonical[right.strip().lower()])
        except KeyError:
            raise ValueError(f"unknown right {right!r}; use Send, Listen or Manage") from None
    if MANAGE in result:
        result |= {SEND, LISTEN}
    return frozenset(result)


@dataclass(frozen=True)
class Policy:
    """A shared access policy: key name, key and rights."""

    name: str
    key: str
    rights: frozenset[str] = ALL_RIGHTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "rights", normalize_rights(self.rights))

    @classmethod
    def parse(cls, spec: str) -> Policy:
        """``name:key:Send,Listen`` (the CLI form)."""
        name, sep, rest = spec.partition(":")
        key, sep2, rights = rest.rpartition(":")
        if not sep or not sep2 or not name or not key:
            raise ValueError(f"policy must look like name:key:Send,Listen, got {name!r}:...")
        return cls(name, key, frozenset(r for r in rights.split(",") if r))


@dataclass(frozen=True)
class Grant:
    """What one accepted token allows, until when."""

    path: str  # lower-case entity path, e.g. "profiles" or "profiles/consumergroups/$default"
    rights: frozenset[str]
    expires_at: float  # time.time() seconds

    def covers(self, entity_path: str, right: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if now >= self.expires_at or right not in self.rights:
            return False
        entity = entity_path.lower().strip("/")
        return entity == self.path or entity.startswith(self.path + "/") or self.path == ""


class AuthError(Exception):
    """A refused token; ``reason`` is safe to log and to send back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def audience_path(audience: str) -> str:
    """Entity path of an audience URI, lower-case, without scheme/host/port."""
    parsed = urlparse(audience if "://" in audience else "sb://host/" + audience)
    return parsed.path.strip("/").lower()


def sas_signature(key: str, uri: str, expiry: str) -> str:
    """base64 HMAC-SHA256(key, quote_plus(uri) + "\\n" + expiry) -- the SDK's signing scheme."""
    to_sign = f"{quote_plus(uri)}\n{expiry}".encode()
    return base64.b64encode(hmac.new(key.encode(), to_sign, hashlib.sha256).digest()).decode()


#: Checks a bearer token: (rights, expiry in time.time() seconds), or raises AuthError.
BearerValidator = Callable[[str], tuple[frozenset[str], float]]


class Authorizer:
    """Validates CBS tokens against the configured policies and bearer tokens."""

    def __init__(
        self,
        policies: list[Policy],
        accepted_bearer_tokens: dict[str, set[str] | frozenset[str]] | None = None,
        bearer_validator: BearerValidator | None = None,
    ) -> None:
        self.bearer_validator = bearer_validator
        self.policies = {p.name: p for p in policies}
        self.bearer_tokens = {
            token: normalize_rights(rights)
            for token, rights in (accepted_bearer_tokens or {}).items()
        }

    def validate(
        self, token: str, token_type: str, audience: str, now: float | None = None
    ) -> Grant:
        """A grant for the token, or AuthError with a loggable reason."""
        now = time.time() if now is None else now
        if token_type == JWT_TOKEN_TYPE:
            return self._validate_bearer(token, audience)
        return self._validate_sas(token, audience, now)

    def _validate_bearer(self, token: str, audience: str) -> Grant:
        rights = self.bearer_tokens.get(token)
        if rights is None and self.bearer_validator is not None:
            rights, expires_at = self.bearer_validator(token)
            return Grant(audience_path(audience), rights, expires_at)
        if rights is None:
            raise AuthError("bearer token not accepted by this hub")
        # Bearer tokens are opaque here; treat them as valid for one hour from now.
        return Grant(audience_path(audience), rights, time.time() + 3600)

    def _validate_sas(self, token: str, audience: str, now: float) -> Grant:
        prefix = "SharedAccessSignature "
        if not token.startswith(prefix):
            raise AuthError("token is not a SharedAccessSignature")
        fields = {
            k: v[0] for k, v in parse_qs(token[len(prefix) :], keep_blank_values=True).items()
        }
        missing = {"sr", "sig", "se", "skn"} - fields.keys()
        if missing:
            raise AuthError(f"token lacks {', '.join(sorted(missing))}")
        key_name, uri, expiry = fields["skn"], fields["sr"], fields["se"]
        policy = self.policies.get(key_name)
        if policy is None:
            raise AuthError(f"unknown key name {key_name!r}")
        expected = sas_signature(policy.key, uri, expiry)
        if not hmac.compare_digest(expected.encode(), fields["sig"].encode()):
            raise AuthError(f"bad signature for key name {key_name!r}")
        try:
            expires_at = float(expiry)
        except ValueError:
            raise AuthError("token expiry is not a number") from None
        if expires_at <= now:
            raise AuthError(f"token expired at {int(expires_at)} (now {int(now)})")
        token_path = audience_path(uri)
        requested = audience_path(audience)
        # The token's resource must cover the audience it is presented for.
        if token_path and requested != token_path and not requested.startswith(token_path + "/"):
            raise AuthError(f"token resource {token_path!r} does not cover {requested!r}")
        return Grant(requested, policy.rights, expires_at)
