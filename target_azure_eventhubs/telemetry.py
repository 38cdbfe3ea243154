"""One tracing span per run, when the OTEL_* variables turn tracing on (`delivery.tracing`).

The span is current while the run lasts, and delivery gets its context, so the SDK's send
spans, in this process or in the sender process, are its children. Its attributes say
what the run did; it ends in error when the run fails.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import IO, Any

from target_azure_eventhubs.delivery import tracing

SPAN_NAME = "target-azure-eventhubs run"
Run = Callable[[Any, IO[str] | None], int]


def traced_run(run: Run) -> Run:
    """Wrap the target's `run(file_input) -> exit code` in the run's span."""

    @functools.wraps(run)
    def traced(target: Any, file_input: IO[str] | None = None) -> int:
        if not tracing.setup(target.logger):
            return run(target, file_input)
        with tracing.run_span(SPAN_NAME) as span:
            target.delivery.trace_under(tracing.carrier())
            code = run(target, file_input)
            tracing.end_run(span, run_attributes(target, code), failed=code != 0)
        return code

    return traced


def run_attributes(target: Any, code: int) -> dict[str, Any]:
    """What the run did, read after it ended (delivery's counts are final then)."""
    return {
        "target_azure_eventhubs.records_read": target.run_state.records_read,
        "target_azure_eventhubs.events_sent": target.delivery.stats.events_sent,
        "target_azure_eventhubs.invalid_records": target.invalid.total,
        "target_azure_eventhubs.streams": sorted(target.mapper.stream_maps),
        "target_azure_eventhubs.exit_code": code,
    }
