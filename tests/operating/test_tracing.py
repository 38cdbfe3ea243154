"""OpenTelemetry: the run's span and the SDK's send spans, in one process and across the
sender process; and nothing at all without the OTEL_* variables."""

from __future__ import annotations

import http.server
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from azure.core.settings import settings
from eventhubs_localhub import LocalHub
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from target_azure_eventhubs.delivery import tracing
from target_azure_eventhubs.target import TargetAzureEventHubs
from target_azure_eventhubs.telemetry import SPAN_NAME
from target_azure_eventhubs.testing import read_all
from tests.integration.target_runner import (
    MEMBERSHIP_PROPERTIES,
    record,
    run_target,
    schema,
    singer_lines,
    state,
)

STREAM = "memberships"
PROFILES = 12
MESSAGES: list[Any] = [
    schema(STREAM, MEMBERSHIP_PROPERTIES, ["profile_id"]),
    *(
        record(
            STREAM,
            {
                "profile_id": f"p{i}",
                "email": f"p{i}@example.com",
                "segment_id": "s1",
                "status": "realized",
            },
        )
        for i in range(PROFILES)
    ),
    state({"done": True}),
]


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter on the process's TracerProvider, installed as an embedding
    program would (a provider can be set only once per process)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    processor = SimpleSpanProcessor(memory)
    provider.add_span_processor(processor)
    yield memory
    processor.shutdown()


@pytest.fixture
def spans(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InMemorySpanExporter]:
    """The variable turns tracing on; the provider already installed is kept (so no
    console exporter is made)."""
    exporter.clear()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setattr(tracing, "_ready", None)  # this test's setup, not an earlier one
    try:
        yield exporter
    finally:
        settings.tracing_implementation.unset_value()  # the SDK untraced again


def run_in_process(config: dict[str, Any]) -> int:
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return TargetAzureEventHubs(config=config).run(io.StringIO(singer_lines(MESSAGES)))
    finally:  # the target installs its own handlers; give pytest its own back
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def named(found: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in found if span.name == name]


def test_the_run_span_is_the_parent_of_the_sdk_send_spans(
    spans: InMemorySpanExporter, local_hub: LocalHub, capsys: pytest.CaptureFixture[str]
) -> None:
    conn_str = local_hub.connection_string("profiles")
    code = run_in_process({"connection_string": conn_str, "sender_process": False})
    assert code == 0
    # singer_lines writes the STATE with json.dumps; it comes back as it was sent.
    assert capsys.readouterr().out.splitlines() == ['{"done": true}']
    finished = list(spans.get_finished_spans())

    [run] = named(finished, SPAN_NAME)
    assert run.parent is None
    assert dict(run.attributes or {}) == {
        "target_azure_eventhubs.records_read": PROFILES,
        "target_azure_eventhubs.events_sent": PROFILES,
        "target_azure_eventhubs.invalid_records": 0,
        "target_azure_eventhubs.streams": (STREAM,),
        "target_azure_eventhubs.exit_code": 0,
    }
    sends = named(finished, "EventHubs.send")
    assert sends, [span.name for span in finished]
    for send in sends:
        assert send.kind == trace.SpanKind.CLIENT
        assert send.parent is not None and send.parent.span_id == run.context.span_id
        assert send.context.trace_id == run.context.trace_id
        attributes = dict(send.attributes or {})
        # The SDK names the hub by its path; the plugin maps its legacy attribute names.
        assert attributes["messaging.destination.name"] == "/profiles"
        assert attributes["server.address"] == f"127.0.0.1:{local_hub.port}"
        assert attributes["messaging.system"] == "eventhubs"
        assert attributes["messaging.operation"] == "publish"
    events = read_all(conn_str)
    assert sorted(e.properties["segment_ids"] for e in events) == ["s1"] * PROFILES
    assert len(events) == PROFILES


