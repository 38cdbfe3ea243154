"""The in-process API: :class:`LocalHub` (background thread) and :class:`LocalHubProcess`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .addresses import WS_PATH
from .auth import DEFAULT_KEY, DEFAULT_KEY_NAME, Authorizer, Policy
from .faults import Faults
from .server import HubServer
from .storage import Storage
from .stored import StoredEvent, _decode_event

if TYPE_CHECKING:
    from .entra import AuthorityServer, EntraAuthority

DEFAULT_HUBS = {"profiles": 4}


def parse_hub_spec(spec: str) -> tuple[str, int]:
    """``name[:partitions]`` (4 partitions by default)."""
    name, _, count = spec.partition(":")
    if not name:
        raise ValueError(f"bad hub spec {spec!r}")
    return name, int(count) if count else 4


def connection_string(
    host: str, port: int, key_name: str, key: str, hub_name: str | None = None
) -> str:
    entity = f";EntityPath={hub_name}" if hub_name else ""
    return (
        f"Endpoint=sb://{host}:{port};SharedAccessKeyName={key_name};SharedAccessKey={key}"
        f"{entity};UseDevelopmentEmulator=true"
    )


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """The server side of the TLS and WebSocket (wss) listeners."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class WebSocketAddresses:
    """How clients reach a hub's WebSocket listener (`ws_port`); shared by both APIs.

    Over WebSockets the SDK ignores the port of a connection string's `Endpoint`, so a
    client reaches a listener on another port than 443 with `custom_endpoint_address`.
    """

    host: str
    ws_port: int | None
    ws_tls: bool

    def _bound_ws_port(self) -> int:
        if self.ws_port is None:
            raise RuntimeError("this hub has no WebSocket listener (start it with ws_port=0)")
        return self.ws_port

    @property
    def ws_url(self) -> str:
        """`wss://` (with TLS) or `ws://` URL of the listener, path included."""
        scheme = "wss" if self.ws_tls else "ws"
        return f"{scheme}://{self.host}:{self._bound_ws_port()}{WS_PATH}"

    @property
    def ws_endpoint(self) -> str:
        """The `custom_endpoint_address` that reaches the listener."""
        return f"sb://{self.host}:{self._bound_ws_port()}"

    def ws_settings(self) -> dict[str, str]:
        """The target's settings for sending over the WebSocket listener."""
        return {"transport_type": "amqp_websockets", "custom_endpoint_address": self.ws_endpoint}


