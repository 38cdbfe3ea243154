"""The singer-sdk internals the target hooks into are still there, and still called.

The target builds on singer-sdk's public API (settings, the CLI, `--about`, stream maps,
schema validation, the message reader, the standard tests) and overrides a few of its
private message handlers, because singer-sdk offers no public hook for them:

- `_process_record_message`: stream maps, then the target's own `_accept` (line numbers in
  errors, invalid records under `on_invalid_record`, grouping per profile);
- `_process_schema_message`: drains before a schema change, so a profile's events keep their
  input order across it;
- `_process_activate_version_message`: completes a snapshot (change tracking);
- `_drain_all` and `_reset_max_record_age`: the events of every sink are sent, in input
  order, once the drain ends;
- `_handle_max_record_age`: `max_latency_ms` instead of singer-sdk's five minutes.
STATE never reaches singer-sdk: the reader takes it (`TickingReader.on_state`).

When one of these tests fails after an upgrade of singer-sdk, the message names what
changed: adapt `target_azure_eventhubs/target.py` (or pin singer-sdk below that release).
"""

from __future__ import annotations

import inspect

import pytest
import singer_sdk
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target

from target_azure_eventhubs.reader import TickingReader
from target_azure_eventhubs.target import TargetAzureEventHubs

VERSION = getattr(singer_sdk, "__version__", "?")
HOOKS = {
    "_process_record_message": ["self", "message_dict"],
    "_process_schema_message": ["self", "message_dict"],
    "_process_activate_version_message": ["self", "message_dict"],
    "_drain_all": ["self", "sink_list", "parallelism"],
    "_reset_max_record_age": ["self"],
    "_handle_max_record_age": ["self"],
}


def _changed(what: str) -> str:
    return f"singer-sdk {VERSION} changed {what}: adapt target_azure_eventhubs/target.py"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_each_hooked_method_exists_with_its_parameters(name: str) -> None:
    method = getattr(Target, name, None)
    assert method is not None, _changed(f"Target.{name} (it is gone)")
    assert list(inspect.signature(method).parameters) == HOOKS[name], _changed(
        f"the parameters of Target.{name}"
    )
    assert name in vars(TargetAzureEventHubs), f"the target no longer overrides {name}"


def test_the_message_handlers_are_what_the_reader_is_handed() -> None:
    source = inspect.getsource(Target.process_lines)
    for name in ("_process_record_message", "_process_schema_message"):
        assert f"self.{name}" in source, _changed(f"how process_lines dispatches to {name}")
    assert "message_reader.process_lines" in source, _changed(
        "process_lines no longer goes through the message reader (TickingReader)"
    )


def test_drain_all_still_ends_with_reset_max_record_age() -> None:
    source = inspect.getsource(Target.drain_all)
    assert "self._drain_all(" in source, _changed("drain_all (it no longer calls _drain_all)")
    assert source.rstrip().endswith("self._reset_max_record_age()"), _changed(
        "drain_all (it no longer ends with _reset_max_record_age, where events are sent)"
    )


def test_the_attributes_the_target_reads_are_set_by_singer_sdk() -> None:
    target = TargetAzureEventHubs(
        config={"connection_string": _FAKE, "eventhub_name": "h", "dry_run": True},
        validate_config=False,
    )
    assert isinstance(getattr(target, "_sinks_active", None), dict), _changed(
        "Target._sinks_active"
    )
    assert hasattr(target.mapper, "stream_maps"), _changed("Target.mapper.stream_maps")
    assert isinstance(target.message_reader, TickingReader)
    assert "_validator" in inspect.getsource(Sink.__init__), _changed("Sink._validator")


_FAKE = "Endpoint=sb://adapter-check.invalid/;SharedAccessKeyName=k;SharedAccessKey=" + "a" * 44


def test_the_batch_encoding_types_the_batch_reader_uses_are_still_there() -> None:
    """`batches.py` reads BATCH messages with singer-sdk's own encoding types, which live in
    a private module (singer-sdk's Target imports them from there too)."""
    from singer_sdk.helpers import _batch

    def changed(what: str) -> str:
        return f"singer-sdk {VERSION} changed {what}: adapt target_azure_eventhubs/batches.py"

    encoding_type = getattr(_batch, "BaseBatchFileEncoding", None)
    formats = getattr(_batch, "BatchFileFormat", None)
    assert encoding_type is not None and formats is not None, changed("helpers._batch")
    assert {"JSONL", "PARQUET"} <= {f.name for f in formats}, changed("BatchFileFormat")
    encoding = encoding_type.from_dict({"format": "jsonl", "compression": "gzip"})
    assert (encoding.format, encoding.compression) == (formats.JSONL, "gzip"), changed(
        "BaseBatchFileEncoding.from_dict"
    )
