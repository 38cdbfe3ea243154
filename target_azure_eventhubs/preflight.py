"""The preflight check, `target-azure-eventhubs --config ... --check`.

It reads and validates the configuration as a run does, connects to every event hub a run
could send to as the run's senders do (`delivery.probe`: partitions, largest message, and
the Send right, proven by a sender link the service lets stand), and checks that the
dead-letter file can be appended to and the change store opens. It sends nothing.

The report goes to stdout: like `--about`, `--check` answers a question and writes no
Singer message, so nothing there can be taken for STATE (and `meltano invoke` shows it).
Each failure is logged to stderr with the same one-line, secret-free message a run gives.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from target_azure_eventhubs.changes import open_store
from target_azure_eventhubs.delivery.connection import ConnectionSpec, parse_connection_string
from target_azure_eventhubs.delivery.probe import probe_hub
from target_azure_eventhubs.errors import ConfigurationError, TargetError
from target_azure_eventhubs.invalid_records import InvalidRecords
from target_azure_eventhubs.settings import TargetSettings


def add_check_option(command: click.Command) -> click.Command:
    """The singer-sdk command with `--check` (handled by the target's `invoke`)."""
    command.params.append(
        click.Option(
            ["--check"],
            is_flag=True,
            default=False,
            help="Connect as a run would, prove the Send right on every event hub, check "
            "the dead-letter file and change store, print a report, and send nothing.",
        )
    )
    return command


def read_config(target_cls: Any, given: Any) -> dict[str, Any]:
    """The configuration as a run reads it, by singer-sdk's own steps
    (`PluginBase.__init__`): the `--config` files merged, with `--config=ENV` the
    TARGET_AZURE_EVENTHUBS_* variables on top, then validated against the schema.

    A schema error raises ConfigurationError, reported exactly as for a run.
    """
    config: dict[str, Any] = dict(given.config) if given is not None else {}
    if given is not None and given.parse_env:
        config.update(target_cls._env_var_config)
    plugin = target_cls.__new__(target_cls)  # the validation alone: no target is built
    plugin._config = config
    plugin._validate_config(raise_errors=True)
    return config


def run_check(target_cls: Any, given: Any) -> int:
    """Check everything a run needs before its first record; returns the exit code."""
    logger: logging.Logger = target_cls.logger
    logging.getLogger("azure").setLevel(logging.WARNING)  # as a run: no AMQP state changes
    try:
        config = read_config(target_cls, given)
        settings = TargetSettings.from_config(config, target_cls.config_jsonschema)
        invalid = InvalidRecords(settings.on_invalid_record, settings.dead_letter_path, logger)
    except ConfigurationError as error:
        logger.error("Configuration error: %s", error)
        return 1
    check = _Check(logger)
    check.line("Preflight check of target-azure-eventhubs: connects, sends nothing")
    for label, value in _connection_lines(settings.connection, config):
        check.line(f"  {label + ':':<17}{value}")
    for hub, origin in _hubs(settings):
        check.attempt(f"event hub '{hub}' ({origin})", lambda h=hub: _hub_line(settings, h))
    check.line(f"  {'content:':<17}{_content_line(settings)}")
    check.attempt("invalid records", lambda: _invalid_records_line(invalid))
    check.attempt("change tracking", lambda: _change_store_line(settings))
    if check.failures:
        check.line(f"Check failed: {check.failures} problem(s), each logged as an error")
        return 1
    check.line("Check passed: a run can connect and send with this configuration")
    return 0


class _Check:
    """Report lines on stdout as each check ends; failures logged as a run logs them."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.failures = 0

    def line(self, text: str) -> None:
        click.echo(text)

    def attempt(self, what: str, describe: Any) -> None:
        try:
            self.line(f"  {what}: {describe()}")
        except TargetError as error:
            self.failures += 1
            prefix = "Configuration error: " if isinstance(error, ConfigurationError) else ""
            self.logger.error("%s%s", prefix, error)
            self.line(f"  {what}: FAILED")


def _hubs(settings: TargetSettings) -> list[tuple[str, str]]:
    """Every event hub a run could send to, and which setting names it."""
    hubs: dict[str, list[str]] = {}
    if settings.connection.default_eventhub:
        hubs[settings.connection.default_eventhub] = []
    for stream, hub in sorted(settings.stream_eventhubs.items()):
        hubs.setdefault(hub, []).append(stream)
    default = settings.connection.default_eventhub
    return [(hub, _origin(hub == default, streams)) for hub, streams in hubs.items()]


def _origin(default: bool, streams: list[str]) -> str:
    routes = f"stream_eventhubs: {', '.join(streams)}" if streams else ""
    return "; ".join(part for part in ("default hub" if default else "", routes) if part)


def _hub_line(settings: TargetSettings, hub: str) -> str:
    limits = probe_hub(settings.connection, hub)
    cap = settings.delivery.max_batch_size_bytes
    capped = f" (batches capped at {cap} by max_batch_size_bytes)" if cap else ""
    return (
        f"{len(limits.partition_ids)} partitions, max message size "
        f"{limits.max_message_size} bytes{capped}, Send right proven"
    )


def _connection_lines(spec: ConnectionSpec, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    lines = [("auth", _auth_way(spec, config)), ("namespace", _namespace(spec, config))]
    lines.append(("transport", str(config.get("transport_type") or "amqp")))
    if endpoint := config.get("custom_endpoint_address"):
        lines.append(("custom endpoint", str(endpoint)))
    if verify := config.get("connection_verify"):
        lines.append(("TLS CA bundle", str(verify)))
    if spec.proxy is not None:  # from the settings or the environment, as a run uses it
        lines.append(("HTTP proxy", spec.proxy.describe().removeprefix("HTTP proxy ")))
    elif spec.ignored_proxy_variable:
        lines.append(("HTTP proxy", f"none ({spec.ignored_proxy_variable} is not used by amqp)"))
    return lines


def _auth_way(spec: ConnectionSpec, config: Mapping[str, Any]) -> str:
    if spec.method == "sas_key":
        return f"namespace + SAS key, shared access key name '{spec.sas_key_name}'"
    if spec.method == "connection_string":
        named = f"shared access key name '{spec.sas_key_name}'" if spec.sas_key_name else ""
        return "connection string" + (f", {named}" if named else "")
    if config.get("client_id") and config.get("client_secret"):
        return (
            f"Microsoft Entra ID, service principal client id '{config['client_id']}' "
            f"(tenant '{config.get('tenant_id')}')"
        )
    if config.get("_credential") is not None:
        return f"Microsoft Entra ID, credential {type(config['_credential']).__name__}"
    return "Microsoft Entra ID, DefaultAzureCredential"


def _namespace(spec: ConnectionSpec, config: Mapping[str, Any]) -> str:
    """The host, with the port a connection string's endpoint names."""
    if spec.method == "connection_string":
        endpoint = parse_connection_string(str(config["connection_string"])).get("endpoint", "")
        host_port = endpoint.split("://", 1)[-1].split("/", 1)[0]
        return host_port or spec.host
    return spec.host


def _content_line(settings: TargetSettings) -> str:
    conversion = settings.conversion
    return (
        f"{len(conversion.identity_fields)} identity fields, "
        f"{len(conversion.attribute_fields)} attribute fields, "
        f"{len(conversion.segment_catalog)} segments in the catalog: valid"
    )


def _invalid_records_line(invalid: InvalidRecords) -> str:
    if invalid.path is None:
        return f"on_invalid_record {invalid.policy}"
    return f"on_invalid_record {invalid.policy}, dead-letter file {_appendable(invalid.path)}"


def _appendable(path: Path) -> str:
    """Prove `path` can be appended to, as the run would (its folder created if missing),
    writing nothing and leaving no new file or folder behind."""
    existed = path.exists()
    created: list[Path] = []
    try:
        for folder in reversed([path.parent, *path.parent.parents]):
            if not folder.exists():
                folder.mkdir()
                created.append(folder)
        with path.open("ab"):
            pass
    except OSError as exc:
        raise ConfigurationError(
            f"dead_letter_path {path} cannot be appended to: {exc.strerror or exc}"
        ) from None
    finally:
        if not existed:
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
    if existed:
        return f"{path} can be appended to ({path.stat().st_size} bytes now)"
    return f"{path} can be created" + (" (with its folder)" if created else "")


def _change_store_line(settings: TargetSettings) -> str:
    if not settings.change_tracking:
        return "off"
    store = open_store(settings.change_store)
    try:
        state = "new: created now, empty" if store.created else "existing"
        return (
            f"store {store.location} opens ({state}), snapshot_end {settings.changes.snapshot_end}"
        )
    finally:
        store.close()