class LocalHub(WebSocketAddresses):
    """An Event Hubs-compatible AMQP server running on a background thread.

    >>> with LocalHub(hubs={"profiles": 4}) as hub:
    ...     conn_str = hub.connection_string("profiles")
    """

    def __init__(
        self,
        hubs: dict[str, int] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        policies: list[Policy] | None = None,
        key_name: str = DEFAULT_KEY_NAME,
        key: str = DEFAULT_KEY,
        accepted_bearer_tokens: dict[str, set[str]] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        max_message_size: int = 1024 * 1024,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_port: int | None = None,
        faults: Faults | None = None,
        max_frame_size: int = 4 * 1024 * 1024,
        ws_port: int | None = None,
        entra: EntraAuthority | None = None,
        entra_port: int = 0,
    ) -> None:
        # Entra mode: `entra` is served over HTTPS on `entra_port` and checks CBS jwt tokens;
        # without tls_cert, its generated certificate serves the TLS and wss listeners too.
        self.entra = entra
        self.entra_port = entra_port
        self.entra_server: AuthorityServer | None = None
        self.max_frame_size = max_frame_size
        self.requested_ws_port = ws_port  # None: no WebSocket listener; 0: a free port
        self.ws_port: int | None = None
        self.ws_tls = bool(tls_cert and tls_key)
        self.hubs = dict(hubs or DEFAULT_HUBS)
        self.host = host
        self.requested_port = port
        self.key_name = key_name
        self.key = key
        self.policies = list(policies) if policies else [Policy(key_name, key)]
        self.accepted_bearer_tokens = dict(accepted_bearer_tokens or {})
        self.data_dir = data_dir
        self.max_message_size = max_message_size
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.requested_tls_port = tls_port
        self.faults = faults or Faults()
        self.port = 0
        self.tls_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: HubServer | None = None
        self._storage: Storage | None = None

    # ---- lifecycle

    def start(self) -> LocalHub:
        """Start listening (on a background thread); returns self once ready."""
        if self._thread is not None:
            return self
        if self.entra is not None and self.entra_server is None:
            self._start_entra()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_async())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_async())
            # Let connection tasks finish their teardown before the loop goes away.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="localhub", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def _start_entra(self) -> None:
        from .entra import AuthorityServer  # noqa: PLC0415  (needs the optional libraries)

        assert self.entra is not None
        self.entra_server = AuthorityServer(self.entra, self.host, self.entra_port).start()
        if not (self.tls_cert and self.tls_key):
            tls = self.entra_server.tls
            assert tls is not None
            self.tls_cert, self.tls_key, self.ws_tls = str(tls.cert), str(tls.key), True

    @property
    def entra_ca_path(self) -> str:
        """The CA that signed the authority's (and, by default, the hub's) certificate."""
        assert self.entra_server is not None, "not started in Entra mode"
        return str(self.entra_server.ca_path)

    async def _start_async(self) -> None:
        self._storage = Storage(self.hubs, self.data_dir)
        validator = self.entra.verifier().cbs_rights if self.entra is not None else None
        authorizer = Authorizer(self.policies, self.accepted_bearer_tokens, validator)  # type: ignore[arg-type]
        self._server = HubServer(
            self._storage,
            authorizer,
            self.faults,
            self.max_message_size,
            max_frame_size=self.max_frame_size,
        )
        self.port = await self._server.listen(self.host, self.requested_port)
        context = (
            tls_context(self.tls_cert, self.tls_key) if self.tls_cert and self.tls_key else None
        )
        if context is not None:
            self.tls_port = await self._server.listen(
                self.host, self.requested_tls_port or 0, context
            )
        if self.requested_ws_port is not None:
            from .ws import listen_websocket  # noqa: PLC0415  (needs the optional library)

            self.ws_port = await listen_websocket(
                self._server, self.host, self.requested_ws_port, context
            )

    async def _stop_async(self) -> None:
        if self._server is not None:
            await self._server.close()

    def stop(self) -> None:
        if self.entra_server is not None:
            self.entra_server.stop()
            self.entra_server = None
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- connection details

    def connection_string(self, hub_name: str | None = None) -> str:
        return connection_string(self.host, self.port, self.key_name, self.key, hub_name)

    # ---- inspection (thread-safe snapshots)

    def _call(self, fn: Any) -> Any:
        """Run ``fn`` on the hub's loop (so reads never race appends)."""
        if self._loop is None or self._thread is None:
            return fn()
        return asyncio.run_coroutine_threadsafe(_as_coroutine(fn), self._loop).result(timeout=30)

    def events(self, hub_name: str, partition_id: str | int | None = None) -> list[StoredEvent]:
        """Stored events of one partition (or of every partition, in partition order)."""

        def snapshot() -> list[tuple[str, list[bytes], list[str | None], list[int], list[int]]]:
            assert self._storage is not None
            hub = self._storage.get(hub_name)
            if hub is None:
                raise KeyError(f"no hub named {hub_name!r}")
            logs = hub.partitions if partition_id is None else [hub.partitions[int(partition_id)]]
            return [
                (lg.partition_id, list(lg.events), list(lg.keys), list(lg.offsets), list(lg.times))
                for lg in logs
            ]

        result = []
        for pid, raws, keys, offsets, times in self._call(snapshot):
            for seq, raw in enumerate(raws):
                result.append(_decode_event(pid, raw, keys[seq], seq, offsets[seq], times[seq]))
        return result

    def event_count(self, hub_name: str, partition_id: str | int | None = None) -> int:
        def count() -> int:
            assert self._storage is not None
            hub = self._storage.get(hub_name)
            if hub is None:
                raise KeyError(f"no hub named {hub_name!r}")
            if partition_id is not None:
                return len(hub.partitions[int(partition_id)])
            return sum(len(p) for p in hub.partitions)

        return int(self._call(count))

    def consumer_count(self, hub_name: str) -> int:
        """Consumer links currently attached to ``hub_name`` (any group, any partition)."""

        def count() -> int:
            assert self._server is not None
            name = hub_name.lower()
            return sum(len(v) for k, v in self._server.consumers.items() if k[0] == name)

        return int(self._call(count))


async def _as_coroutine(fn: Any) -> Any:
    return fn()


