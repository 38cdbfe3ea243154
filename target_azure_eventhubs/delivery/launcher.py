"""Starting the sender process (`delivery.child`), possibly before the target loads.

The command line starts it first thing (`prestart`), with the settings read from the
`--config` files: it imports the SDK and connects while this process loads singer-sdk.
The target then takes it over (`take`) and sends the validated settings; the child keeps
its early connection only if those describe the same connection and delivery options.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

CHILD_MODULE = "target_azure_eventhubs.delivery.child"

Child = tuple[subprocess.Popen[bytes], Connection]
_prestarted: Child | None = None


def start_child() -> Child:
    """A new sender process, waiting on the returned connection for its settings."""
    # The child imports exactly what this process would: its import path, and not the
    # working directory first (-P), which may hold another copy of this package.
    path = os.pathsep.join(entry or os.getcwd() for entry in sys.path)
    parent_end, child_end = socket.socketpair()
    try:
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", CHILD_MODULE, str(child_end.fileno())],
            pass_fds=(child_end.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=2,  # stdout carries Singer messages: never the child's
            start_new_session=True,  # a terminal's Ctrl-C reaches the parent only
            env={**os.environ, "PYTHONPATH": path},
        )
    finally:
        child_end.close()
    return process, Connection(parent_end.detach())


def prestart(early_config: Mapping[str, Any] | None) -> None:
    """Start the sender process now; with `early_config`, it connects right away.

    Never taken, it exits when this process does (its connection closes).
    """
    global _prestarted  # noqa: PLW0603  (one per process, by design)
    if _prestarted is not None:
        return
    _prestarted = start_child()
    if early_config is not None:
        with contextlib.suppress(OSError):  # a child gone already is replaced by take()
            _prestarted[1].send(("preconnect", dict(early_config)))


def prestarted() -> bool:
    """Whether the command started a sender process for this run (see `prestart`)."""
    return _prestarted is not None


def discard() -> None:
    """Stop the prestarted sender process: the run ends before sending anything."""
    global _prestarted
    child, _prestarted = _prestarted, None
    if child is not None:
        child[1].close()
        kill(child[0])


def take() -> Child:
    """The prestarted sender process if it is still there, else a new one."""
    global _prestarted
    child, _prestarted = _prestarted, None
    if child is not None and child[0].poll() is None:
        return child
    if child is not None:
        child[1].close()
    return start_child()


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(1.0)
