"""The `avro` and `json_schema` cases of target_bench.py: the cost of Schema Registry
encoding against JSON, measured in the same run against the same hub.

One in-process local hub in Entra mode, with its Schema Registry on the authority's HTTPS
address; the target CLI (sender process on, defaults otherwise) authenticates with a client
secret, first with `encoding: json`, then with each registry encoding. Verified: exit 0,
every event in the hub, the content type `<mime>+<schema id>` of a registered schema, and a
sample of bodies decoded with the official encoder equal to the JSON events (Avro nulls,
for attributes a record lacks, left out).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import common

APP, SECRET = "bench-sender", "Bench-Sender-Secret-1"
GROUP = "bench"
CASES = ("avro", "json_schema")
DECODED_SAMPLE = 500


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def run_encodings(
    work: Path, input_path: Path, records: int, encodings: list[str], target_command: list[str]
) -> dict[str, dict[str, Any]]:
    """`json` then each of `encodings`, each a full target run; returns one result each."""
    from azure.identity import ClientSecretCredential
    from azure.schemaregistry import SchemaRegistryClient
    from azure.schemaregistry.encoder.avroencoder import AvroEncoder
    from azure.schemaregistry.encoder.jsonencoder import JsonSchemaEncoder
    from eventhubs_localhub import LocalHub
    from eventhubs_localhub.entra import EntraAuthority

    entra = EntraAuthority()
    entra.register(APP, ["owner"], secret=SECRET)
    results: dict[str, dict[str, Any]] = {}
    hubs = {f"{common.HUB}-{e}": common.PARTITIONS for e in ("json", *encodings)}
    with LocalHub(hubs=hubs, entra=entra) as hub:
        assert hub.entra_server is not None
        registry = f"127.0.0.1:{hub.entra_server.port}"
        base = {
            "use_entra_id": True,
            "namespace": "localhost",
            "authority_host": entra.authority_host,
            "connection_verify": hub.entra_ca_path,
            "custom_endpoint_address": f"sb://127.0.0.1:{hub.tls_port}",
            "tenant_id": entra.tenant_id,
            "client_id": APP,
            "client_secret": SECRET,
            "schema_group": GROUP,
            "schema_registry_namespace": registry,
            **common.CONTENT_CONFIG,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_"))}
        json_bodies: dict[str, Any] = {}
        for encoding in ("json", *encodings):
            name = f"{common.HUB}-{encoding}"
            config = work / f"{encoding}.config.json"
            config.write_text(json.dumps({**base, "eventhub_name": name, "encoding": encoding}))
            with input_path.open("rb") as stdin:
                child = common.run_child(
                    [*target_command, "--config", str(config)],
                    stdin,
                    work / f"{encoding}.stderr",
                    env=env,
                )
            events = hub.events(name)
            problems = []
            if child.returncode != 0:
                problems.append(f"target exited {child.returncode}; see {encoding}.stderr")
            if len(events) != records:
                problems.append(f"hub holds {len(events)} events, expected {records}")
            sample = events[:: max(1, len(events) // DECODED_SAMPLE)]
            started = time.perf_counter()
            if encoding == "json":
                json_bodies = {_profile(json.loads(e.body)): json.loads(e.body) for e in events}
            else:
                credential = ClientSecretCredential(
                    entra.tenant_id,
                    APP,
                    SECRET,
                    authority=entra.authority_host,
                    disable_instance_discovery=True,
                    connection_verify=hub.entra_ca_path,
                )
                client = SchemaRegistryClient(
                    registry, credential, connection_verify=hub.entra_ca_path
                )
                decoder: Any = (
                    AvroEncoder(client=client)
                    if encoding == "avro"
                    else JsonSchemaEncoder(
                        client=client, validate="http://json-schema.org/draft-07/schema#"
                    )
                )
                types = {e.content_type for e in events}
                if len(types) != 1:
                    problems.append(f"content types {sorted(map(str, types))[:3]}")
                for event in sample:
                    body = _without_nulls(
                        decoder.decode({"content": event.body, "content_type": event.content_type})
                    )
                    if body != json_bodies.get(_profile(body)):
                        problems.append(f"event {event.sequence_number} decodes differently")
                        break
                client.close()
            results[encoding] = {
                "records": records,
                "seconds": child.wall_seconds,
                "records_per_s": records / child.wall_seconds,
                "cpu_seconds": child.cpu_seconds,
                "max_rss_mb": child.max_rss_mb,
                "mean_body_bytes": sum(len(e.body) for e in sample) / max(1, len(sample)),
                "content_type": events[0].content_type if events else None,
                "decoded_sample": 0 if encoding == "json" else len(sample),
                "verify_seconds": round(time.perf_counter() - started, 2),
                "verify": {"ok": not problems, "problems": problems},
            }
    return results


def _profile(body: dict[str, Any]) -> str:
    return json.dumps(body.get("identityMap"), sort_keys=True)


def print_pair(name: str, result: dict[str, Any]) -> None:
    """Two table lines: the JSON run and the encoding's, against the same Entra-mode hub."""
    for label, c in ((f"{name}: json", result["json"]), (name, result)):
        ok = "yes" if c["verify"]["ok"] else "NO: " + "; ".join(c["verify"]["problems"][:2])
        print(
            f"{label:<20} {c['seconds']:>8.2f} {c['records_per_s']:>10,.0f} "
            f"body {c['mean_body_bytes']:>5.0f} B {c['cpu_seconds']:>7.2f} CPU s "
            f"{c['max_rss_mb']:>7.1f} MB  {ok}"
        )
    print(
        f"({name} / json, same hub and run: {result['vs_json_records_per_s']:.2f} of the "
        f"records/s; content type {result['content_type']})"
    )
