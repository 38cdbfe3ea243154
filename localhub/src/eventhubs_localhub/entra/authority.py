"""A Microsoft Entra ID stand-in: registered principals, the client-credentials grant
(secret, certificate, federated assertion), the App Service managed-identity endpoint, and
the access tokens they get. The HTTP side is in :mod:`.http`; this module decides.

Errors follow the service: an OAuth error body with an ``AADSTS`` code, which MSAL and
azure-identity put into their exception messages.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509

from .pki import SigningKey, thumbprints
from .tokens import EVENTHUBS_AUDIENCE, TokenVerifier, role_names

DEFAULT_TENANT = "7e4a5c1d-10ca-4b0b-8e1f-00000000e17a"
#: The audience of a federated (workload identity) assertion, as Entra requires it.
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ASSERTION_ALGORITHMS = ["RS256", "PS256"]


@dataclass(frozen=True)
class FederatedCredential:
    """Trust in tokens of an issuer for one subject (a Kubernetes service account, a CI
    job), as an app registration's federated identity credential. Issuer "": the
    authority's own workload issuer (:meth:`EntraAuthority.federated_token`)."""

    issuer: str
    subject: str
    audience: str = EXCHANGE_AUDIENCE


@dataclass
class Principal:
    """An app registration / service principal, or a managed identity, with its roles."""

    client_id: str
    roles: frozenset[str] = frozenset()
    secret: str | None = field(default=None, repr=False)
    certificate: x509.Certificate | None = None
    federated: tuple[FederatedCredential, ...] = ()
    managed: bool = False  # served by the managed-identity endpoint
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        self.roles = role_names(self.roles)


class TokenError(Exception):
    """A refused token request: the HTTP status and the OAuth error body."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.body = {
            "error": error,
            "error_description": f"AADSTS{code}: {description}",
            "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the authority answered (what tests assert on)."""

    method: str
    path: str
    host: str
    status: int
    client_id: str | None = None
    at: float = field(default_factory=time.time)


def resource_of(scope: str) -> str:
    """``https://eventhubs.azure.net//.default`` -> ``https://eventhubs.azure.net``."""
    first = scope.split(maxsplit=1)[0] if scope.strip() else ""
    return first.removesuffix(".default").rstrip("/")


