"""The Singer target: reads the input, drains sinks in input order, releases STATE only
after Event Hubs accepted what it covers, and owns shutdown on signals and errors."""

from __future__ import annotations

import bisect
import copy
import functools
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
from singer_sdk.exceptions import MissingKeyPropertiesError, RecordsWithoutSchemaException
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target

from target_azure_eventhubs import runtime
from target_azure_eventhubs.delivery.encoding import event_fits
from target_azure_eventhubs.delivery.process import DeliveryProcess
from target_azure_eventhubs.delivery.sender import Delivery
from target_azure_eventhubs.errors import (
    InputError,
    InvalidRecordFailure,
    TargetError,
)
from target_azure_eventhubs.invalid_records import InvalidRecords
from target_azure_eventhubs.reader import InvalidLine, TickingReader
from target_azure_eventhubs.runtime import tune_garbage_collector
from target_azure_eventhubs.settings import CONFIG_JSONSCHEMA, TargetSettings
from target_azure_eventhubs.sink import Drained, EventHubSink, RecordRejected, SinkServices

_MAX_DEFERRED_EVENTS = 20_000  # see _defer_sending
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)


class RecordBeforeSchema(InputError, RecordsWithoutSchemaException):
    """A RECORD arrived before its stream's SCHEMA (a broken tap)."""


class MissingKeyProperties(InputError, MissingKeyPropertiesError):
    """A record lacks a key property its SCHEMA declared (a broken tap)."""


class TargetAzureEventHubs(Target):
    """Streams profile segment memberships into Azure Event Hubs, at least once."""

    name = "target-azure-eventhubs"
    config_jsonschema = CONFIG_JSONSCHEMA
    default_sink_class = EventHubSink
    message_reader_class = TickingReader

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        # The SDK logs every AMQP state change at INFO; keep its warnings and errors only.
        logging.getLogger("azure").setLevel(logging.WARNING)
        settings = self.settings = TargetSettings.from_config(self.config)
        self.connection = settings.connection
        self.invalid = InvalidRecords(
            settings.on_invalid_record, settings.dead_letter_path, self.logger
        )
        self.delivery: Delivery | DeliveryProcess
        use_process = settings.sender_process
        if use_process and os.name != "posix":  # the child gets its socket via pass_fds
            self.logger.info("sender_process needs a POSIX system: sending from this process")
            use_process = False
        if use_process:
            self.delivery = DeliveryProcess(
                self.config,
                settings.delivery,
                self._emit_state,
                self.logger,
                lambda: self._terminating,
            )
            if self.connection.default_eventhub:  # connect while the first lines are read
                self.delivery.connect_early(self.connection.default_eventhub)
        else:
            self.delivery = Delivery(
                self.connection, settings.delivery, self._emit_state, self.logger
            )
        self._sink_services = SinkServices(
            settings=settings,
            open_hub=self.delivery.open_hub,
            next_order=self.next_order,
            enqueue=self.enqueue,
            invalid=self.invalid,
            current_line=lambda: self.current_line,
        )
        self.max_latency = settings.max_latency
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

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        # The sink is handed what it needs (SinkServices) instead of reaching into the target.
        return t.cast("type[Sink]", functools.partial(EventHubSink, services=self._sink_services))

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
            self.invalid.handle(
                stream=stream_name,
                line=line,
                key=None,
                reason="the record is not a JSON object",
                record=raw,
            )
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
                stream=stream_name,
                line=line,
                key=rejected.key,
                reason=rejected.reason,
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
        timeout = self.settings.shutdown_timeout if self._terminating else None
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
            self.delivery.flush(self.settings.shutdown_timeout)
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