class LocalHubProcess(WebSocketAddresses):
    """``python -m eventhubs_localhub`` as a subprocess, for tests that kill it.

    With ``ws_port`` (0: a free one) it also serves AMQP over WebSockets, over TLS when
    ``tls_cert`` and ``tls_key`` are given (its TLS listener then takes ``tls_port``). A
    restart keeps every port.
    """

    def __init__(
        self,
        hubs: dict[str, int] | None = None,
        *,
        port: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        key_name: str = DEFAULT_KEY_NAME,
        key: str = DEFAULT_KEY,
        extra_args: list[str] | None = None,
        control_port: int | None = 0,
        startup_timeout: float = 20.0,
        ws_port: int | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_port: int = 0,
    ) -> None:
        self.host = "127.0.0.1"
        self.ws_port = ws_port
        self.tls_cert, self.tls_key, self.tls_port = tls_cert, tls_key, tls_port
        self.ws_tls = bool(tls_cert and tls_key)
        self.hubs = dict(hubs or DEFAULT_HUBS)
        self.port = port
        self.data_dir = str(data_dir) if data_dir is not None else None
        self.key_name = key_name
        self.key = key
        self.extra_args = list(extra_args or [])
        self.control_port = control_port
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.connection_string_base = ""
        self.startup_lines: list[str] = []  # what it printed before READY (e.g. ENTRA ...)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "eventhubs_localhub", "--port", str(self.port)]
        for name, count in self.hubs.items():
            cmd += ["--hub", f"{name}:{count}"]
        cmd += ["--key-name", self.key_name, "--key", self.key]
        if self.data_dir:
            cmd += ["--data-dir", self.data_dir]
        if self.control_port is not None:
            cmd += ["--control-port", str(self.control_port)]
        if self.tls_cert and self.tls_key:
            cmd += ["--tls-cert", self.tls_cert, "--tls-key", self.tls_key]
        # Always: `--entra` serves TLS with a certificate of its own, and the command's
        # default port (5671) may be taken where 0 (a free port) is meant.
        cmd += ["--tls-port", str(self.tls_port)]
        if self.ws_port is not None:
            cmd += ["--ws-port", str(self.ws_port)]
        return cmd + self.extra_args

    def start(self) -> LocalHubProcess:
        self.startup_lines = []
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, text=True, bufsize=1
        )
        deadline = time.monotonic() + self.startup_timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"local hub exited early with code {self.process.wait()}")
            line = line.strip()
            self.startup_lines.append(line)
            if line.startswith("Endpoint="):
                self.connection_string_base = line
                self.port = int(line.split(";")[0].rsplit(":", 1)[1])
            elif line.startswith("CONTROL "):
                self.control_port = int(line.split()[1])
            elif line.startswith(("TLS ", "WS ")):
                self._note_port(line)
            elif line == "READY":
                # Keep draining stdout so the child never blocks on a full pipe.
                threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()
                return self
        raise TimeoutError("local hub did not print READY in time")

    def _note_port(self, line: str) -> None:
        """``TLS host:port`` or ``WS ws[s]://host:port/path``: remembered for a restart."""
        kind, address = line.split(maxsplit=1)
        port = int(address.split("://")[-1].split("/")[0].rsplit(":", 1)[1])
        if kind == "TLS":
            self.tls_port = port
        else:
            self.ws_port = port

    @staticmethod
    def _drain(process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for _ in process.stdout:
            pass

    def connection_string(self, hub_name: str | None = None) -> str:
        return connection_string("127.0.0.1", self.port, self.key_name, self.key, hub_name)

    def control(self, command: str, timeout: float = 5.0) -> str:
        """Send one control line (see ``__main__``); return the reply line."""
        assert self.control_port, "started without a control port"
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=timeout) as sock:
            sock.sendall(command.encode() + b"\n")
            reply = sock.makefile().readline().strip()
        if not reply.startswith("OK"):
            raise RuntimeError(f"control command {command!r} failed: {reply}")
        return reply

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def terminate(self, timeout: float = 10.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def restart(self) -> LocalHubProcess:
        """Start again on the same port, data dir and control port."""
        if self.process is not None and self.process.poll() is None:
            self.kill()
        return self.start()

    def __enter__(self) -> LocalHubProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


__all__ = ["DEFAULT_HUBS", "LocalHub", "LocalHubProcess", "Path", "StoredEvent"]
