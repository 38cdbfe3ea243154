"""A real HTTP CONNECT proxy for tests: Debian's tinyproxy (scripts/install_test_services.sh).

Its outgoing connections leave from another loopback address (`Bind`, 127.0.0.2 by
default), so a hub on 127.0.0.1 tells them apart from a client's own (127.0.0.1).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from types import TracebackType

from tests.services import INSTALL_SCRIPT, service_missing
from tests.waiting import wait_until

BIND_ADDRESS = "127.0.0.2"


def find_tinyproxy() -> str:
    """The tinyproxy binary; skips the test without it (fails under CI, which installs it)."""
    found = shutil.which("tinyproxy") or next(
        (p for p in ("/usr/bin/tinyproxy", "/usr/sbin/tinyproxy") if os.access(p, os.X_OK)), None
    )
    if found is None:
        service_missing("tinyproxy not found", f"run {INSTALL_SCRIPT} (Debian's tinyproxy)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TinyProxy:
    """``with TinyProxy(tmp_path) as proxy:`` a tinyproxy on 127.0.0.1:``proxy.port``."""

    def __init__(
        self,
        directory: Path,
        *,
        credentials: tuple[str, str] | None = None,
        bind: str = BIND_ADDRESS,
    ) -> None:
        self.binary = find_tinyproxy()
        self.directory = directory
        self.credentials = credentials
        self.bind = bind
        self.port = free_port()
        self.log_path = directory / f"tinyproxy-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            f"Bind {self.bind}",
            "Allow 127.0.0.1",
            "Timeout 60",
            "MaxClients 64",
            "LogLevel Connect",
            "DisableViaHeader Yes",
        ]
        if self.credentials:
            lines.append("BasicAuth {} {}".format(*self.credentials))
        return "\n".join(lines) + "\n"

    def start(self) -> TinyProxy:
        conf = self.directory / f"tinyproxy-{self.port}.conf"
        conf.write_text(self.config())
        with self.log_path.open("ab") as log:
            # -d: in the foreground, logging to stderr (no log file, pid file or user switch).
            self.process = subprocess.Popen(
                [self.binary, "-d", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )

        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"tinyproxy exited at start:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                return False
            return True

        if wait_until(listening, 10):
            return self
        raise TimeoutError(f"tinyproxy did not listen on {self.port}:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tunnels(self) -> list[str]:
        """The destinations of the CONNECT requests the proxy logged."""
        return [
            line.split("CONNECT ", 2)[-1].split()[0]
            for line in self.log().splitlines()
            if "Request" in line and "CONNECT " in line
        ]

    def __enter__(self) -> TinyProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
