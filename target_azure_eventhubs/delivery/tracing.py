"""OpenTelemetry tracing, on when the standard OTEL_* variables ask for it (extra `otel`).

Without them nothing here imports anything, so a run starts as fast as before. Both the
target's process and the sender process (which inherits the environment) call `setup`.
Exporters, sampler and resource come from the variables through the OpenTelemetry
distro's configurator, the code `opentelemetry-instrument` runs, so every OTEL_* variable
means what the OpenTelemetry documentation says; a TracerProvider the embedding program
installed first is used as it is. azure-core then traces the SDK's sends
(`EventHubs.send`); the target adds one span per run, and hands its context to delivery
(`parent_from`, `within`) so the sends are its children, in either process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

# Any of these asks for traces even without OTEL_TRACES_EXPORTER (then OTLP, its default).
_DESTINATIONS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_ready: bool | None = None  # this process's setup, done once


def requested() -> bool:
    """Whether the OTEL_* variables ask for traces (reads them only, imports nothing)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return any(os.environ.get(name) for name in (*_DESTINATIONS, "OTEL_CONFIG_FILE"))


def setup(logger: logging.Logger | None) -> bool:
    """Turn tracing on if the variables ask for it; True when it is on. Never raises:
    telemetry that cannot start leaves the run as it is, with a warning to `logger` (None
    in the sender process: the target's process reads the same variables and warns)."""
    global _ready  # noqa: PLW0603  (one tracing setup per process)
    if not requested():
        return False
    if _ready is None:
        _ready = _configure(logger)
    return _ready


def _configure(logger: logging.Logger | None) -> bool:
    try:
        from azure.core.settings import settings  # noqa: PLC0415
        from azure.core.tracing.ext.opentelemetry_span import (  # noqa: PLC0415, F401
            OpenTelemetrySpan,  # the plugin azure-core's "opentelemetry" setting loads
        )
        from opentelemetry import trace  # noqa: PLC0415
    except ImportError:
        _warn(
            logger,
            "OTEL_* variables ask for traces, but tracing needs the extra: "
            "pip install 'target-azure-eventhubs[otel]'",
        )
        return False
    try:
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            _configure_from_environment()
        settings.tracing_implementation = "opentelemetry"
    except Exception as exc:  # a wrong OTEL_* value: say which, and run untraced
        _warn(logger, f"Tracing is off: {str(exc).strip().splitlines()[0][:300]}")
        return False
    return True


def _warn(logger: logging.Logger | None, message: str) -> None:
    if logger is not None:
        logger.warning("%s", message)


def _configure_from_environment() -> None:
    from opentelemetry.distro import OpenTelemetryConfigurator  # noqa: PLC0415

    if any(os.environ.get(name) for name in _DESTINATIONS):
        os.environ.setdefault("OTEL_TRACES_EXPORTER", "otlp")
    # The extra ships the OTLP/HTTP exporter (the protocol the specification defaults to);
    # the Python SDK alone would look for the gRPC one.
    os.environ.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    if os.environ.get("OTEL_CONFIG_FILE"):
        OpenTelemetryConfigurator().configure()
    else:
        OpenTelemetryConfigurator().configure(exporter_args_map=_console_to_stderr())


def _console_to_stderr() -> Mapping[type, Mapping[str, Any]]:
    """`console` exporters write to stderr: stdout carries the Singer messages."""
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter  # noqa: PLC0415

    return {
        exporter: {"out": sys.stderr}
        for exporter in (ConsoleSpanExporter, ConsoleMetricExporter, ConsoleLogRecordExporter)
    }


@contextlib.contextmanager
def run_span(name: str) -> Iterator[Any]:
    """A span around a run, current while it lasts (only called once `setup` is True)."""
    from opentelemetry import trace  # noqa: PLC0415

    with trace.get_tracer("target_azure_eventhubs").start_as_current_span(name) as span:
        yield span


def end_run(span: Any, attributes: Mapping[str, Any], failed: bool) -> None:
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

    span.set_attributes(dict(attributes))
    if failed:
        span.set_status(Status(StatusCode.ERROR, "the run failed"))


def carrier() -> dict[str, str]:
    """The current span's context as W3C trace headers, to cross to the sender process."""
    from opentelemetry.propagate import inject  # noqa: PLC0415

    headers: dict[str, str] = {}
    inject(headers)
    return headers


def parent_from(headers: Mapping[str, str]) -> Any:
    """The context `carrier` wrote, for `within`; None when there is none."""
    if not headers:
        return None
    from opentelemetry.propagate import extract  # noqa: PLC0415

    return extract(dict(headers))


@contextlib.contextmanager
def within(context: Any) -> Iterator[None]:
    """Run the block in `context` (from `parent_from`), so its spans are children of the
    run; with None, nothing happens."""
    if context is None:
        yield
        return
    from opentelemetry import context as otel_context  # noqa: PLC0415

    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def flush(timeout: float) -> None:
    """Export the spans still buffered (before the sender process exits)."""
    if not _ready:
        return
    from opentelemetry import trace  # noqa: PLC0415

    provider = trace.get_tracer_provider()
    with contextlib.suppress(Exception):  # telemetry never fails the run
        provider.force_flush(int(timeout * 1000))  # type: ignore[attr-defined]
