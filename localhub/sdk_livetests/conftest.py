"""The azure-eventhub SDK's own live tests, against a local hub instead of an Azure namespace.

``scripts/run_sdk_livetests.sh`` puts this file in place of the SDK's ``tests/conftest.py``
in the unpacked source distribution. It keeps the fixture names and shapes the live tests
use; what the SDK's conftest gets from Azure comes from here instead:

- the management plane (a new event hub per test): hubs pre-created in one local hub and
  handed out one per test, two partitions each, as upstream asks for;
- the namespace ``localhost``, served with TLS on 5671 (AMQP) and 443 (AMQP over
  WebSockets), the ports the SDK dials, with a certificate from a test CA that the process
  trusts (``SSL_CERT_FILE``, and ``certifi.where()`` for the tests that load it directly);
- Microsoft Entra ID (``get_credential``): a credential whose bearer token the hub accepts.

Tests that need what no local server has (a storage account, the fault-injector binary,
public DNS) skip themselves or are deselected below, each with its reason.

Under pytest-xdist (``-n N``) one hub serves every worker: the controlling process starts it,
with a pool of hubs for each worker, and hands the test CA and the accepted token to the
workers through the environment. Most of these tests wait (for idle timeouts, for receivers
to give up), so many workers share two cores well.
"""

from __future__ import annotations

import itertools
import os
import resource
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import certifi
import pytest
from azure.core.credentials import AccessToken
from azure.core.settings import settings
from azure.eventhub import EventHubProducerClient, TransportType
from azure.eventhub._pyamqp import ReceiveClient
from azure.eventhub._pyamqp.authentication import SASTokenAuth
from eventhubs_localhub import DEFAULT_KEY, DEFAULT_KEY_NAME, LISTEN, MANAGE, SEND, LocalHub
from eventhubs_localhub.entra.pki import TlsFiles, make_tls_files

HOST = "localhost"
PARTITION_COUNT = 2
POOL_SIZE = int(os.environ.get("LIVETEST_HUB_POOL", "300"))  # hubs for each worker
CONN_STR = "Endpoint=sb://{}/;SharedAccessKeyName={};SharedAccessKey={};EntityPath={}"

# Tests that cannot pass against any local server, with the reason.
DESELECTED: dict[str, str] = {}
# Collected first, longest first (from --durations), each followed by another test:
# pytest-xdist hands each worker two tests to begin with, so every worker starts at most one
# of these, and the run is not left waiting on them at the end. They wait for minutes by
# design (idle timeouts, the SDK's retry delays).
LONGEST_FIRST = (
    "test_client_invalid_credential_async",
    "test_send_with_long_interval_async",
    "test_send_with_long_interval_sync",
    "test_client_invalid_credential",
    "test_long_sleep",
    "test_send_with_invalid_hostname_async",
    "test_send_batch_with_invalid_hostname",
    "test_receive_with_event_position_async",
    "test_client_with_ssl_context_async",
    "test_receive_with_event_position_sync",
    "test_send_with_timing_configuration",
)

# Made once, in the controlling process; xdist workers inherit them through the environment.
if "LIVETEST_TLS_DIR" not in os.environ:
    os.environ["LIVETEST_TLS_DIR"] = tempfile.mkdtemp(prefix="localhub-livetests-")
    os.environ["LIVETEST_BEARER_TOKEN"] = secrets.token_urlsafe(32)
    make_tls_files(Path(os.environ["LIVETEST_TLS_DIR"]), (HOST, "127.0.0.1"))
_tls_dir = Path(os.environ["LIVETEST_TLS_DIR"])
_TLS = TlsFiles(_tls_dir / "ca.pem", _tls_dir / "server.pem", _tls_dir / "server.key")
_BEARER_TOKEN = os.environ["LIVETEST_BEARER_TOKEN"]
# Before any TLS context exists: OpenSSL's default trust store, for the SDK, websocket-client
# and aiohttp alike.
os.environ["SSL_CERT_FILE"] = str(_TLS.ca)
certifi.where = lambda: str(_TLS.ca)  # the tests that build their own SSL context load this


