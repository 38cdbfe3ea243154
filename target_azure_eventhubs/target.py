"""target-azure-eventhubs: the Singer target and its settings."""

from __future__ import annotations

import bisect
import copy
import itertools
import logging
import operator
import os
import signal
import sys
import time
import typing as t
from types import FrameType

import orjson
from singer_sdk import typing as th
from singer_sdk.exceptions import MissingKeyPropertiesError, RecordsWithoutSchemaException
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.target_base import Target

from target_azure_eventhubs import runtime
from target_azure_eventhubs.connection import connection_from_config
from target_azure_eventhubs.conversion import (
    DEFAULT_ATTRIBUTE_FIELDS,
    DEFAULT_IDENTITY_FIELDS,
    ConversionSettings,
)
from target_azure_eventhubs.delivery import Delivery, event_fits, options_from_config
from target_azure_eventhubs.delivery_process import DeliveryProcess
from target_azure_eventhubs.errors import (
    ConfigurationError,
    InputError,
    InvalidRecordFailure,
    TargetError,
)
from target_azure_eventhubs.invalid_records import POLICIES, InvalidRecords
from target_azure_eventhubs.reader import InvalidLine, TickingReader
from target_azure_eventhubs.runtime import tune_garbage_collector
from target_azure_eventhubs.sink import Drained, EventHubSink, RecordRejected

_STRING_MAP = th.ObjectType(additional_properties=th.StringType())
_MAX_DEFERRED_EVENTS = 20_000  # see _defer_sending
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)


class RecordBeforeSchema(InputError, RecordsWithoutSchemaException):
    """A RECORD arrived before its stream's SCHEMA (a broken tap)."""


class MissingKeyProperties(InputError, MissingKeyPropertiesError):
    """A record lacks a key property its SCHEMA declared (a broken tap)."""

CONNECTION_SETTINGS = th.PropertiesList(
    th.Property(
        "namespace",
        th.StringType(),
        description="Event Hubs namespace: a name like `contoso` or a host like "
        "`contoso.servicebus.windows.net`. Used with the SAS key or Entra ID.",
    ),
    th.Property(
        "eventhub_name",
        th.StringType(),
        description="The event hub to send to (optional when the connection string has "
        "`EntityPath`).",
    ),
    th.Property("sas_key_name", th.StringType(), description="Shared access policy name."),
    th.Property(
        "sas_key", th.StringType(), secret=True, description="Shared access key of the policy."
    ),
    th.Property(
        "connection_string",
        th.StringType(),
        secret=True,
        description="A connection string instead of namespace + SAS key. "
        "`UseDevelopmentEmulator=true` is accepted only for a loopback host.",
    ),
    th.Property(
        "use_entra_id",
        th.BooleanType(),
        default=False,
        description="Authenticate with Microsoft Entra ID (`DefaultAzureCredential`, or a "
        "service principal when tenant_id, client_id and client_secret are set).",
    ),
    th.Property("tenant_id", th.StringType(), description="Entra ID tenant of the principal."),
    th.Property("client_id", th.StringType(), description="Entra ID application (client) id."),
    th.Property(
        "client_secret", th.StringType(), secret=True, description="Entra ID client secret."
    ),
    th.Property(
        "transport_type",
        th.StringType(allowed_values=["amqp", "amqp_websockets"]),
        default="amqp",
        description="`amqp` (port 5671) or `amqp_websockets` (port 443, for firewalls).",
    ),
    th.Property(
        "custom_endpoint_address",
        th.StringType(),
        description="Reach the service through this address (a proxy or private endpoint), "
        "e.g. `sb://gateway.example.com:443`.",
    ),
    th.Property(
        "connection_verify",
        th.StringType(),
        description="Path to a CA bundle used to verify the service's TLS certificate.",
    ),
    th.Property("name", th.StringType(), description="A label for this connection (logged)."),
    th.Property(
        "description", th.StringType(), description="A description of this connection (logged)."
    ),
)

