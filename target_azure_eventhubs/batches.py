"""Singer BATCH messages: the records of singer-sdk's batch files, each handed on as the
record of a RECORD line would be.

The formats are singer-sdk's (`singer_sdk.helpers._batch`, written by its
`contrib.batch_encoder_*`): JSON Lines, plain or gzip, one record per line, and Parquet
(with pyarrow: the `parquet` extra). A manifest lists `file://` URLs.

singer-sdk's own `Sink.process_batch_files` hands a whole file's records to
`process_batch`, past validation, `on_invalid_record` and the input positions that place
STATE; so the target takes each record here, through the path of a RECORD line. Records
are decoded as RECORD lines are (`reader.decoder`); a Parquet row goes through
singer-sdk's Singer JSON first, so its date-times and decimals become what a RECORD line
would have carried. Files are read record by record, so a large file costs no more memory
than the same records on stdin.
"""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import typing as t
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import msgspec
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchFileFormat
from singer_sdk.singerlib.json import serialize_json

from target_azure_eventhubs.errors import InputError
from target_azure_eventhubs.reader import (
    RecordBeforeSchema,
    TickingReader,
    decoder,
    not_utf8,
    where,
)

COMPRESSIONS = (None, "none", "gzip")
_TICK_EVERY = 1000  # records between two ticks (see `records`)


class BatchFileError(InputError):
    """A BATCH message or one of its files cannot be read."""


def records(
    message: Mapping[str, t.Any], line: int, reader: TickingReader, streams: Mapping[str, t.Any]
) -> Iterator[tuple[t.Any, str]]:
    """Each record of the BATCH message's files, with where it is ("record N of batch file
    PATH"). The message is checked now (`streams`: those with a SCHEMA); each file is
    opened when its turn comes. Between records the reader's ticks go on
    (acknowledgements, STATE, max_latency_ms), and a termination signal stops the batch as
    it stops stdin."""
    stream = message["stream"]
    if not isinstance(stream, str) or not stream:
        raise BatchFileError(f"{where(line, None)}: the BATCH message's stream is not a name")
    if stream not in streams:
        raise RecordBeforeSchema(
            f"input line {line}: a BATCH for stream '{stream[:100]}' arrived before the "
            "stream's SCHEMA message"
        )
    encoding = _encoding(message["encoding"], line, stream)
    manifest = message["manifest"]
    if not isinstance(manifest, list) or not all(isinstance(url, str) for url in manifest):
        raise BatchFileError(
            f"{where(line, stream)}: the BATCH message's manifest is not a list of file URLs"
        )
    return _records(manifest, encoding, line, stream, reader)


def _records(
    manifest: list[str],
    encoding: BaseBatchFileEncoding,
    line: int,
    stream: str,
    reader: TickingReader,
) -> Iterator[tuple[t.Any, str]]:
    count = 0
    for url in manifest:
        path = _local_path(url, line, stream)
        if encoding.format == BatchFileFormat.PARQUET:
            rows = _parquet_rows(path, line, stream)
        else:
            rows = _jsonl_rows(path, encoding.compression == "gzip", line, stream)
        for index, record in enumerate(rows, 1):
            yield record, f"record {index} of batch file {path}"
            count += 1
            if count % _TICK_EVERY == 0:
                reader.on_tick(False)
            if reader.should_stop():
                return


def _encoding(value: t.Any, line: int, stream: str) -> BaseBatchFileEncoding:
    if not isinstance(value, dict):
        raise BatchFileError(
            f"{where(line, stream)}: the BATCH message's encoding is not an object"
        )
    try:
        encoding = BaseBatchFileEncoding.from_dict(value)
    except TypeError:  # a key singer-sdk's encodings do not have, or no format
        raise BatchFileError(
            f"{where(line, stream)}: the BATCH message's encoding is not singer-sdk's "
            f"(keys format and compression), it has {', '.join(sorted(map(str, value)))}"
        ) from None
    formats = [str(f.value) for f in BatchFileFormat]
    if encoding.format not in formats:
        raise BatchFileError(
            f"{where(line, stream)}: batch file format {str(encoding.format)[:40]!r} is not "
            f"supported (expected {' or '.join(formats)})"
        )
    if encoding.compression not in COMPRESSIONS:
        raise BatchFileError(
            f"{where(line, stream)}: batch file compression {str(encoding.compression)[:40]!r} "
            "is not supported (expected gzip or none)"
        )
    if encoding.format == BatchFileFormat.PARQUET and not importlib.util.find_spec("pyarrow"):
        raise BatchFileError(
            f"{where(line, stream)}: parquet batch files need pyarrow: install the target "
            "with its parquet extra (pip install 'target-azure-eventhubs[parquet]')"
        )
    return encoding


def _local_path(url: str, line: int, stream: str) -> Path:
    """The file a manifest URL names. Read directly rather than through singer-sdk's
    `StorageTarget`, which creates the directory of a file it is asked to read and does not
    undo the percent-encoding its own `get_url` applies (a space in a path)."""
    parsed = urlparse(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise BatchFileError(
            f"{where(line, stream)}: batch file {url[:300]!r} is not a local file:// URL "
            "(only batch files on this machine are read)"
        )
    return Path(url2pathname(parsed.path))


def _jsonl_rows(path: Path, compressed: bool, line: int, stream: str) -> Iterator[t.Any]:
    try:
        with path.open("rb") as raw:
            lines = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            for number, text in enumerate(lines, 1):
                if text.isspace():
                    continue
                try:
                    yield decoder.decode(text)
                except msgspec.DecodeError as exc:
                    reason = not_utf8(text) or f"not valid JSON ({exc})"
                    raise BatchFileError(
                        f"{where(line, stream)}: record {number} of batch file {path}: {reason}"
                    ) from None
                except RecursionError:
                    raise BatchFileError(
                        f"{where(line, stream)}: record {number} of batch file {path}: "
                        "JSON nested too deeply"
                    ) from None
    except gzip.BadGzipFile as exc:
        raise BatchFileError(
            f"{where(line, stream)}: batch file {path} is not a valid gzip file ({exc})"
        ) from None
    except (EOFError, zlib.error) as exc:
        raise BatchFileError(
            f"{where(line, stream)}: batch file {path} is not a valid gzip file (corrupt or "
            f"cut short: {exc})"
        ) from None
    except OSError as exc:
        raise BatchFileError(
            f"{where(line, stream)}: batch file {path} cannot be read: {exc.strerror or exc}"
        ) from None


def _parquet_rows(path: Path, line: int, stream: str) -> Iterator[t.Any]:
    # Imported by name: pyarrow is optional and has no type information.
    pyarrow = importlib.import_module("pyarrow")
    parquet = importlib.import_module("pyarrow.parquet")
    try:
        with path.open("rb") as raw:
            for rows in parquet.ParquetFile(raw).iter_batches():
                for row in rows.to_pylist():
                    # singer-sdk's Singer JSON, as a tap's RECORD line would carry the row.
                    yield decoder.decode(serialize_json(row))
    except pyarrow.ArrowException as exc:
        raise BatchFileError(
            f"{where(line, stream)}: batch file {path} is not a valid parquet file "
            f"({(str(exc).splitlines() or [type(exc).__name__])[0][:200]})"
        ) from None
    except OSError as exc:
        raise BatchFileError(
            f"{where(line, stream)}: batch file {path} cannot be read: {exc.strerror or exc}"
        ) from None
