"""Fixtures shared by every suite, and the suite's own rules:

- the two tiers: a test is ``slow`` when it runs the target, the hub, PostgreSQL, Meltano or
  a build as a subprocess (its module is in ``SLOW_MODULES``, or it uses a fixture of
  ``SLOW_FIXTURES``); ``scripts/test.sh --fast`` runs the others (``-m "not slow"``);
- the longest tests are collected first, so that pytest-xdist's workers start them first
  and the run does not end waiting on one of them;
- under CI (the variable ``CI`` set) a test that skips fails instead, unless it is marked
  ``external`` (it needs a real Azure namespace's connection string): a missing PostgreSQL,
  tinyproxy, git or Meltano must not turn the suite green without running its tests;
- the run ends with a line counting the skipped tests: ``skipped: N (real-namespace tests: M)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventhubs_localhub import LocalHub

from tests.services import INSTALL_SCRIPT, in_ci

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def local_hub() -> Iterator[LocalHub]:
    """A started in-process local Event Hubs (hub ``profiles`` with 4 partitions, free port).

    Use ``local_hub.connection_string()`` (namespace-level) or
    ``local_hub.connection_string("profiles")`` (with EntityPath), ``local_hub.events(...)``
    and ``local_hub.faults`` to inject failures. Stopped after the test.
    """
    with LocalHub(hubs={"profiles": 4}) as hub:
        yield hub


@pytest.fixture
def local_hub_connection_string(local_hub: LocalHub) -> str:
    """Connection string (with ``EntityPath=profiles``) of the ``local_hub`` fixture."""
    return local_hub.connection_string("profiles")


#: Modules whose tests run the target, the hub or a server as a subprocess (a few seconds
#: each: interpreter start-up, the sender process, retries against injected faults).
SLOW_MODULES = (
    "tests/changes/test_faults.py",
    "tests/changes/test_runs.py",
    "tests/external/",
    "tests/integration/test_auth_ways.py",
    "tests/integration/test_demo.py",
    "tests/integration/test_early_connection.py",
    "tests/integration/test_http_proxy.py",
    "tests/integration/test_standard_target_tests.py",
    "tests/integration/test_target_cli.py",
    "tests/integration/test_websockets.py",
    "tests/localhub/test_durability.py",
    "tests/operating/test_check.py",
    "tests/operating/test_run_reporting.py",
    "tests/operating/test_tracing.py",
    "tests/packaging/test_artifacts.py",
    "tests/packaging/test_meltano_user_path.py",
    "tests/pipeline/",
    "tests/reliability/test_auth_and_secrets.py",
    "tests/reliability/test_hub_outage.py",
    "tests/reliability/test_invalid_input.py",
    "tests/reliability/test_link_faults.py",
    "tests/reliability/test_order_and_latency.py",
    "tests/reliability/test_termination.py",
    "tests/reliability/test_throttling.py",
    "tests/reliability/test_websocket_faults.py",
    "tests/test_benchmarks_smoke.py",
)
#: Fixtures that start PostgreSQL, install Meltano or build the distributions.
SLOW_FIXTURES = {"pg_server", "pg_bin", "meltano_project", "distributions"}
#: Collected first (longest first, from `--durations`): started first by the workers. The
#: first HEAVY of them (a minute or more each) are interleaved with quick tests, so that no
#: worker gets two of them in its first batch (scripts/test.sh runs with --maxschedchunk 1:
#: two tests per worker to start with, then one at a time as each ends).
HEAVY = 6
LONGEST_FIRST = (
    "tests/integration/test_demo.py",
    "tests/pipeline/test_postgres_pipeline.py",
    "tests/test_benchmarks_smoke.py",
    "tests/packaging/test_artifacts.py",
    "tests/packaging/test_meltano_user_path.py",
    "tests/pipeline/",
    "tests/changes/test_faults.py",
    "tests/changes/test_runs.py",
    "tests/reliability/",
)


def _relative(item: pytest.Item) -> str:
    return Path(str(item.path)).relative_to(ROOT).as_posix()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = _relative(item)
        fixtures = set(getattr(item, "fixturenames", ()))
        if path.startswith(SLOW_MODULES) or fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)

    def rank(item: pytest.Item) -> int:
        path = _relative(item)
        return next(
            (i for i, prefix in enumerate(LONGEST_FIRST) if path.startswith(prefix)),
            len(LONGEST_FIRST),
        )

    items.sort(key=rank)  # stable: the order within a rank is pytest's
    heavy = [item for item in items if rank(item) < HEAVY]
    rest = [item for item in items if rank(item) >= HEAVY]
    fillers = [rest.pop() for _ in heavy if rest]  # from the end: unit tests, quick
    paired = itertools.zip_longest(heavy, fillers)
    items[:] = [item for pair in paired for item in pair if item is not None] + rest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if (
        in_ci()
        and report.skipped
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("external") is None
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI, where only the real-namespace tests may skip: {reason} "
            f"({INSTALL_SCRIPT} installs the test services)"
        )
    return report


_SKIPPED_KEY = pytest.StashKey[tuple[int, int]]()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if r.when != "teardown"]
    external = sum(1 for r in skipped if "external" in getattr(r, "keywords", {}))
    config.stash[_SKIPPED_KEY] = (len(skipped), external)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # After pytest's own summary line, so that the log ends with it.
    counts = config.stash.get(_SKIPPED_KEY, None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if counts is None or reporter is None or hasattr(config, "workerinput"):
        return
    reporter.write_line(f"skipped: {counts[0]} (real-namespace tests: {counts[1]})")