CONTENT_SETTINGS = th.PropertiesList(
    th.Property(
        "identity_fields",
        _STRING_MAP,
        default=dict(DEFAULT_IDENTITY_FIELDS),
        description="Record field -> identity namespace. Namespaces ending in `_sha256` "
        "are normalised and hashed.",
    ),
    th.Property(
        "attribute_fields",
        _STRING_MAP,
        default=dict(DEFAULT_ATTRIBUTE_FIELDS),
        description="Record field -> dotted path of the profile attribute in the event.",
    ),
    th.Property(
        "include_unmapped_attributes",
        th.BooleanType(),
        default=False,
        description="Also send fields not in attribute_fields, under `attributes.<field>`.",
    ),
    th.Property("segment_id_field", th.StringType(), default="segment_id",
                description="Field with the segment id (membership rows)."),
    th.Property("segment_status_field", th.StringType(), default="status",
                description="Field with the membership status (membership rows)."),
    th.Property("segment_time_field", th.StringType(), default="last_qualification_time",
                description="Field with the last qualification time (membership rows)."),
    th.Property("segment_name_field", th.StringType(), default="segment_name",
                description="Field with the segment name (membership rows)."),
    th.Property("segments_field", th.StringType(), default="segments",
                description="Field holding a list or map of memberships."),
    th.Property("segment_namespace", th.StringType(), default="ups",
                description="Key under `segmentMembership` (the segments' namespace)."),
    th.Property("include_segment_names", th.BooleanType(), default=False,
                description="Add each segment's `name`."),
    th.Property(
        "include_segment_timestamps",
        th.BooleanType(),
        default=False,
        description="Add `createdAt`, `updatedAt`, `mappingCreatedAt`, `mappingUpdatedAt` "
        "from segment_catalog.",
    ),
    th.Property(
        "segment_catalog",
        th.ObjectType(additional_properties=th.ObjectType()),
        description="Segment id -> {name, createdAt, updatedAt, mappingCreatedAt, "
        "mappingUpdatedAt} (epoch ms or ISO times).",
    ),
    th.Property(
        "group_by_profile",
        th.BooleanType(),
        default=True,
        description="Merge the rows of one profile that arrive together into one event.",
    ),
    th.Property(
        "stream_eventhubs",
        _STRING_MAP,
        description="Stream name -> event hub name, to route streams to different hubs.",
    ),
)

DELIVERY_SETTINGS = th.PropertiesList(
    th.Property(
        "partition_key_field",
        th.StringType(),
        description="Record field that keys a profile's partition. Default: the stream's "
        "first key property, else the profile's first identity.",
    ),
    th.Property(
        "partitioning",
        th.StringType(allowed_values=["per_profile", "round_robin"]),
        default="per_profile",
        description="`per_profile` keeps each profile's events in order on one partition; "
        "`round_robin` spreads events over all partitions.",
    ),
    th.Property(
        "max_batch_size_bytes",
        th.IntegerType(),
        description="Cap batches below the hub's maximum message size.",
    ),
    th.Property(
        "max_latency_ms",
        th.IntegerType(),
        default=1000,
        description="No record waits longer than this before its send starts.",
    ),
    th.Property("max_retries", th.IntegerType(), default=8,
                description="Retries of one batch before the run fails."),
    th.Property("retry_backoff_seconds", th.NumberType(), default=1.0,
                description="First retry delay; doubles per retry, with jitter."),
    th.Property(
        "retry_backoff_max_seconds",
        th.NumberType(),
        default=30.0,
        description="Longest delay between two retries.",
    ),
    th.Property("send_timeout_seconds", th.NumberType(), default=30.0,
                description="A send without acknowledgement after this long is retried."),
    th.Property(
        "shutdown_timeout_seconds",
        th.NumberType(),
        default=30.0,
        description="On SIGTERM/SIGINT, how long in-flight sends may take to finish.",
    ),
    th.Property(
        "max_parallel_sends",
        th.IntegerType(),
        default=4,
        description="Sender connections per event hub (each owns a share of the partitions).",
    ),
    th.Property(
        "sender_process",
        th.BooleanType(),
        default=True,
        description="Send from a separate process, so reading and sending use two cores. "
        "Turn off to keep everything in one process (slower).",
    ),
    th.Property(
        "max_buffered_mb",
        th.IntegerType(),
        default=64,
        description="Events waiting for acknowledgement before reading pauses.",
    ),
    th.Property(
        "on_invalid_record",
        th.StringType(allowed_values=list(POLICIES)),
        default="fail",
        description="`fail` (stop with a clear error), `skip` (warn and count) or "
        "`dead_letter` (append to dead_letter_path).",
    ),
    th.Property(
        "dead_letter_path",
        th.StringType(),
        description="JSONL file receiving invalid records with the reason.",
    ),
)


