"""The request/response nodes: ``$cbs`` (put-token) and ``$management`` (READ)."""

from __future__ import annotations

import logging
import time
from typing import Any

from .auth import AuthError, Grant
from .codec import Timestamp
from .frames import encode_message
from .peers import ConnectionView

_LOGGER = logging.getLogger("eventhubs_localhub")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _reply(request: dict[str, Any], status: int, description: str, body: Any = None) -> bytes:
    properties = request.get("properties") or []
    message_id = properties[0] if properties else None
    reply_to = properties[4] if len(properties) > 4 else None
    return encode_message(
        # correlation-id must equal the request's message-id: the SDK matches on it.
        properties=[None, None, reply_to, None, None, message_id],
        application_properties={
            "status-code": status,
            "status-description": description,
            "statusCode": status,
            "statusDescription": description,
        },
        value=body,
    )


def handle_cbs(conn: ConnectionView, request: dict[str, Any]) -> bytes:
    props = request.get("application_properties") or {}
    operation = _text(props.get("operation"))
    token_type = _text(props.get("type")) or ""
    audience = _text(props.get("name")) or ""
    token = _text(request.get("value"))
    if token is None and request.get("data"):
        token = _text(b"".join(request["data"]))
    if operation != "put-token" or token is None:
        return _reply(request, 400, f"Unsupported CBS operation {operation!r}")
    if conn.server.faults.tokens_refused:
        _LOGGER.warning(
            "auth failure on %s: token for %s refused (fault injection)", conn.peer, audience
        )
        return _reply(request, 401, "Unauthorized: token refused (fault injection).")
    try:
        grant = conn.server.authorizer.validate(token, token_type, audience)
    except AuthError as exc:
        _LOGGER.warning("auth failure on %s: put-token for %s: %s", conn.peer, audience, exc.reason)
        return _reply(request, 401, f"Unauthorized: {exc.reason}")
    # As the service does: a token for an entity the namespace lacks is refused (404), so
    # a client learns of a misspelt event hub when it authenticates, before any link.
    entity = grant.path.split("/", 1)[0]
    if entity and conn.server.storage.get(entity) is None:
        _LOGGER.warning("put-token on %s for %s: no such event hub", conn.peer, audience)
        return _reply(request, 404, f"The messaging entity '{audience}' could not be found.")
    lifetime = conn.server.faults.forced_token_lifetime
    if lifetime is not None:
        grant = Grant(grant.path, grant.rights, min(grant.expires_at, time.time() + lifetime))
    conn.add_grant(grant)
    _LOGGER.info(
        "token accepted on %s for %s (rights %s)",
        conn.peer,
        audience,
        ",".join(sorted(grant.rights)),
    )
    return _reply(request, 200, "OK")


def handle_management(conn: ConnectionView, request: dict[str, Any]) -> bytes:
    props = request.get("application_properties") or {}
    operation = _text(props.get("operation"))
    kind = _text(props.get("type"))
    name = _text(props.get("name")) or ""
    if operation != "READ":
        return _reply(request, 400, f"Unsupported management operation {operation!r}")
    hub = conn.server.storage.get(name)
    if hub is None:
        return _reply(request, 404, f"The messaging entity '{name}' could not be found.")
    if not conn.management_allowed(hub.name, _text(props.get("security_token"))):
        _LOGGER.warning(
            "auth failure on %s: management READ on %s without a valid token", conn.peer, name
        )
        return _reply(request, 401, f"Unauthorized access to '{name}'.")
    if kind == "com.microsoft:eventhub":
        return _reply(
            request,
            200,
            "OK",
            {
                "name": hub.name,
                "type": "com.microsoft:eventhub",
                "created_at": Timestamp(hub.created_at_ms),
                "partition_count": len(hub.partitions),
                "partition_ids": hub.partition_ids,
            },
        )
    if kind == "com.microsoft:partition":
        partition_id = _text(props.get("partition")) or ""
        log = hub.partition(partition_id)
        if log is None:
            return _reply(
                request, 404, f"Partition '{partition_id}' of '{name}' could not be found."
            )
        empty = len(log) == 0
        return _reply(
            request,
            200,
            "OK",
            {
                "name": hub.name,
                "type": "com.microsoft:partition",
                "partition": log.partition_id,
                "begin_sequence_number": 0 if not empty else -1,
                "last_enqueued_sequence_number": log.last_sequence_number,
                "last_enqueued_offset": str(log.offsets[-1]) if not empty else "-1",
                "last_enqueued_time_utc": Timestamp(log.times[-1] if not empty else 0),
                "is_partition_empty": empty,
            },
        )
    return _reply(request, 400, f"Unsupported management type {kind!r}")
