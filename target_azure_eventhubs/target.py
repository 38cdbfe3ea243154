"""The Singer target: reads the input, drains sinks in input order, releases STATE only
after Event Hubs accepted what it covers, and owns shutdown on signals and errors."""

from __future__ import annotations

import copy
import functools
import itertools
import logging
import sys
import time
import typing as t

import click
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target

from target_azure_eventhubs import batches, preflight, runtime, telemetry
from target_azure_eventhubs.changes import open_tracker
from target_azure_eventhubs.checkpoints import Checkpoints, OutputClosed, write_state_line
from target_azure_eventhubs.config_checks import CheckedConfig
from target_azure_eventhubs.delivery import launcher
from target_azure_eventhubs.delivery.choice import make_delivery
from target_azure_eventhubs.delivery.dry_run import DryRunDelivery
from target_azure_eventhubs.errors import (
    ChangeStoreError,
    ConfigurationError,
    InputError,
    InvalidRecordFailure,
    TargetError,
)
from target_azure_eventhubs.invalid_records import InvalidRecords
from target_azure_eventhubs.outgoing import Outgoing
from target_azure_eventhubs.reader import (
    InvalidLine,
    MissingKeyProperties,
    RecordBeforeSchema,
    TickingReader,
    checked_schema,
    where,
)
from target_azure_eventhubs.report import Reporter, RunState, log_dry_run, log_summary, stop_reason
from target_azure_eventhubs.runtime import tune_garbage_collector
from target_azure_eventhubs.schema_registry import SchemaEncoding
from target_azure_eventhubs.settings import CONFIG_JSONSCHEMA, TargetSettings
from target_azure_eventhubs.shutdown import Shutdown
from target_azure_eventhubs.sink import Drained, EventHubSink, RecordRejected, SinkServices
from target_azure_eventhubs.snapshots import Snapshots

_FLUSH_SLICE = 0.25  # how often a wait for acknowledgements writes STATE and checks signals


