"""The token authority over HTTPS: the endpoints MSAL and azure-identity call.

- ``GET  /{tenant}/v2.0/.well-known/openid-configuration`` (MSAL's tenant discovery)
- ``GET  /{tenant}/discovery/v2.0/keys`` (JWKS)
- ``GET  /common/discovery/instance`` (instance discovery, for a client pointed here)
- ``POST /{tenant}/oauth2/v2.0/token`` (client credentials: secret, certificate or
  federated assertion)
- ``GET  /msi/token`` (App Service managed identity, header ``X-IDENTITY-HEADER``)
- ``GET  /workload-issuer/.well-known/openid-configuration`` and ``/workload-issuer/keys``
  (the issuer of federated tokens)
- ``/$schemaGroups/...``: Azure Schema Registry (:mod:`.registry`)

Runs on its own thread (a threading HTTP server), beside the hub's event loop.
"""

from __future__ import annotations

import json
import logging
import shutil
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .authority import EntraAuthority, RequestRecord, TokenError
from .pki import TlsFiles, make_tls_files
from .registry import SchemaRegistry

_LOGGER = logging.getLogger("eventhubs_localhub.entra")
_MAX_BODY = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        _LOGGER.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_PUT(self) -> None:
        self._answer("PUT")

    def _answer(self, method: str) -> None:
        authority = self.server.authority
        url = urlsplit(self.path)
        if url.path.startswith("/$schemaGroups") and self.server.registry is not None:
            self.server.registry.serve(self, method)
            return
        parts = [p for p in url.path.split("/") if p]
        query = dict(parse_qsl(url.query))
        form: dict[str, str] = {}
        if method == "POST":
            length = min(int(self.headers.get("Content-Length") or 0), _MAX_BODY)
            form = dict(parse_qsl(self.rfile.read(length).decode("utf-8", errors="replace")))
        status, body = 200, None
        try:
            body = self._route(method, parts, query, form)
            if body is None:
                status, body = 404, {"error": "not_found", "error_description": url.path}
        except TokenError as exc:
            status, body = exc.status, exc.body
            _LOGGER.warning("token request refused: %s", body["error_description"])
        authority.record(
            RequestRecord(
                method,
                url.path,
                self.headers.get("Host", ""),
                status,
                form.get("client_id") or query.get("client_id"),
            )
        )
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _route(
        self, method: str, parts: list[str], query: dict[str, str], form: dict[str, str]
    ) -> dict[str, Any] | None:
        authority = self.server.authority
        if method == "GET":
            if parts == ["msi", "token"]:
                return authority.managed_identity_request(
                    query, self.headers.get("X-IDENTITY-HEADER")
                )
            if parts == ["common", "discovery", "instance"]:
                return authority.instance_discovery(query.get("authorization_endpoint", ""))
            if parts[:1] == ["workload-issuer"]:
                if parts[1:] == [".well-known", "openid-configuration"]:
                    return {
                        "issuer": authority.workload_issuer,
                        "jwks_uri": f"{authority.workload_issuer}/keys",
                    }
                if parts[1:] == ["keys"]:
                    return {"keys": [authority.workload_key.jwk()]}
                return None
            if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                self._check_tenant(parts[0])
                return authority.openid_configuration()
            if len(parts) == 4 and parts[1:] == ["discovery", "v2.0", "keys"]:
                self._check_tenant(parts[0])
                return authority.jwks()
            return None
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            return authority.token_request(parts[0], form)
        return None

    def _check_tenant(self, tenant: str) -> None:
        if tenant.lower() != self.server.authority.tenant_id.lower():
            raise TokenError(
                400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check the tenant ID."
            )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], authority: EntraAuthority) -> None:
        super().__init__(address, _Handler)
        self.authority = authority
        self.registry: SchemaRegistry | None = None


class AuthorityServer:
    """Serves an :class:`EntraAuthority` over HTTPS on ``host:port`` (0: a free port).

    Without ``tls``, a CA and a certificate for localhost/127.0.0.1 are made in a temporary
    directory (removed at :meth:`stop`); clients trust ``ca_path``.
    """

    def __init__(
        self,
        authority: EntraAuthority,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsFiles | None = None,
    ) -> None:
        self.authority = authority
        self.host = host
        self.requested_port = port
        self.port = 0
        self.tls = tls
        self._tempdir: str | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        #: Azure Schema Registry, served on the same address (``https://host:port``); its
        #: tokens name the issuer at the address, known once listening.
        self.registry: SchemaRegistry | None = None

    @property
    def ca_path(self) -> Path:
        assert self.tls is not None, "not started"
        return self.tls.ca

    def start(self) -> AuthorityServer:
        if self.tls is None:
            self._tempdir = tempfile.mkdtemp(prefix="localhub-entra-")
            self.tls = make_tls_files(Path(self._tempdir))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.tls.cert), str(self.tls.key))
        server = _Server((self.host, self.requested_port), self.authority)
        # The handshake happens in the request's thread, not in the accepting one.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._server = server
        self.port = int(server.server_address[1])
        self.authority.base_url = f"https://{self.host}:{self.port}"
        self.registry = server.registry = SchemaRegistry(self.authority.verifier())
        self._thread = threading.Thread(
            target=server.serve_forever, name="localhub-entra", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
