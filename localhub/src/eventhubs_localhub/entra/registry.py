"""Azure Schema Registry's REST API (2022-10, what azure-schemaregistry 1.x calls), on the
Entra mode's HTTPS server, authorised by the authority's own tokens:

- ``PUT  /$schemaGroups/{group}/schemas/{name}``: register (the body is the definition,
  ``Content-Type: application/json; serialization=Avro|Json``); an identical definition
  keeps its id and version, a new one gets the next version. 204 and the ``Schema-*``
  headers.
- ``POST /$schemaGroups/{group}/schemas/{name}:get-id``: the properties of a registered
  definition (204), 404 when it is not registered.
- ``GET  /$schemaGroups/$schemas/{id}``: the definition (200), its format in
  ``Content-Type``.

Every request carries ``Authorization: Bearer <token>`` for ``https://eventhubs.azure.net``
(the scope the SDK asks for); a missing or invalid token gets 401. Registering needs the
Data Sender or Data Owner role (standing in for Schema Registry Contributor); reading,
any valid token (Schema Registry Reader). A group exists once a schema is registered in it.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, unquote, urlsplit

from .tokens import DATA_OWNER, DATA_SENDER, TokenRejected, TokenVerifier

API_VERSIONS = frozenset({"2021-10", "2022-10"})
WRITER_ROLES = frozenset({DATA_SENDER, DATA_OWNER})
_FORMATS = {"avro": "Avro", "json": "Json", "custom": "Custom"}
_MAX_SCHEMA = 1024 * 1024  # the service's limit on a schema's size


@dataclass(frozen=True)
class RegisteredSchema:
    id: str
    group: str
    name: str
    version: int
    format: str  # Avro | Json | Custom
    definition: str

    @property
    def content_type(self) -> str:
        if self.format == "Custom":
            return "text/plain; charset=utf-8"
        return f"application/json; serialization={self.format}"


class SchemaRegistry:
    """The registered schemas, and the HTTP answers to the SDK's requests."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier
        self._by_id: dict[str, RegisteredSchema] = {}
        self._versions: dict[tuple[str, str], list[RegisteredSchema]] = {}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)

    # ---- the store (also for tests)

    def register(self, group: str, name: str, definition: str, fmt: str) -> RegisteredSchema:
        with self._lock:
            versions = self._versions.setdefault((group.lower(), name.lower()), [])
            for schema in versions:
                if schema.definition == definition and schema.format == fmt:
                    return schema
            schema = RegisteredSchema(
                uuid.uuid4().hex, group, name, len(versions) + 1, fmt, definition
            )
            versions.append(schema)
            self._by_id[schema.id] = schema
            return schema

    def find(self, group: str, name: str, definition: str, fmt: str) -> RegisteredSchema | None:
        with self._lock:
            for schema in self._versions.get((group.lower(), name.lower()), []):
                if schema.definition == definition and schema.format == fmt:
                    return schema
        return None

    def get(self, schema_id: str) -> RegisteredSchema | None:
        with self._lock:
            return self._by_id.get(schema_id)

    def schemas(self) -> list[RegisteredSchema]:
        with self._lock:
            return list(self._by_id.values())

    # ---- HTTP

    def serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        length = min(int(handler.headers.get("Content-Length") or 0), _MAX_SCHEMA + 1)
        body = handler.rfile.read(length) if length else b""
        status, headers, payload = self._answer(
            method, parts, dict(parse_qsl(url.query)), handler, body
        )
        with self._lock:
            self.requests.append((method, url.path, status))
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if payload:
            handler.wfile.write(payload)

    def _answer(
        self,
        method: str,
        parts: list[str],
        query: dict[str, str],
        handler: BaseHTTPRequestHandler,
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        token = (handler.headers.get("Authorization") or "").partition(" ")
        if token[0].lower() != "bearer" or not token[2]:
            return _error(401, "Unauthorized", "no bearer token")
        try:
            verified = self.verifier.verify(token[2].strip())
        except TokenRejected as exc:
            return _error(401, "Unauthorized", str(exc))
        if query.get("api-version") not in API_VERSIONS:
            return _error(400, "InvalidApiVersion", f"api-version {query.get('api-version')!r}")
        if method == "GET" and len(parts) == 3 and parts[1] == "$schemas":
            found = self.get(parts[2])
            if found is None:
                return _error(404, "ItemNotFound", f"schema id {parts[2]!r} not found")
            return (
                200,
                {**_properties(found), "Content-Type": found.content_type},
                (found.definition.encode()),
            )
        if len(parts) != 4 or parts[2] != "schemas":
            return _error(404, "NotFound", "/".join(parts))
        group, name = parts[1], parts[3]
        fmt = _format(handler.headers.get("Content-Type") or "")
        if fmt is None:
            return _error(415, "UnsupportedMediaType", "Content-Type names no schema format")
        if len(body) > _MAX_SCHEMA:
            return _error(413, "SchemaTooLarge", "a schema may have 1 MB")
        definition = body.decode("utf-8", errors="replace")
        if method == "POST" and name.endswith(":get-id"):
            found = self.find(group, name.removesuffix(":get-id"), definition, fmt)
            if found is None:
                return _error(404, "ItemNotFound", "no such schema is registered")
            return 204, _properties(found), b""
        if method == "PUT":
            if not verified.roles & WRITER_ROLES:
                return _error(403, "Forbidden", f"{verified.client_id} may not register")
            return 204, _properties(self.register(group, name, definition, fmt)), b""
        return _error(405, "MethodNotAllowed", method)


def _format(content_type: str) -> str | None:
    normalized = content_type.replace(" ", "").lower()
    if normalized.startswith("text/plain"):
        return "Custom"
    _, _, value = normalized.partition("serialization=")
    return _FORMATS.get(value.split(";")[0]) if value else None


def _properties(schema: RegisteredSchema) -> dict[str, str]:
    location = f"/$schemaGroups/{schema.group}/schemas/{schema.name}/versions/{schema.version}"
    return {
        "Location": location + "?api-version=2022-10",
        "Schema-Id": schema.id,
        "Schema-Id-Location": f"/$schemaGroups/$schemas/{schema.id}?api-version=2022-10",
        "Schema-Group-Name": schema.group,
        "Schema-Name": schema.name,
        "Schema-Version": str(schema.version),
    }


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, {"Content-Type": "application/json"}, body
