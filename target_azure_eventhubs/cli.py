"""The `target-azure-eventhubs` command.

Before importing the target (~0.5 s, mostly singer-sdk) it starts the sender process with
the settings of the `--config` files, so connecting to Event Hubs overlaps with loading.
The target validates the settings as always; see `launcher`.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from target_azure_eventhubs import runtime

# Invocations that never send: no sender process for them (`--check` connects itself).
_NO_SENDING = frozenset({"--about", "--help", "--version", "--check"})
# Ways of connecting that are set up early: the others build credential objects.
_EARLY_KEYS = ("connection_string", "sas_key")


def early_config(args: list[str]) -> dict[str, Any] | None:
    """The merged `--config` files (later ones win), or None when they cannot be used."""
    paths = [
        arg.split("=", 1)[1] if arg.startswith("--config=") else args[i + 1]
        for i, arg in enumerate(args)
        if arg.startswith("--config=") or (arg == "--config" and i + 1 < len(args))
    ]
    if not paths or "ENV" in paths:
        return None
    merged: dict[str, Any] = {}
    for path in paths:
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # the target reports it properly
        if not isinstance(loaded, dict):
            return None
        merged.update(loaded)
    if not merged.get("sender_process", True) or merged.get("use_entra_id"):
        return None
    if merged.get("dry_run"):  # connects to nothing
        return None
    if not any(merged.get(key) for key in _EARLY_KEYS):
        return None
    return merged


def readable_again(args: list[str]) -> list[str]:
    """`args` with each `--config` that can be read only once (a pipe: `--config <(...)`,
    `/dev/stdin`) read now, once, into an anonymous in-memory file: both this command's
    early start and singer-sdk then read the same settings. Nothing is written to disk."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg.startswith("--config="):
            out[i] = "--config=" + _once(arg.split("=", 1)[1])
        elif arg == "--config" and i + 1 < len(out):
            out[i + 1] = _once(out[i + 1])
    return out


def _once(path: str) -> str:
    if path == "ENV" or not hasattr(os, "memfd_create"):
        return path
    try:
        if stat.S_ISREG(os.stat(path).st_mode):
            return path
        data = Path(path).read_bytes()
    except OSError:
        return path  # the target reports it properly
    fd = os.memfd_create("target-azure-eventhubs-config")  # kept open: the run reads it
    os.write(fd, data)
    return f"/proc/self/fd/{fd}"


def main() -> None:
    runtime.mark_start()
    sys.argv[1:] = readable_again(sys.argv[1:])
    args = sys.argv[1:]
    if os.name == "posix" and not _NO_SENDING.intersection(args):
        from target_azure_eventhubs.delivery.launcher import prestart  # noqa: PLC0415

        prestart(early_config(args))
    from target_azure_eventhubs.target import TargetAzureEventHubs  # noqa: PLC0415

    TargetAzureEventHubs.cli()


if __name__ == "__main__":
    main()