def test_a_failed_run_ends_its_span_in_error(
    spans: InMemorySpanExporter, local_hub: LocalHub
) -> None:
    conn_str = local_hub.connection_string("profiles").replace("profiles", "missing-hub")
    code = run_in_process({"connection_string": conn_str, "sender_process": False})
    assert code == 1
    [run] = named(list(spans.get_finished_spans()), SPAN_NAME)
    assert run.status.status_code == trace.StatusCode.ERROR
    assert dict(run.attributes or {})["target_azure_eventhubs.exit_code"] == 1
    assert dict(run.attributes or {})["target_azure_eventhubs.events_sent"] == 0


def console_spans(stderr: str) -> list[dict[str, Any]]:
    """The spans the console exporter printed among the log lines."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := stderr.find('{\n    "name":', at)) != -1:
        span, end = decoder.raw_decode(stderr, at)
        found.append(span)
        at = end
    return found


def test_the_sender_process_sends_under_the_run_span(local_hub: LocalHub, tmp_path: Path) -> None:
    # The real command: both processes configure tracing from the variables; the
    # console exporter writes to stderr, so stdout still holds only the STATE.
    config = {"connection_string": local_hub.connection_string("profiles")}
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "target-under-test"}
    result = run_target(tmp_path, config, MESSAGES, env=env)
    assert result.returncode == 0, result.stderr
    assert result.states == [{"done": True}]
    found = console_spans(result.stderr)
    [run] = [span for span in found if span["name"] == SPAN_NAME]
    sends = [span for span in found if span["name"] == "EventHubs.send"]
    assert sends
    for send in sends:
        assert send["context"]["trace_id"] == run["context"]["trace_id"]
        assert send["parent_id"] == run["context"]["span_id"]
        assert send["attributes"]["messaging.destination.name"] == "/profiles"
        assert send["resource"]["attributes"]["service.name"] == "target-under-test"
    assert run["attributes"]["target_azure_eventhubs.events_sent"] == PROFILES
    assert local_hub.event_count("profiles") == PROFILES


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps the spans of each POST to /v1/traces."""

    received: ClassVar[list[tuple[str, str, str]]] = []  # (name, span id, parent id)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.received.extend(
                    (span.name, span.span_id.hex(), span.parent_span_id.hex())
                    for span in scope.spans
                )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(ExportTraceServiceResponse().SerializeToString())

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_otlp_endpoint_receives_the_spans_of_both_processes(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    # The default way: only OTEL_EXPORTER_OTLP_ENDPOINT, as a collector would be given.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = {"connection_string": local_hub.connection_string("profiles")}
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_target(
            tmp_path, config, MESSAGES, env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert result.states == [{"done": True}]
    [run] = [span for span in _Collector.received if span[0] == SPAN_NAME]
    sends = [span for span in _Collector.received if span[0] == "EventHubs.send"]
    assert sends  # exported by the sender process
    assert all(parent == run[1] for _, _, parent in sends)


def test_without_otel_variables_nothing_is_imported(local_hub: LocalHub, tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        "import io, json, sys\n"
        "from azure.core.settings import settings\n"
        "from target_azure_eventhubs.target import TargetAzureEventHubs\n"
        f"config = {{'connection_string': {local_hub.connection_string('profiles')!r}}}\n"
        f"lines = io.StringIO({singer_lines(MESSAGES)!r})\n"
        "code = TargetAzureEventHubs(config=config).run(lines)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "print(json.dumps([code, loaded, repr(settings.tracing_implementation())]),"
        " file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    code, loaded, implementation = json.loads(proc.stderr.strip().splitlines()[-1])
    assert code == 0
    assert loaded == []
    assert implementation == "None"
    assert local_hub.event_count("profiles") == PROFILES


def test_variables_without_the_extra_warn_and_run_untraced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setattr(tracing, "_ready", None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    assert tracing.setup(logging.getLogger("test")) is False
    assert "pip install 'target-azure-eventhubs[otel]'" in caplog.text
    assert settings.tracing_implementation() is None


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_which_variables_turn_tracing_on(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: bool
) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert tracing.requested() is expected