class _Credential:
    """A TokenCredential handing out the bearer token that the hub accepts."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(_BEARER_TOKEN, int(time.time()) + 3600)

    def close(self) -> None:
        pass

    def __enter__(self) -> _Credential:
        return self

    def __exit__(self, *args: object) -> None:
        pass


class _AsyncCredential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(_BEARER_TOKEN, int(time.time()) + 3600)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> _AsyncCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


def get_devtools_credential(is_async: bool = False) -> _Credential | _AsyncCredential:
    return _AsyncCredential() if is_async else _Credential()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--sleep", action="store", default="True", help="sleep on reconnect test")


def _worker_ids(config: pytest.Config) -> list[str]:
    workers = int(getattr(config.option, "numprocesses", 0) or 0)
    return [f"gw{i}" for i in range(workers)] if workers else ["main"]


def _worker_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"


_HUB = pytest.StashKey[LocalHub]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "liveTest: mark test to be a live test only")
    config.addinivalue_line("markers", "no_amqpproxy: opt out of amqp proxy recording")
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controlling process serves the hub
    config.stash[_HUB] = LocalHub(
        {f"{w}-eh{i}": PARTITION_COUNT for w in _worker_ids(config) for i in range(POOL_SIZE)},
        host=HOST,
        tls_cert=str(_TLS.cert),
        tls_key=str(_TLS.key),
        tls_port=5671,
        ws_port=443,
        accepted_bearer_tokens={_BEARER_TOKEN: {SEND, LISTEN, MANAGE}},
    ).start()


def pytest_unconfigure(config: pytest.Config) -> None:
    hub = config.stash.get(_HUB, None)
    if hub is not None:
        hub.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        base = item.name.split("[")[0]
        (dropped if base in DESELECTED else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)

    def rank(item: pytest.Item) -> int:
        base = item.name.split("[")[0]
        return LONGEST_FIRST.index(base) if base in LONGEST_FIRST else len(LONGEST_FIRST)

    ranked = sorted(kept, key=rank)
    longest = [item for item in ranked if rank(item) < len(LONGEST_FIRST)]
    others = ranked[len(longest) :]
    paired = itertools.zip_longest(longest, others[: len(longest)])
    items[:] = [item for pair in paired for item in pair if item is not None]
    items += others[len(longest) :]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        terminalreporter.write_line(
            f"CPU seconds: {own.ru_utime + own.ru_stime:.0f} in the hub and pytest's "
            f"controlling process, {children.ru_utime + children.ru_stime:.0f} in the workers"
        )
    terminalreporter.write_sep("-", "deselected: need what no local server has")
    for name, reason in DESELECTED.items():
        terminalreporter.write_line(f"{name}: {reason}")


_next_hub = iter(range(POOL_SIZE))


@pytest.fixture
def live_eventhub(request: pytest.FixtureRequest) -> dict[str, str]:
    """A hub no other test has used, as upstream's fixture creates one per test."""
    try:
        name = f"{_worker_id(request.config)}-eh{next(_next_hub)}"
    except StopIteration:
        pytest.fail(f"the pool of {POOL_SIZE} hubs is used up: raise LIVETEST_HUB_POOL")
    return {
        "resource_group": "local",
        "hostname": HOST,
        "key_name": DEFAULT_KEY_NAME,
        "access_key": DEFAULT_KEY,
        "namespace": HOST,
        "event_hub": name,
        "consumer_group": "$Default",
        "partition": "0",
        "connection_str": CONN_STR.format(HOST, DEFAULT_KEY_NAME, DEFAULT_KEY, name),
    }


@pytest.fixture(scope="session")
def resource_group() -> str:
    return "local"


@pytest.fixture(scope="session")
def eventhub_namespace() -> tuple[str, str, str, str]:
    conn_str = f"Endpoint=sb://{HOST}/;SharedAccessKeyName={DEFAULT_KEY_NAME};"
    return HOST, conn_str + f"SharedAccessKey={DEFAULT_KEY}", DEFAULT_KEY_NAME, DEFAULT_KEY


@pytest.fixture
def resource_mgmt_client() -> None:
    pytest.skip("needs Azure's management plane")


@pytest.fixture(scope="session")
def storage_url() -> None:
    pytest.skip("needs an Azure storage account")


@pytest.fixture
def checkpoint_store(storage_url: None) -> None:
    pass


@pytest.fixture
def checkpoint_store_aio(storage_url: None) -> None:
    pass


@pytest.fixture
def faultinjector(live_eventhub: dict[str, str], request: pytest.FixtureRequest) -> None:
    pytest.skip("needs the fault-injector binary (upstream: USE_FAULTINJECTOR)")


@pytest.fixture
def sleep(request: pytest.FixtureRequest) -> bool:
    return str(request.config.getoption("--sleep")).lower() in ("true", "yes", "1", "y")