class TargetAzureEventHubs(CheckedConfig, Target):
    """Streams profile segment memberships into Azure Event Hubs, at least once."""

    name = "target-azure-eventhubs"
    config_jsonschema = CONFIG_JSONSCHEMA
    default_sink_class = EventHubSink
    message_reader_class = TickingReader
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        *Target.capabilities,
        PluginCapabilities.ACTIVATE_VERSION,
        PluginCapabilities.BATCH,  # taken in; writing batch files (batch_config) is not
    ]

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        # The SDK logs every AMQP state change at INFO; keep its warnings and errors only.
        logging.getLogger("azure").setLevel(logging.WARNING)
        settings = self.settings = TargetSettings.from_config(self.config, self.config_jsonschema)
        self.connection = settings.connection
        encoding = SchemaEncoding.from_config(self.config, settings.connection)  # before I/O
        self.invalid = InvalidRecords(
            settings.on_invalid_record, settings.dead_letter_path, self.logger
        )
        self.tracker = (
            open_tracker(settings.change_store, settings.changes, self.logger)
            if settings.change_tracking
            else None
        )
        self.checkpoints = Checkpoints(self._emit_state, self.tracker)
        self.delivery = make_delivery(
            self.config,
            self.connection,
            settings.delivery,
            self.checkpoints.post,
            self.logger,
            lambda: self.shutdown.requested,
            dry_run=settings.dry_run,
            sender_process=settings.sender_process,
        )
        self.run_state = RunState()
        self.reporter = Reporter(
            self.logger,
            settings.progress_interval,
            self.run_state,
            self.delivery.progress,
            self.tracker,
            dry_run=settings.dry_run,
        )
        self.outgoing = Outgoing(self.delivery, self.checkpoints, self.logger)
        self._sink_services = SinkServices(
            settings=settings,
            open_hub=self.delivery.open_hub,
            next_order=self.next_order,
            enqueue=self.enqueue,
            invalid=self.invalid,
            current_line=lambda: self.current_line,
            tracker=self.tracker,
            encoding=encoding,
        )
        self.max_latency = settings.max_latency
        self._stopped: str | None = None  # why the run stopped early, for the summary
        self.shutdown = Shutdown(settings.shutdown_timeout, self.logger)
        self._last_state: bytes | None = None
        self._oldest_pending: float | None = None  # when the oldest unsent record was read
        self._first_record_clock = runtime.started()  # see _pending_since
        self._order = itertools.count()
        self._send_now = False  # end of input or an error: deferring is over
        self.snapshots = Snapshots(
            self.tracker,
            self.logger,
            lambda stream: t.cast(EventHubSink, self._sinks_active[stream]),
            self.drain_all,
            self._flush,
            self._send_exits,
        )
        reader = self._reader = t.cast(TickingReader, self.message_reader)
        reader.tick_seconds = max(0.02, min(0.25, self.max_latency / 4))
        reader.on_tick = self._on_tick
        reader.should_stop = lambda: self.shutdown.requested
        reader.on_state = self._on_state
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

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        # The sink is handed what it needs (SinkServices) instead of reaching into the target.
        return t.cast("type[Sink]", functools.partial(EventHubSink, services=self._sink_services))

    # Message handling --------------------------------------------------------------------

    def _process_schema_message(self, message_dict: dict) -> None:
        # A schema change makes the SDK start a new sink and drain the old one later; drain
        # now so a profile's events keep their input order across the change.
        self._assert_line_requires(message_dict, requires={"stream", "schema"})
        stream = message_dict["stream"]
        with checked_schema(message_dict, self.current_line):
            if stream in self._sinks_active and self._sinks_active[stream].current_size:
                self.drain_all()
            super()._process_schema_message(message_dict)

    def _process_record_message(self, message_dict: dict) -> None:
        if "record" not in message_dict or "stream" not in message_dict:
            self._assert_line_requires(message_dict, requires={"stream", "record"})
        self._take_record(message_dict, message_dict["record"], self._reader.line_number)

    def _process_batch_message(self, message_dict: dict) -> None:
        self._assert_line_requires(message_dict, requires={"stream", "encoding", "manifest"})
        streams = self.mapper.stream_maps
        records = batches.records(message_dict, self.current_line, self._reader, streams)
        for raw, origin in records:  # each record as if on a RECORD line (see batches)
            self._take_record(message_dict, raw, self.current_line, origin)

    def _take_record(self, message_dict: dict, raw: t.Any, line: int, origin: str = "") -> None:
        """A record of a RECORD line, or of a BATCH message's file (`origin`: where in it)."""
        stream_name = message_dict["stream"]
        stream_maps = self.mapper.stream_maps.get(stream_name)
        if stream_maps is None:
            raise RecordBeforeSchema(
                f"input line {line}: a RECORD for stream '{stream_name}' arrived before the "
                "stream's SCHEMA message"
            )
        version = message_dict.get("version") if self.snapshots.end == "activate_version" else None
        if self.outgoing.hold_from is None and self.snapshots.end == "end_of_input":
            # The run's input is the snapshot: no STATE within it goes before it is complete
            # (an ACTIVATE_VERSION snapshot may resume in the next run: its STATEs go).
            self.outgoing.hold_from = self.next_order()
        if not isinstance(raw, dict):
            self.invalid.handle(
                stream=stream_name,
                line=line,
                key=None,
                reason=f"{origin}: " * bool(origin) + "the record is not a JSON object",
                record=raw,
            )
            return
        # Without stream maps the record passes through as is; no copy needed then.
        single = len(stream_maps) == 1 and type(stream_maps[0]) is SameRecordTransform
        for stream_map in stream_maps:
            record = stream_map.transform(raw if single else copy.copy(raw))
            if record is not None:
                self._accept(stream_map.stream_alias, record, line, message_dict, origin)
                if version is not None:
                    self.snapshots.note_version(stream_map.stream_alias, version)
        self._handle_max_record_age()

    def _accept(
        self, stream_name: str, record: dict, line: int, message: dict, origin: str = ""
    ) -> None:
        sink: EventHubSink = self.get_sink(stream_name, record=record)  # type: ignore[assignment]
        if missing := [k for k in sink.key_properties if k not in record]:
            raise MissingKeyProperties(
                f"input line {line}: a record of stream '{stream_name}' lacks its key "
                f"properties {', '.join(missing)}" + f" ({origin})" * bool(origin)
            )
        sink.tally_record_read()
        sink.record_counter_metric.increment()
        self.run_state.records_read += 1
        self.run_state.per_stream[stream_name] += 1
        try:
            sink.accept(record, line, message)
        except RecordRejected as rejected:
            self.invalid.handle(
                stream=stream_name,
                line=line,
                key=rejected.key,
                reason=f"{origin}: " * bool(origin) + rejected.reason,
                record=record,
            )
            sink.keep_refused(record)  # skipped or dead-lettered: its memberships stay
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
        if not isinstance(message_dict, dict):  # singer-sdk asks it of a SCHEMA's schema too
            raise InputError(f"input line {self.current_line}: expected a JSON object")
        if missing := requires - message_dict.keys():
            kind = str(message_dict.get("type", "message"))[:20]
            stream = message_dict.get("stream")
            raise InputError(
                f"{where(self.current_line, stream if isinstance(stream, str) else None)}: "
                f"the {kind} message has no {', '.join(sorted(missing))}"
            )

    def next_order(self) -> int:
        """Input position of a record, so events of all streams are sent in input order."""
        return next(self._order)

    def enqueue(self, events: list[Drained]) -> None:
        """Take a drained sink's events; they are sent, in input order, after the drain."""
        self.outgoing.events.extend(events)

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
        """Submit drained events in input order, placing each STATE where it was read."""
        if release_states and self._defer_sending():
            return
        self.outgoing.send(release_states=release_states)

    def _defer_sending(self) -> bool:
        """Whether drained events may wait while the sender process connects; never at
        the end of input or after an error."""
        if self._send_now or self._oldest_pending is None:
            return False
        hubs = {t.cast(EventHubSink, s).eventhub for s in self._sinks_active.values()}
        return self.outgoing.may_defer(self._oldest_pending, self.max_latency, hubs)

    def _on_invalid_line(self, invalid: InvalidLine) -> None:
        self.invalid.handle(
            stream=None,
            line=invalid.line_number,
            key=None,
            reason=invalid.reason,
            raw=invalid.raw[:10000],
        )

    def _handle_max_record_age(self) -> None:
        if self._oldest_pending is None:
            return
        if time.monotonic() - self._oldest_pending >= self.max_latency:
            self.drain_all()

    def _reset_max_record_age(self) -> None:
        # The SDK calls this last in drain_all, once every sink has been drained.
        super()._reset_max_record_age()
        self._send_outgoing(release_states=True)
        if not self.outgoing.events:
            self._oldest_pending = None

    def _on_tick(self, idle: bool) -> None:
        """Between input chunks: write what acknowledgements allow, keep max_latency_ms;
        when idle, also relay a new STATE."""
        self.checkpoints.apply()
        self.delivery.raise_if_failed()
        self._handle_max_record_age()
        if idle and self.outgoing.has_releasable_states():
            self.drain_all()

    def _on_state(self, state: bytes) -> None:
        """A STATE message: its value, as the tap wrote it, waits for the events before it."""
        if state != self._last_state:  # a repeated STATE says nothing new
            self._last_state = state
            self.outgoing.states.append((self.next_order(), state))
        # Draining at a STATE (a point the tap chose) rather than mid-way between two rows
        # of one profile keeps the profile's rows in one event. Only once records have
        # waited a while, so frequent STATE messages do not shrink batches.
        if (
            self._oldest_pending is None
            or time.monotonic() - self._oldest_pending >= self.max_latency / 4
        ):
            self.drain_all()

    # STATE: written by `checkpoints` once the events before it are accepted -------------

    def _emit_state(self, state: bytes) -> None:
        if not self.settings.dry_run:  # a dry run writes none: Meltano keeps its bookmark
            write_state_line(state)

    # End of input, errors and signals -----------------------------------------------------

    def process_endofpipe(self) -> None:
        self._send_now = True
        super().process_endofpipe()
        if self.snapshots.end == "end_of_input" and not self.shutdown.requested:
            for stream in sorted({sink.stream_name for sink in self._sinks_active.values()}):
                self.snapshots.complete(stream)
            self.outgoing.hold_from = None  # complete, exits sent: its STATEs go after them
        self._send_outgoing(release_states=True)
        self._flush()
        self.delivery.close()  # everything is accepted: release connections and threads
        if self.tracker is not None:
            self.tracker.finish()

    def _flush(self) -> None:
        """Wait until every event submitted is accepted, committing and writing STATE as
        acknowledgements come; after a termination signal, only until its deadline."""
        while True:
            remaining = self.shutdown.remaining()
            wait = _FLUSH_SLICE if remaining is None else min(_FLUSH_SLICE, remaining)
            done = self.delivery.flush(wait)
            self.checkpoints.apply()
            if done:
                return
            if (remaining := self.shutdown.remaining()) is not None and remaining <= 0:
                pending = self.delivery.pending_events()
                waiting = f"{pending} events" if pending >= 0 else "events"
                raise TargetError(
                    f"stopped with {waiting} not yet accepted by Event Hubs within "
                    f"shutdown_timeout_seconds ({self.settings.shutdown_timeout} s); no STATE "
                    "was written for them, re-run from the last STATE"
                )

    def _process_activate_version_message(self, message_dict: dict) -> None:
        self._assert_line_requires(message_dict, requires={"stream", "version"})
        if not self.settings.activate_version_messages:
            self.logger.debug("ACTIVATE_VERSION ignored: process_activate_version_messages")
            return
        self.drain_all()  # drain first: the version's records are sent before anything else
        streams = self.mapper.stream_maps.get(message_dict["stream"], [])
        self.snapshots.activate_version(message_dict["version"], [m.stream_alias for m in streams])

    def _send_exits(self, events: list[Drained]) -> None:
        self.outgoing.events.extend(events)
        self._send_outgoing(release_states=False)

    @telemetry.traced_run
    def run(self, file_input: t.IO[str] | None = None) -> int:
        """Process the input; returns the exit code: 0, 1 after an error (one clear log
        line), 128 + the signal's number after SIGTERM or SIGINT."""
        code = 0
        self.shutdown.install()
        self.reporter.start()
        try:
            self.listen(file_input)
        except TargetError as error:
            self._stopped = stop_reason(error)
            self._salvage(error)
            self.logger.error("%s", error)
            code = 1
        except Exception as error:  # a bug: say so in one line, keep the traceback for a report
            self._stopped = "an unexpected error"
            self.logger.exception("Unexpected error, please report it: %s", error)
            code = 1
        finally:
            self.delivery.close(self.shutdown.close_timeout(failed=code != 0))
            self.reporter.stop()
            self._log_summary()
            if self.tracker is not None:
                self.tracker.close()
        return self.shutdown.exit_code(code)

    def _salvage(self, error: TargetError) -> None:
        """After bad input, still deliver the records read before it and their STATE."""
        if getattr(error, "during_drain", False) or self.delivery.failure is not None:
            return
        if self.shutdown.requested or isinstance(error, OutputClosed):
            return  # a signal bounds the time left; a closed stdout takes no STATE
        if isinstance(error, ChangeStoreError) or self.checkpoints.failure is not None:
            return  # nothing more can be recorded: the next run sends it again
        self._send_now = True
        self.shutdown.start_clock()
        try:
            self.drain_all()
            self._flush()
        except TargetError as second:
            self.logger.error("While saving records read before the error: %s", second)

    def _log_summary(self) -> None:
        if isinstance(self.delivery, DryRunDelivery):
            log_dry_run(
                self.logger, self.delivery, self.run_state, self.invalid.counts, self.tracker
            )
        if self.shutdown.requested and self._stopped is None:
            self._stopped = "a termination signal"
        log_summary(
            self.logger,
            run=self.run_state,
            stats=self.delivery.stats,
            invalid=self.invalid.total,
            tracker=self.tracker,
            stopped=self._stopped,
            dry_run=self.settings.dry_run,
        )

    @classmethod
    def get_singer_command(cls) -> click.Command:
        return preflight.add_check_option(super().get_singer_command())

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        file_input: t.IO[str] | None = None,
        check: bool = False,
    ) -> None:
        if about:
            super().invoke(about=about, about_format=about_format, config=config)
            return
        if check:  # connect and prove the Send right, send nothing: see preflight
            sys.exit(preflight.run_check(cls, config))
        cls.print_version(print_fn=cls.logger.info)
        tune_garbage_collector()
        try:
            target = cls(
                config=config.config if config else None,
                validate_config=True,
                parse_env_config=config.parse_env if config else False,
            )
        except TargetError as error:
            launcher.discard()
            prefix = "Configuration error: " if isinstance(error, ConfigurationError) else ""
            cls.logger.error("%s%s", prefix, error)
            sys.exit(1)
        except (OSError, ValueError) as error:  # a --config file missing or not JSON
            launcher.discard()
            cls.logger.error("Configuration error: cannot read a --config file: %s", error)
            sys.exit(1)
        code = target.run(file_input)
        if code:
            sys.exit(code)


if __name__ == "__main__":
    TargetAzureEventHubs.cli()