class TargetAzureEventHubs(Target):
    """Streams profile segment memberships into Azure Event Hubs, at least once."""

    name = "target-azure-eventhubs"
    config_jsonschema = th.PropertiesList(
        *CONNECTION_SETTINGS, *CONTENT_SETTINGS, *DELIVERY_SETTINGS
    ).to_dict()
    default_sink_class = EventHubSink
    message_reader_class = TickingReader

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        # The SDK logs every AMQP state change at INFO; keep its warnings and errors only.
        logging.getLogger("azure").setLevel(logging.WARNING)
        config = self.config
        self.connection = connection_from_config(config)
        try:
            self.conversion_settings = ConversionSettings.from_config(config)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.round_robin = config.get("partitioning") == "round_robin"
        self.invalid = InvalidRecords(
            config.get("on_invalid_record", "fail"), config.get("dead_letter_path"), self.logger
        )
        options = options_from_config(config)
        self.delivery: Delivery | DeliveryProcess
        use_process = config.get("sender_process", True)
        if use_process and os.name != "posix":  # the child gets its socket via pass_fds
            self.logger.info("sender_process needs a POSIX system: sending from this process")
            use_process = False
        if use_process:
            self.delivery = DeliveryProcess(
                config, options, self._emit_state, self.logger, lambda: self._terminating
            )
            if self.connection.default_eventhub:  # connect while the first lines are read
                self.delivery.connect_early(self.connection.default_eventhub)
        else:
            self.delivery = Delivery(self.connection, options, self._emit_state, self.logger)
        self.max_latency = float(config.get("max_latency_ms", 1000)) / 1000
        self._records_read = 0
        self._started = time.monotonic()
        self._terminating = False
        self._pending_states: list[tuple[int, dict]] = []  # read, not yet given to delivery
        self._oldest_pending: float | None = None  # when the oldest unsent record was read
        self._first_record_clock = runtime.started()  # see _pending_since
        self._order = itertools.count()
        self._outgoing: list[Drained] = []
        self._ready_hubs: set[str] = set()  # hubs whose limits delivery knows
        self._send_now = False  # end of input or an error: deferring is over
        reader = self._reader = t.cast(TickingReader, self.message_reader)
        reader.tick_seconds = max(0.02, min(0.25, self.max_latency / 4))
        reader.on_tick = self._on_tick
        reader.should_stop = lambda: self._terminating
        if self.invalid.policy != "fail":
            reader.on_invalid_line = self._on_invalid_line

    # Settings used by the sinks ------------------------------------------------------------

    @property
    def max_parallelism(self) -> int:
        # Drains only encode and queue (delivery sends in its own threads), so running them
        # one after the other costs nothing and keeps the order of streams deterministic.
        return 1

    @max_parallelism.setter
    def max_parallelism(self, new_value: int) -> None:
        """Ignored: see the getter."""

    @property
    def current_line(self) -> int:
        return self._reader.line_number

    def eventhub_for(self, stream_name: str) -> str:
        routes = self.config.get("stream_eventhubs") or {}
        hub = routes.get(stream_name) or self.connection.default_eventhub
        if not hub:
            raise InputError(
                f"stream '{stream_name}' has no event hub: add it to stream_eventhubs or set "
                "eventhub_name"
            )
        return str(hub)

    # Message handling --------------------------------------------------------------------

    def _process_schema_message(self, message_dict: dict) -> None:
        # A schema change makes the SDK start a new sink and drain the old one later; drain
        # now so a profile's events keep their input order across the change.
        stream = message_dict.get("stream")
        if stream in self._sinks_active and self._sinks_active[stream].current_size:
            self.drain_all()
        super()._process_schema_message(message_dict)

    def _process_record_message(self, message_dict: dict) -> None:
        if "record" not in message_dict or "stream" not in message_dict:
            self._assert_line_requires(message_dict, requires={"stream", "record"})
        stream_name = message_dict["stream"]
        line = self._reader.line_number
        stream_maps = self.mapper.stream_maps.get(stream_name)
        if stream_maps is None:
            raise RecordBeforeSchema(
                f"input line {line}: a RECORD for stream '{stream_name}' arrived before the "
                "stream's SCHEMA message"
            )
        raw = message_dict["record"]
        if not isinstance(raw, dict):
            self.invalid.handle(stream=stream_name, line=line, key=None,
                                reason="the record is not a JSON object", record=raw)
            return
        # Without stream maps the record passes through as is; no copy needed then.
        single = len(stream_maps) == 1 and type(stream_maps[0]) is SameRecordTransform
        for stream_map in stream_maps:
            record = stream_map.transform(raw if single else copy.copy(raw))
            if record is not None:
                self._accept(stream_map.stream_alias, record, line)
        self._handle_max_record_age()

    def _accept(self, stream_name: str, record: dict, line: int) -> None:
        sink: EventHubSink = self.get_sink(stream_name, record=record)  # type: ignore[assignment]
        if missing := [k for k in sink.key_properties if k not in record]:
            raise MissingKeyProperties(
                f"input line {line}: a record of stream '{stream_name}' lacks its key "
                f"properties {', '.join(missing)}"
            )
        sink.tally_record_read()
        sink.record_counter_metric.increment()
        self._records_read += 1
        try:
            sink.accept(record, line)
        except RecordRejected as rejected:
            self.invalid.handle(
                stream=stream_name, line=line, key=rejected.key, reason=rejected.reason,
                record=record,
            )
            return
        if self._oldest_pending is None:
            self._oldest_pending = self._pending_since()
        if sink.is_full:
            self.drain_all()  # all sinks, so events of all streams leave in input order

    def _pending_since(self) -> float:
        """When the oldest unsent record arrived: now, or for the first records, as early as
        the command started (input may have waited on stdin while it loaded), but leaving
        them at least half of max_latency_ms to be grouped."""
        now = time.monotonic()
        if self._first_record_clock is None:
            return now
        start, self._first_record_clock = self._first_record_clock, None
        return min(now, max(start, now - self.max_latency / 2))

    def _assert_line_requires(self, message_dict: dict, requires: set[str]) -> None:
        if missing := requires - message_dict.keys():
            kind = str(message_dict.get("type", "message"))[:20]
            raise InputError(
                f"input line {self.current_line}: the {kind} message has no "
                f"{', '.join(sorted(missing))}"
            )

    def next_order(self) -> int:
        """Input position of a record, so events of all streams are sent in input order."""
        return next(self._order)

    def enqueue(self, events: list[Drained]) -> None:
        """Take a drained sink's events; they are sent, in input order, after the drain."""
        self._outgoing.extend(events)

    def _drain_all(self, sink_list: t.Iterable[t.Any], parallelism: int) -> None:
        # Each sink's process_batch only builds events (see `enqueue`); one merged,
        # input-ordered list is sent when drain_all ends (`_reset_max_record_age`), so a
        # profile's events keep their order across streams and each STATE is placed right
        # after its records.
        try:
            super()._drain_all(sink_list, 1)
        except InvalidRecordFailure:
            self._send_outgoing(release_states=False)  # valid events go; no STATE follows
            raise

    def _send_outgoing(self, *, release_states: bool) -> None:
        """Submit drained events in input order, registering each STATE where it was read."""
        if release_states and self._defer_sending():
            return
        events, self._outgoing = sorted(self._outgoing, key=_first), []
        events = self._refuse_oversized(events)
        states, self._pending_states = (
            (self._pending_states, []) if release_states else ([], self._pending_states)
        )
        start = 0
        for order, state in states:
            end = bisect.bisect_left(events, order, lo=start, key=_first)
            self._submit(events[start:end])
            start = end
            self.delivery.checkpoint(state)
        self._submit(events[start:])

    def _defer_sending(self) -> bool:
        """Whether drained events may wait here while the sender process still connects.

        Reading goes on meanwhile; the wait is short (half of max_latency_ms, a bounded
        number of events) and never at the end of input.
        """
        if self._send_now or not self._outgoing or self._oldest_pending is None:
            return False
        if len(self._outgoing) >= _MAX_DEFERRED_EVENTS:
            return False
        if time.monotonic() - self._oldest_pending >= self.max_latency / 2:
            return False
        hubs = {t.cast(EventHubSink, s).eventhub for s in self._sinks_active.values()}
        hubs -= self._ready_hubs
        self._ready_hubs.update(hub for hub in hubs if self.delivery.limits_ready(hub))
        if hubs <= self._ready_hubs:
            return False
        self.logger.debug(
            "Holding %d drained events while the sender process connects", len(self._outgoing)
        )
        return True

    def _refuse_oversized(self, events: list[Drained]) -> list[Drained]:
        """The events that fit in a message of their hub; `on_invalid_record` for the rest."""
        limits = {hub: self.delivery.max_event_bytes(hub) for hub in {e.hub for e in events}}
        fitting = [e for e in events if event_fits(e.out, limits[e.hub])]
        if len(fitting) < len(events):
            try:
                for event in events:
                    if not event_fits(event.out, limits[event.hub]):
                        event.sink.refuse_oversized(event, limits[event.hub])
            except InvalidRecordFailure:
                self._submit(fitting)  # valid events go; no STATE follows
                raise
        return fitting

    def _submit(self, events: list[Drained]) -> None:
        for hub, group in itertools.groupby(events, key=_second):
            self.delivery.submit(hub, ((e.partition_key, e.out) for e in group))

    def _on_invalid_line(self, invalid: InvalidLine) -> None:
        self.invalid.handle(stream=None, line=invalid.line_number, key=None,
                            reason=invalid.reason, raw=invalid.raw[:10000])

    def _handle_max_record_age(self) -> None:
        if self._oldest_pending is None:
            return
        if time.monotonic() - self._oldest_pending >= self.max_latency:
            self.drain_all()

    def _reset_max_record_age(self) -> None:
        # The SDK calls this last in drain_all, once every sink has been drained.
        super()._reset_max_record_age()
        self._send_outgoing(release_states=True)
        if not self._outgoing:
            self._oldest_pending = None

    def _on_tick(self, idle: bool) -> None:
        """Between input chunks: keep max_latency_ms; when idle, also relay a new STATE."""
        self.delivery.raise_if_failed()
        self._handle_max_record_age()
        if idle and self._pending_states:
            self.drain_all()

    def _process_state_message(self, message_dict: dict) -> None:
        before = self._latest_state
        super()._process_state_message(message_dict)
        if self._latest_state is not before:  # the SDK ignores a repeated STATE
            self._pending_states.append((self.next_order(), self._latest_state or {}))
        # Draining at a STATE (a point the tap chose) rather than mid-way between two rows
        # of one profile keeps the profile's rows in one event. Only once records have
        # waited a while, so frequent STATE messages do not shrink batches.
        if (
            self._oldest_pending is None
            or time.monotonic() - self._oldest_pending >= self.max_latency / 4
        ):
            self.drain_all()

    # STATE: written by delivery once the events before it are accepted -------------------

    def _write_state_message(self, state: dict) -> None:
        """Nothing to do: `_send_outgoing` registered every STATE with delivery, in place."""

    def _emit_state(self, state: dict) -> None:
        sys.stdout.write(orjson.dumps(state).decode() + "\n")
        sys.stdout.flush()

    # End of input, errors and signals -----------------------------------------------------

    def process_endofpipe(self) -> None:
        self._send_now = True
        super().process_endofpipe()
        timeout = self.config.get("shutdown_timeout_seconds", 30.0) if self._terminating else None
        if not self.delivery.flush(timeout):
            pending = self.delivery.pending_events()
            raise TargetError(
                f"stopped with {pending} events not yet accepted by Event Hubs after "
                f"{timeout} s; no STATE was written for them, re-run from the last STATE"
            )
        self.delivery.close()  # everything is accepted: release connections and threads

    def run(self, file_input: t.IO[str] | None = None) -> int:
        """Process the input; returns the exit code. Errors end as one clear log line."""
        code = 0
        try:
            self.listen(file_input)
        except TargetError as error:
            self._salvage(error)
            self.logger.error("%s", error)
            code = 1
        except Exception as error:  # a bug: say so in one line, keep the traceback for a report
            self.logger.exception("Unexpected error, please report it: %s", error)
            code = 1
        finally:
            self.delivery.close()
            self._log_summary()
        if self._terminating and code == 0:
            self.logger.info("Stopped on a termination signal; all events read were accepted")
        return code

    def _salvage(self, error: TargetError) -> None:
        """After bad input, still deliver the records read before it and their STATE."""
        if getattr(error, "during_drain", False) or self.delivery.failure is not None:
            return
        self._send_now = True
        try:
            self.drain_all()
            self.delivery.flush(float(self.config.get("shutdown_timeout_seconds", 30.0)))
        except TargetError as second:
            self.logger.error("While saving records read before the error: %s", second)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        if self._terminating:  # a second signal: stop now, writing nothing more
            self.logger.error("Second termination signal: exiting without waiting for sends")
            os._exit(1)
        self._terminating = True
        self.logger.warning(
            "Received %s: finishing sends of what was read, then writing STATE",
            signal.Signals(signum).name,
        )

    def _log_summary(self) -> None:
        stats = self.delivery.stats
        seconds = time.monotonic() - self._started
        partitions = ", ".join(f"{k}: {v}" for k, v in sorted(stats.per_partition.items()))
        self.logger.info(
            "Summary: %d records read, %d events sent (per partition {%s}), %d retries "
            "(%d throttled), %d invalid, %.1f s, %.0f records/s",
            self._records_read,
            stats.events_sent,
            partitions,
            stats.retries,
            stats.throttled,
            self.invalid.total,
            seconds,
            self._records_read / seconds if seconds else 0.0,
        )

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        file_input: t.IO[str] | None = None,
    ) -> None:
        if about:
            super().invoke(about=about, about_format=about_format, config=config)
            return
        cls.print_version(print_fn=cls.logger.info)
        tune_garbage_collector()
        try:
            target = cls(
                config=config.config if config else None,
                validate_config=True,
                parse_env_config=config.parse_env if config else False,
            )
        except TargetError as error:
            cls.logger.error("Configuration error: %s", error)
            sys.exit(1)
        code = target.run(file_input)
        if code:
            sys.exit(code)


if __name__ == "__main__":
    TargetAzureEventHubs.cli()