@pytest.fixture(scope="session", params=[False], ids=["pyamqp"])
def uamqp_transport(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture(
    scope="session",
    params=[TransportType.Amqp, TransportType.AmqpOverWebsocket],
    ids=["amqp", "ws"],
)
def socket_transport(request: pytest.FixtureRequest) -> TransportType:
    return TransportType(request.param)


@pytest.fixture(scope="session")
def timeout_factor(uamqp_transport: bool) -> int:
    return 1000 if uamqp_transport else 1


@pytest.fixture(scope="session")
def fake_span() -> Any:
    from tracing_common import FakeSpan  # noqa: PLC0415  (the SDK's tests/ module)

    return FakeSpan


@pytest.fixture
def enable_tracing(fake_span: Any) -> Iterator[Any]:
    settings.tracing_implementation.set_value(fake_span)
    yield fake_span
    settings.tracing_implementation.set_value(None)


@pytest.fixture(scope="session")
def get_credential() -> Callable[..., Any]:
    return get_devtools_credential


@pytest.fixture(scope="session")
def get_credential_async() -> Callable[..., Any]:
    return partial(get_devtools_credential, is_async=True)


@pytest.fixture
def connection_str(live_eventhub: dict[str, str]) -> str:
    return live_eventhub["connection_str"]


@pytest.fixture
def skip_amqp_proxy() -> bool:
    return True


@pytest.fixture
def client_args() -> dict[str, Any]:
    return {}


@pytest.fixture
def invalid_hostname(live_eventhub: dict[str, str]) -> str:
    return CONN_STR.format(
        "invalid123.servicebus.windows.net",
        live_eventhub["key_name"],
        live_eventhub["access_key"],
        live_eventhub["event_hub"],
    )


@pytest.fixture
def invalid_key(live_eventhub: dict[str, str]) -> str:
    return CONN_STR.format(HOST, DEFAULT_KEY_NAME, "invalid", live_eventhub["event_hub"])


@pytest.fixture
def invalid_policy(live_eventhub: dict[str, str]) -> str:
    return CONN_STR.format(HOST, "invalid", DEFAULT_KEY, live_eventhub["event_hub"])


def _receivers(live_eventhub: dict[str, str], timeout: int) -> list[ReceiveClient]:
    receivers = []
    uri = f"sb://{HOST}/{live_eventhub['event_hub']}"
    for p in range(PARTITION_COUNT):
        source = (
            f"amqps://{HOST}/{live_eventhub['event_hub']}/ConsumerGroups/"
            f"{live_eventhub['consumer_group']}/Partitions/{p}"
        )
        auth = SASTokenAuth(uri, uri, DEFAULT_KEY_NAME, DEFAULT_KEY)
        receiver = ReceiveClient(
            HOST, source, auth=auth, network_trace=False, timeout=timeout, link_credit=500
        )
        receiver.open()
        receivers.append(receiver)
    return receivers


@pytest.fixture
def connstr_receivers(
    live_eventhub: dict[str, str],
) -> Iterator[tuple[str, list[ReceiveClient]]]:
    receivers = _receivers(live_eventhub, 0)
    yield live_eventhub["connection_str"], receivers
    for r in receivers:
        r.close()


@pytest.fixture
def auth_credentials(live_eventhub: dict[str, str]) -> tuple[str, str, Callable[..., Any]]:
    return HOST, live_eventhub["event_hub"], get_devtools_credential


@pytest.fixture
def auth_credentials_async(live_eventhub: dict[str, str]) -> tuple[str, str, Callable[..., Any]]:
    return HOST, live_eventhub["event_hub"], partial(get_devtools_credential, is_async=True)


@pytest.fixture
def auth_credential_receivers(live_eventhub: dict[str, str]) -> Iterator[tuple[Any, ...]]:
    receivers = _receivers(live_eventhub, 30)
    yield HOST, live_eventhub["event_hub"], get_devtools_credential, receivers
    for r in receivers:
        r.close()


@pytest.fixture
def auth_credential_receivers_async(live_eventhub: dict[str, str]) -> Iterator[tuple[Any, ...]]:
    receivers = _receivers(live_eventhub, 30)
    credential = partial(get_devtools_credential, is_async=True)
    yield HOST, live_eventhub["event_hub"], credential, receivers
    for r in receivers:
        r.close()


def _senders(live_eventhub: dict[str, str]) -> tuple[EventHubProducerClient, list[Any]]:
    client = EventHubProducerClient(
        fully_qualified_namespace=HOST,
        eventhub_name=live_eventhub["event_hub"],
        credential=_Credential(),
    )
    return client, [client._create_producer(partition_id=p) for p in client.get_partition_ids()]


@pytest.fixture
def auth_credential_senders(live_eventhub: dict[str, str]) -> Iterator[tuple[Any, ...]]:
    client, senders = _senders(live_eventhub)
    yield HOST, live_eventhub["event_hub"], get_devtools_credential, senders
    for s in senders:
        s.close()
    client.close()


@pytest.fixture
def auth_credential_senders_async(live_eventhub: dict[str, str]) -> Iterator[tuple[Any, ...]]:
    client, senders = _senders(live_eventhub)
    credential = partial(get_devtools_credential, is_async=True)
    yield HOST, live_eventhub["event_hub"], credential, senders
    for s in senders:
        s.close()
    client.close()