class EntraAuthority:
    """The state of the token authority. ``base_url`` is set once its HTTPS server listens.

    ``token_lifetime`` (seconds) may be changed at any time: it applies to the next token.
    """

    def __init__(
        self,
        tenant_id: str = DEFAULT_TENANT,
        *,
        token_lifetime: float = 3600.0,
        audiences: Iterable[str] = (EVENTHUBS_AUDIENCE,),
    ) -> None:
        self.tenant_id = tenant_id
        self.token_lifetime = token_lifetime
        self.audiences = frozenset(a.rstrip("/") for a in audiences)
        self.base_url = ""
        self.signing_key = SigningKey.generate("eventhubs-localhub token signing")
        # A second, independent issuer that signs federated tokens (what a Kubernetes
        # cluster's OIDC issuer is to workload identity).
        self.workload_key = SigningKey.generate("eventhubs-localhub workload issuer")
        self.identity_header = secrets.token_urlsafe(24)
        self.principals: dict[str, Principal] = {}
        self.tokens_issued = 0
        self._requests: list[RequestRecord] = []
        self._lock = threading.Lock()

    # ---- registration

    def add_principal(self, principal: Principal) -> Principal:
        with self._lock:
            self.principals[principal.client_id] = principal
        return principal

    def register(
        self,
        client_id: str,
        roles: Iterable[str] = ("sender",),
        *,
        secret: str | None = None,
        certificate: x509.Certificate | None = None,
        federated_subject: str | None = None,
        managed: bool = False,
    ) -> Principal:
        """Register a principal; ``federated_subject`` trusts this authority's workload
        issuer (:meth:`federated_token`) for that subject."""
        federated = (FederatedCredential("", federated_subject),) if federated_subject else ()
        return self.add_principal(
            Principal(
                client_id,
                frozenset(roles),
                secret=secret,
                certificate=certificate,
                federated=federated,
                managed=managed,
            )
        )

    # ---- addresses

    @property
    def authority_host(self) -> str:
        """What clients take as the authority host (``AZURE_AUTHORITY_HOST``)."""
        return self.base_url

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def jwks_uri(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/discovery/v2.0/keys"

    @property
    def identity_endpoint(self) -> str:
        """The App Service managed-identity endpoint (``IDENTITY_ENDPOINT``)."""
        return f"{self.base_url}/msi/token"

    @property
    def workload_issuer(self) -> str:
        return f"{self.base_url}/workload-issuer"

    def openid_configuration(self) -> dict[str, Any]:
        base = f"{self.base_url}/{self.tenant_id}"
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": self.jwks_uri,
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": None,
            "cloud_instance_name": "localhub",
        }

    def instance_discovery(self, authorization_endpoint: str) -> dict[str, Any]:
        host = self.base_url.split("://", 1)[-1]
        return {
            "tenant_discovery_endpoint": (
                f"{self.base_url}/{self.tenant_id}/v2.0/.well-known/openid-configuration"
            ),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.signing_key.jwk()]}

    def verifier(self, audience: str = EVENTHUBS_AUDIENCE) -> TokenVerifier:
        """A resource server's check of this authority's tokens (the hub's ``$cbs``)."""
        return TokenVerifier(self.issuer, audience, self.jwks)

    # ---- request log

    def record(self, entry: RequestRecord) -> None:
        with self._lock:
            self._requests.append(entry)

    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    # ---- tokens

    def issue(self, principal: Principal, resource: str) -> dict[str, Any]:
        """An access token response for ``principal`` and ``resource``."""
        now = int(time.time())
        lifetime = max(1, round(self.token_lifetime))
        claims = {
            "aud": resource,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "sub": principal.object_id,
            "oid": principal.object_id,
            "tid": self.tenant_id,
            "appid": principal.client_id,
            "azp": principal.client_id,
            "idtyp": "app",
            "roles": sorted(principal.roles),
            "ver": "2.0",
            "uti": secrets.token_urlsafe(12),
        }
        token = jwt.encode(
            claims,
            self.signing_key.key,
            algorithm="RS256",
            headers={"kid": self.signing_key.kid, "x5t": self.signing_key.jwk()["x5t"]},
        )
        with self._lock:
            self.tokens_issued += 1
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }

    def federated_token(
        self, subject: str, lifetime: float = 3600.0, audience: str = EXCHANGE_AUDIENCE
    ) -> str:
        """A token of the workload issuer (what ``AZURE_FEDERATED_TOKEN_FILE`` holds)."""
        now = int(time.time())
        claims = {
            "iss": self.workload_issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
        }
        return jwt.encode(
            claims, self.workload_key.key, algorithm="RS256", headers={"kid": self.workload_key.kid}
        )

    def token_request(self, tenant: str, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST /{tenant}/oauth2/v2.0/token``: the client-credentials grant."""
        if tenant.lower() != self.tenant_id.lower():
            raise TokenError(
                400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check the tenant ID."
            )
        if form.get("grant_type") != "client_credentials":
            raise TokenError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form.get('grant_type')}'.",
            )
        resource = self._resource(form.get("scope", ""))
        client_id = form.get("client_id", "")
        principal = self.principals.get(client_id)
        if principal is None or principal.managed:
            raise TokenError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'.",
            )
        if "client_secret" in form:
            if principal.secret is None or not hmac.compare_digest(
                principal.secret.encode(), form["client_secret"].encode()
            ):
                raise TokenError(
                    401,
                    "invalid_client",
                    7000215,
                    f"Invalid client secret provided for app '{client_id}'.",
                )
        elif form.get("client_assertion_type") == CLIENT_ASSERTION_TYPE:
            self._check_assertion(principal, form.get("client_assertion", ""))
        else:
            raise TokenError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        return self.issue(principal, resource)

    def managed_identity_request(
        self, params: Mapping[str, str], identity_header: str | None
    ) -> dict[str, Any]:
        """``GET IDENTITY_ENDPOINT?api-version=2019-08-01&resource=...`` (App Service)."""
        if identity_header is None or not hmac.compare_digest(
            identity_header.encode(), self.identity_header.encode()
        ):
            raise TokenError(401, "unauthorized", 0, "The X-IDENTITY-HEADER is missing or wrong.")
        resource = params.get("resource", "").rstrip("/")
        if resource not in self.audiences:
            raise TokenError(400, "invalid_resource", 500011, f"Unknown resource '{resource}'.")
        wanted = params.get("client_id")
        managed = [p for p in self.principals.values() if p.managed]
        chosen = [p for p in managed if p.client_id == wanted] if wanted else managed[:1]
        if not chosen:
            raise TokenError(
                400, "invalid_request", 0, f"No managed identity with client id '{wanted}'."
            )
        response = self.issue(chosen[0], resource)
        # The App Service shape: an absolute expiry, as a string of epoch seconds.
        return {
            "access_token": response["access_token"],
            "expires_on": str(int(time.time()) + int(response["expires_in"])),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": chosen[0].client_id,
        }

    def _resource(self, scope: str) -> str:
        resource = resource_of(scope)
        if resource not in self.audiences:
            raise TokenError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource or scope!r} was not found in the "
                f"tenant '{self.tenant_id}'.",
            )
        return resource

    def _check_assertion(self, principal: Principal, assertion: str) -> None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            raise TokenError(
                400, "invalid_request", 50027, "The client assertion is not a JWT."
            ) from None
        if principal.certificate is not None and (header.get("x5t") or header.get("x5t#S256")):
            self._check_certificate_assertion(principal, principal.certificate, assertion, header)
            return
        for credential in principal.federated:
            if self._federated_matches(credential, assertion):
                return
        raise TokenError(
            400,
            "invalid_client",
            70021,
            f"No matching federated identity record found for presented assertion of app "
            f"'{principal.client_id}'.",
        )

    def _check_certificate_assertion(
        self,
        principal: Principal,
        cert: x509.Certificate,
        assertion: str,
        header: Mapping[str, Any],
    ) -> None:
        sha1, sha256 = thumbprints(cert)
        # MSAL keeps base64's padding; the thumbprint is the same with or without it.
        x5t, x5t_s256 = (str(header.get(k) or "").rstrip("=") for k in ("x5t", "x5t#S256"))
        if x5t not in ("", sha1) or x5t_s256 not in ("", sha256):
            raise TokenError(
                401,
                "invalid_client",
                700027,
                f"The certificate with identifier used to sign the client assertion is not "
                f"registered on application '{principal.client_id}'.",
            )
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),  # type: ignore[arg-type]
                algorithms=_ASSERTION_ALGORITHMS,
                audience=self.token_endpoint,
                issuer=principal.client_id,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise TokenError(
                401, "invalid_client", 700027, f"Client assertion failed validation: {exc}."
            ) from None
        if claims.get("sub") != principal.client_id:
            raise TokenError(
                401, "invalid_client", 700027, "Client assertion subject is not the client id."
            )

    def _federated_matches(self, credential: FederatedCredential, assertion: str) -> bool:
        if credential.issuer not in ("", self.workload_issuer):
            return False  # only the built-in workload issuer's keys are known here
        try:
            claims = jwt.decode(
                assertion,
                self.workload_key.key.public_key(),
                algorithms=["RS256"],
                audience=credential.audience,
                issuer=self.workload_issuer,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.InvalidTokenError:
            return False
        return bool(claims.get("sub") == credential.subject)
