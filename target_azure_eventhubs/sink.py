"""The sink: validates and converts records, groups them per profile, hands events to delivery.

A drain never waits for Event Hubs: it only encodes the batch and queues it in `Delivery`,
which owns the clients and acknowledgements. That is what makes draining cheap enough to
do every `max_latency_ms`, and keeps the SDK's clients out of the SDK's drain threads.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime

import fastjsonschema
from singer_sdk import metrics
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_azure_eventhubs.changes.tracker import Change, ChangeTracker, Refused
from target_azure_eventhubs.delivery.encoding import (
    MESSAGE_ID,
    Outbound,
    message_id_for,
    message_size,
)
from target_azure_eventhubs.errors import InputError, InvalidRecordFailure
from target_azure_eventhubs.events import (
    ConversionSettings,
    InvalidRecordError,
    ProfileEvent,
    build_event,
    convert_record,
    encode_event,
)
from target_azure_eventhubs.events.cloudevents import (
    STRUCTURED_CONTENT_TYPE,
    add_binary_properties,
    event_time,
    structured_body,
)
from target_azure_eventhubs.events.cloudevents import attributes as cloudevent_attributes
from target_azure_eventhubs.events.mapping import first_record_problem
from target_azure_eventhubs.events.metadata import batch_time, event_metadata, row_metadata
from target_azure_eventhubs.events.properties import PropertyValue, for_schema, properties_of
from target_azure_eventhubs.held_rows import HeldRows, settings_tag
from target_azure_eventhubs.invalid_records import InvalidRecords
from target_azure_eventhubs.reader import where
from target_azure_eventhubs.schema_registry import SchemaEncoding, SchemaMismatch, body_encoder
from target_azure_eventhubs.settings import TargetSettings

if t.TYPE_CHECKING:
    from singer_sdk.target_base import Target


class FastValidator(BaseJSONSchemaValidator):
    """Compiled `fastjsonschema` validation; formats are not checked, as in the SDK default."""

    def __init__(self, schema: dict[str, t.Any]) -> None:
        super().__init__(schema)
        self._validate = fastjsonschema.compile(schema, use_formats=False)

    def validate(self, record: dict[str, t.Any]) -> None:
        try:
            self._validate(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            # The message names the field and the rule, not the (possibly personal) value.
            reason = f"does not match the stream's schema: {exc.message}"
            raise InvalidRecord(reason, record) from None


class RecordRejected(Exception):
    """A record that cannot be sent; the target applies `on_invalid_record` to it."""

    def __init__(self, reason: str, key: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key = key


@dataclass(slots=True)
class _Pending:
    held: ProfileEvent | HeldRows  # with change tracking and a key field, the records
    line: int
    order: int  # input position of the first row merged in (see Target.next_order)
    props: dict[str, PropertyValue] | None = None  # application_properties; later rows win
    meta: dict[str, PropertyValue] | None = None  # add_record_metadata: the latest row's

    @property
    def profile(self) -> ProfileEvent | None:
        return self.held if isinstance(self.held, ProfileEvent) else self.held.profile


_Keyed = tuple[str, _Pending]
Props = dict[str, PropertyValue] | None


class Drained(t.NamedTuple):
    """An event ready to be sent, and what refusing it would have to name."""

    order: int  # input position: the target sends all streams' events in this order
    hub: str
    partition_key: str | None
    out: Outbound
    sink: EventHubSink
    line: int
    key: str
    change: Change | None = None  # with change tracking: committed once the event is accepted


@dataclass(frozen=True)
class SinkServices:
    """What a sink needs from the target, handed to it when it is built."""

    settings: TargetSettings
    open_hub: t.Callable[[str], None]  # delivery: connect to a hub before its first events
    next_order: t.Callable[[], int]  # the input position of the record being accepted
    enqueue: t.Callable[[list[Drained]], None]  # drained events, sent in input order
    invalid: InvalidRecords  # `on_invalid_record`
    current_line: t.Callable[[], int]
    tracker: ChangeTracker | None = None  # with change_tracking
    encoding: SchemaEncoding | None = None  # encoding: avro or json_schema


class EventHubSink(BatchSink):
    """One stream's records on their way to one event hub."""

    MAX_SIZE_DEFAULT = 10000

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: t.Sequence[str] | None,
        services: SinkServices,
    ) -> None:
        self.services = services
        super().__init__(target, stream_name, schema, key_properties)
        settings = services.settings
        self.eventhub = settings.eventhub_for(stream_name)
        self.settings: ConversionSettings = settings.conversion.for_stream(stream_name)
        self.partition_key_field: str | None = settings.partition_key_field or (
            self.key_properties[0] if self.key_properties else None
        )
        self.group_by_profile = settings.group_by_profile
        # Records of a tracked profile keyed by a field wait unconverted (see HeldRows).
        self._hold_rows = bool(
            services.tracker is not None and self.group_by_profile and self.partition_key_field
        )
        self._tag = settings_tag(self.settings) if self._hold_rows else b""
        if services.tracker is not None and self._key_is_personal():
            self.logger.warning(
                "Stream '%s': change tracking keeps profiles by '%s', a personal identifier "
                "(events carry it hashed; the change store keeps it as it is): key the "
                "stream by a non-personal id (partition_key_field or its key properties)",
                stream_name,
                self.partition_key_field,
            )
        self.round_robin = settings.round_robin
        self._pending: dict[str, _Pending] = {}
        self._ungrouped: list[_Keyed] = []
        message = settings.message
        self._props = for_schema(message.application_properties, self.schema)
        self._cloudevents = message.cloudevents
        self._ce_source = message.cloudevents_source.replace("{stream}", stream_name)
        self._ce_type = message.cloudevents_type.replace("{stream}", stream_name)
        self._subject_personal = self._key_is_personal()  # CloudEvents' subject: hashed
        self._metadata = bool(self.include_sdc_metadata_properties)
        self._batched_at: datetime | None = None  # add_record_metadata: this drain's time
        self._mapping_checked = False  # the stream's first record (events.mapping)
        # Schema Registry encoding: the stream's schema is registered now, once.
        self._body, self._content_type = body_encoder(services.encoding, self.settings)

    def get_sink_record_counter(self) -> metrics.Counter:
        # Records per stream as a Singer metric, as often as the progress lines.
        interval = self.services.settings.progress_interval
        return metrics.record_counter(self.stream_name, log_interval=interval or 60.0)

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        if not self.validate_schema:
            return None
        try:
            return FastValidator(self.schema)
        except (fastjsonschema.JsonSchemaDefinitionException, TypeError, ValueError):
            # A schema fastjsonschema cannot compile still gets the SDK's validator.
            return super().get_validator()

    def setup(self) -> None:
        # Connect when the first stream for this hub appears. The sender process connects
        # while records are read; a wrong key fails, at the latest, at the first drain.
        self.services.open_hub(self.eventhub)

    # One record -------------------------------------------------------------------------

    def accept(
        self, record: dict[str, t.Any], line: int, message: t.Mapping[str, t.Any] | None = None
    ) -> None:
        """Validate, convert and hold one record; raises RecordRejected. `message` is its
        RECORD message (for add_record_metadata)."""
        if not self._mapping_checked:
            self._check_mapping(record, line)
        if self._validator is not None:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                raise RecordRejected(str(exc), self.record_label(record)) from None
        props = self._properties_of(record) if self._props else None
        meta = self._metadata_of(record, message) if self._metadata else None
        if self._hold_rows:
            self._hold(record, line, props, meta)
            return
        try:
            profile = convert_record(record, self.settings)
        except InvalidRecordError as exc:
            raise RecordRejected(exc.reason, self.record_label(record)) from None
        key = self._partition_key(record, profile)
        order = self.services.next_order()
        if not self.group_by_profile:
            self._ungrouped.append((key, _Pending(profile, line, order, props, meta)))
        elif (pending := self._pending.get(key)) is not None:
            # The event keeps the position of its first row: a STATE read after that row
            # waits for the event, whatever rows are merged into it later.
            t.cast(ProfileEvent, pending.held).merge(profile)
            if props:
                pending.props = {**(pending.props or {}), **props}
            pending.meta = meta
            self.tally_duplicate_merged()
        else:
            self._pending[key] = _Pending(profile, line, order, props, meta)

    def _check_mapping(self, record: dict[str, t.Any], line: int) -> None:
        """Stop at a first record whose memberships are not where the settings look."""
        if problem := first_record_problem(record, self.schema, self.settings):
            raise InputError(f"{where(line, self.stream_name)}: {problem}")
        self._mapping_checked = True

    def _properties_of(self, record: dict[str, t.Any]) -> dict[str, PropertyValue]:
        try:
            return properties_of(record, self._props, self.stream_name)
        except InvalidRecordError as exc:
            raise RecordRejected(exc.reason, self.record_label(record)) from None

    def _metadata_of(
        self, record: dict[str, t.Any], message: t.Mapping[str, t.Any] | None
    ) -> dict[str, PropertyValue]:
        try:
            return row_metadata(record, message)
        except InvalidRecordError as exc:
            raise RecordRejected(exc.reason, self.record_label(record)) from None

    def _hold(self, record: dict[str, t.Any], line: int, props: Props, meta: Props) -> None:
        key = self._field_key(record)
        order = self.services.next_order()
        if (pending := self._pending.get(key)) is not None:
            t.cast(HeldRows, pending.held).add(record, line)  # keeps its first position
            if props:
                pending.props = {**(pending.props or {}), **props}
            pending.meta = meta
            self.tally_duplicate_merged()
        else:
            self._pending[key] = _Pending(
                HeldRows(self.settings, self._tag, record, line), line, order, props, meta
            )

    def _key_is_personal(self) -> bool:
        field = self.partition_key_field
        return field is not None and self.settings.is_hashed(
            self.settings.identity_fields.get(field, "")
        )

    def keep_refused(self, record: dict[str, t.Any]) -> None:
        """A refused record of a complete snapshot must not make its profile's memberships
        exit: with a key field to name the profile, it counts as present with all of them."""
        tracker = self.services.tracker
        value = record.get(self.partition_key_field) if self.partition_key_field else None
        if tracker is not None and value not in (None, ""):
            tracker.present(self.stream_name, str(value))

    def _field_key(self, record: dict[str, t.Any]) -> str:
        value = record.get(t.cast(str, self.partition_key_field))
        if value is None or value == "":
            raise RecordRejected(
                f"the partition key field '{self.partition_key_field}' is empty",
                self.record_label(record),
            )
        return str(value)

    def _partition_key(self, record: dict[str, t.Any], profile: ProfileEvent) -> str:
        if self.partition_key_field:
            return self._field_key(record)
        key = profile.first_identity()
        if key is None:  # conversion already refuses records without identities
            raise RecordRejected("the record has no identity to key it by", None)
        return key

    def record_label(self, record: dict[str, t.Any]) -> str | None:
        """How errors name a record: its key properties, never a raw personal identity."""
        if not self.key_properties:
            return None
        parts = []
        for name in self.key_properties:
            value = record.get(name)
            if self.settings.is_hashed(self.settings.identity_fields.get(name, "")):
                value = "<personal data withheld>"
            parts.append(f"{name}={str(value)[:80]}")
        return ", ".join(parts)

    def process_record(self, record: dict, context: dict) -> None:
        # The target calls `accept` instead, which can reject a record without raising
        # through the SDK; this keeps the SDK's own entry point working the same way.
        self.accept(record, self.services.current_line())

    # One batch --------------------------------------------------------------------------

    def process_batch(self, context: dict) -> None:
        """Build the held events and hand them to the target, which sends them in input order."""
        items = self._ungrouped or list(self._pending.items())
        self._pending, self._ungrouped = {}, []
        tracker = self.services.tracker
        decided = (
            tracker.decide(self.stream_name, [(key, pending.held) for key, pending in items])
            if tracker
            else [None] * len(items)
        )
        ready: list[Drained] = []
        self._batched_at = batch_time() if self._metadata else None
        rejected: list[tuple[str, int, str, dict[str, t.Any] | None]] = []
        for (key, pending), result in zip(items, decided, strict=True):
            if isinstance(pending.held, HeldRows):  # records the conversion refused
                rejected += [(key, *row) for row in pending.held.refused]
            if isinstance(result, Refused):
                if pending.profile is not None:  # else each of its records is reported
                    rejected.append((key, pending.line, result.reason, None))
                continue
            if result is None and tracker is not None:
                continue  # unchanged: consumers know it already
            profile, change = t.cast(ProfileEvent, pending.profile), None
            if result is not None:
                decision, change = result
                profile = ProfileEvent(profile.identities, profile.attributes, decision.memberships)
            try:
                out = self._outbound(profile, pending.props, key, pending.meta)
            except (TypeError, SchemaMismatch) as exc:  # orjson: nesting beyond its limit...
                reason = getattr(exc, "reason", None) or f"cannot be encoded as JSON: {exc}"
                rejected.append((key, pending.line, f"its event {reason}", None))
                continue
            ready.append(self._drained(pending.order, key, out, pending.line, change))
        self.services.enqueue(ready)
        for key, line, reason, record in sorted(rejected, key=lambda item: item[1]):
            self._reject(key, line, reason, record)

    def exit_events(self, exits: list[tuple[str, ProfileEvent, Change]]) -> list[Drained]:
        """The events of memberships a completed snapshot lacks (no input line names them)."""
        self._batched_at = batch_time() if self._metadata else None
        return [
            self._drained(
                self.services.next_order(),
                key,
                self._outbound(profile, properties_of({}, self._props, self.stream_name), key),
                0,
                change,
            )
            for key, profile, change in exits
        ]

    def _drained(
        self, order: int, key: str, out: Outbound, line: int, change: Change | None
    ) -> Drained:
        partition_key = None if self.round_robin else key
        return Drained(order, self.eventhub, partition_key, out, self, line, key, change)

    def refuse_oversized(self, event: Drained, max_event_bytes: int) -> None:
        """Apply `on_invalid_record` to an event larger than the hub accepts."""
        size = message_size(len(event.out.body), event.out.properties, event.out.content_type)
        reason = (
            f"its event is {size} bytes, more than the "
            f"{max_event_bytes} bytes the event hub accepts in one message"
        )
        self._reject(event.key, event.line, reason)

    def _reject(
        self, key: str, line: int, reason: str, record: dict[str, t.Any] | None = None
    ) -> None:
        """Apply `on_invalid_record`; a held record refused and passed over still holds
        its profile's memberships (`keep_refused`)."""
        label = self._key_label(key) if record is None else self.record_label(record)
        try:
            self.services.invalid.handle(
                stream=self.stream_name, line=line, key=label, reason=reason, record=record
            )
        except InvalidRecordFailure as failure:
            failure.during_drain = True
            raise
        if record is not None:
            self.keep_refused(record)

    def _outbound(
        self,
        profile: ProfileEvent,
        props: dict[str, PropertyValue] | None = None,
        key: str = "",
        meta: dict[str, PropertyValue] | None = None,
    ) -> Outbound:
        event = build_event(profile, self.settings)
        body = encode_event(event) if self._body is None else self._body.encode(event)
        properties: dict[str, PropertyValue] = {
            "stream": self.stream_name,
            "segment_ids": ",".join(profile.segment_ids()),
        }
        if props:
            properties.update(props)
        if self._batched_at is not None:
            event_metadata(meta, self._batched_at, self.sync_started_at, into=properties)
        if self._cloudevents == "none":
            return Outbound(body, properties, self._content_type)
        # CloudEvents (events.cloudevents): the subject is the profile's key, hashed when
        # the key field is a personal identity.
        subject = profile.first_identity() if self._subject_personal else key
        time = event_time(profile.all_memberships())
        if self._cloudevents == "binary":
            add_binary_properties(
                properties,
                event_id=MESSAGE_ID,  # the encoder writes the message id it computes anyway
                source=self._ce_source,
                type_=self._ce_type,
                subject=subject,
                time=time,
            )
            return Outbound(body, properties, self._content_type)
        attrs = cloudevent_attributes(
            event_id=message_id_for(body),
            source=self._ce_source,
            type_=self._ce_type,
            subject=subject,
            time=time,
        )
        body = structured_body(attrs, body)
        return Outbound(body, properties, STRUCTURED_CONTENT_TYPE, attrs["id"])

    def _key_label(self, key: str) -> str | None:
        field = self.partition_key_field
        if field is None:
            return key  # "namespace:id" of the first identity, hashed where personal
        if self._key_is_personal():
            return None
        return f"{field}={key[:80]}"

    def process_batch_files(self, *args: t.Any, **kwargs: t.Any) -> None:
        msg = "BATCH messages are not supported; send RECORD messages"
        raise NotImplementedError(msg)
