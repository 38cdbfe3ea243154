"""Command line: ``python -m eventhubs_localhub --port 5672 --hub profiles:4``.

Prints the connection string, then ``TLS <host:port>`` and ``WS <url>`` for the TLS and
WebSocket listeners, ``CONTROL <port>`` when a control port is open, the ``ENTRA ...`` lines
of the Entra mode (``--entra``, see ``entra.cli``), then ``READY``.
SIGTERM/SIGINT stop it cleanly.

AMQP over WebSockets (``--ws-port``, needs the ``websockets`` package): the path
``/$servicebus/websocket`` and subprotocol ``AMQPWSB10``, as Event Hubs serves on port 443;
``wss://`` with ``--tls-cert``/``--tls-key``, else ``ws://``. Clients reach a port other than
443 with ``custom_endpoint_address=sb://<host>:<port>``.

Control channel (``--control-port``, 127.0.0.1 only): one command per line, reply ``OK ...``
or ``ERR ...``:
    reject-next N [CONDITION]   throttle EPS [HUB] | throttle off [HUB]
    black-hole on|off           refuse-tokens on|off
    token-lifetime S|off        detach-links        close-connections
    count HUB [PARTITION]       reset
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

from .addresses import WS_PATH
from .auth import DEFAULT_KEY, DEFAULT_KEY_NAME, Authorizer, Policy
from .faults import SERVER_BUSY, Faults
from .hub import connection_string, parse_hub_spec, tls_context
from .server import HubServer
from .storage import Storage

if TYPE_CHECKING:
    from .entra.cli import EntraMode


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="azure-eventhubs-localhub", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5672, help="plain AMQP port; 0 picks a free one")
    p.add_argument("--hub", action="append", default=[], metavar="NAME[:PARTITIONS]")
    p.add_argument("--key-name", default=DEFAULT_KEY_NAME)
    p.add_argument("--key", default=DEFAULT_KEY)
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME:KEY:RIGHTS",
        help="extra SAS policy, rights a comma list of Send,Listen,Manage",
    )
    p.add_argument("--data-dir", help="keep partition logs on disk here (fsynced)")
    p.add_argument("--max-message-size", type=int, default=1024 * 1024)
    p.add_argument("--max-frame-size", type=int, default=4 * 1024 * 1024)
    p.add_argument("--tls-cert", help="PEM certificate: enables the TLS listener (and wss://)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--tls-port", type=int, default=5671)
    p.add_argument(
        "--ws-port",
        type=int,
        metavar="P",
        help="also serve AMQP over WebSockets on port P (0: a free one) at /$servicebus/websocket, "
        "subprotocol AMQPWSB10; TLS (wss://) with --tls-cert/--tls-key, else plain ws://. "
        "Clients reach it with custom_endpoint_address=sb://HOST:P. "
        "Needs: pip install 'target-azure-eventhubs[websockets]'",
    )
    p.add_argument("--control-port", type=int, help="open the line control channel (0: free port)")
    p.add_argument("--fault-reject-next", type=int, default=0, metavar="N")
    p.add_argument("--fault-throttle", type=float, metavar="EPS")
    p.add_argument("--fault-black-hole", action="store_true")
    p.add_argument("--fault-refuse-tokens", action="store_true")
    p.add_argument("--fault-token-lifetime", type=float, metavar="S")
    p.add_argument("--log-level", default="INFO")
    if _entra_available():
        from .entra.cli import add_arguments  # noqa: PLC0415  (needs the optional libraries)

        add_arguments(p)
    return p


def _entra_available() -> bool:
    try:
        import cryptography  # noqa: F401, PLC0415
        import jwt  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _start_entra(args: argparse.Namespace) -> EntraMode | None:
    if not getattr(args, "entra", False):
        return None
    from .entra.cli import start  # noqa: PLC0415  (needs the optional libraries)

    entra = start(args, args.host)
    if not (args.tls_cert and args.tls_key):  # the authority's certificate serves TLS too
        args.tls_cert, args.tls_key = str(entra.tls.cert), str(entra.tls.key)
    return entra


def apply_control(command: str, faults: Faults, storage: Storage) -> str:
    words = command.split()
    if not words:
        return "ERR empty command"
    op, args = words[0].lower(), words[1:]
    on = bool(args) and args[0].lower() in ("on", "true", "1")
    if op == "reject-next":
        faults.reject_next(int(args[0]), args[1] if len(args) > 1 else SERVER_BUSY)
    elif op == "throttle":
        hub = args[1] if len(args) > 1 else None
        faults.throttle(None if args[0] == "off" else float(args[0]), hub=hub)
    elif op == "black-hole":
        faults.black_hole(on)
    elif op == "refuse-tokens":
        faults.refuse_tokens(on)
    elif op == "token-lifetime":
        faults.token_lifetime(None if args[0] == "off" else float(args[0]))
    elif op == "detach-links":
        faults.detach_links()
    elif op == "close-connections":
        faults.close_connections()
    elif op == "reset":
        faults.reset()
    elif op == "count":
        store = storage.get(args[0])
        if store is None:
            return f"ERR no hub {args[0]}"
        if len(args) > 1:
            return f"OK {len(store.partitions[int(args[1])])}"
        return f"OK {sum(len(p) for p in store.partitions)}"
    else:
        return f"ERR unknown command {op}"
    return "OK"


async def serve(args: argparse.Namespace) -> None:
    hubs = dict(parse_hub_spec(s) for s in (args.hub or ["profiles:4"]))
    policies = [Policy(args.key_name, args.key)] + [Policy.parse(s) for s in args.policy]
    faults = Faults()
    if args.fault_reject_next:
        faults.reject_next(args.fault_reject_next)
    if args.fault_throttle:
        faults.throttle(args.fault_throttle)
    faults.black_hole(args.fault_black_hole)
    faults.refuse_tokens(args.fault_refuse_tokens)
    faults.token_lifetime(args.fault_token_lifetime)
    storage = Storage(hubs, args.data_dir)
    entra = _start_entra(args)
    server = HubServer(
        storage,
        Authorizer(policies, bearer_validator=entra.validator if entra else None),
        faults,
        args.max_message_size,
        max_frame_size=args.max_frame_size,
    )
    port = await server.listen(args.host, args.port)
    print(connection_string(args.host, port, args.key_name, args.key), flush=True)
    context = tls_context(args.tls_cert, args.tls_key) if args.tls_cert and args.tls_key else None
    if context is not None:
        tls_port = await server.listen(args.host, args.tls_port, context)
        print(f"TLS {args.host}:{tls_port}", flush=True)
    if args.ws_port is not None:
        from .ws import listen_websocket  # noqa: PLC0415  (needs the optional library)

        ws_port = await listen_websocket(server, args.host, args.ws_port, context)
        scheme = "wss" if context is not None else "ws"
        print(f"WS {scheme}://{args.host}:{ws_port}{WS_PATH}", flush=True)
    if args.control_port is not None:

        async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            line = (await reader.readline()).decode().strip()
            try:
                reply = apply_control(line, faults, storage)
            except (ValueError, IndexError) as exc:
                reply = f"ERR {exc}"
            writer.write(reply.encode() + b"\n")
            await writer.drain()
            writer.close()

        control_server = await asyncio.start_server(control, "127.0.0.1", args.control_port)
        print(f"CONTROL {control_server.sockets[0].getsockname()[1]}", flush=True)
    for line in entra.lines if entra else []:
        print(line, flush=True)
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.getLogger("eventhubs_localhub").info("shutting down")
    await server.close()
    if entra is not None:
        entra.server.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.ws_port is not None:
        try:
            import websockets  # noqa: F401, PLC0415  (fail before listening on anything)
        except ImportError:
            print(
                "azure-eventhubs-localhub: --ws-port needs the 'websockets' package: "
                "pip install 'target-azure-eventhubs[websockets]'",
                file=sys.stderr,
            )
            return 2
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
