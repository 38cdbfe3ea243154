#!/usr/bin/env bash
# The fast tier on the lowest releases pyproject.toml allows (ci/lowest-versions.txt), in
# .venv-lowest, so that each lower bound is tested. .ci/run calls it after the full suite,
# which runs on the newest releases.
#
#   bash scripts/test_lowest.sh          # extra arguments go to pytest
#   bash scripts/test_lowest.sh --install-only   # only make .venv-lowest (.ci/run does this
#                                                # beside the full suite)
#
# The tests run here are those whose outcome depends on the dependencies' versions: the
# unit tests (singer-sdk's hooks, the azure-eventhub adapter, encoding byte for byte with
# the SDK, conversion), the delivery core's property test, and the in-process runs of the
# target against the local hub (tests/core, integration, input), and
# every azure-identity credential kind against the hub's Entra mode.
# The rest of the fast tier (code checks, layout, packaging, the README, change rules and
# reporting) runs on the newest releases in the full suite.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV=.venv-lowest

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# The editable installs write egg-info into the checkout: under the lock the suite's builds
# take (tests/services.py, source_tree_lock), as .ci/run makes this venv beside the suite.
lock="${TMPDIR:-/tmp}/target-azure-eventhubs-build-$(printf %s "$ROOT" | sha256sum | cut -c1-16).lock"
flock "$lock" "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --constraint ci/lowest-versions.txt -e ./localhub -e ".[test]"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
pins = [l.split("==") for l in open("ci/lowest-versions.txt") if "==" in l and not l.startswith("#")]
wrong = [(n, v.strip(), m.version(n)) for n, v in pins if m.version(n) != v.strip()]
assert not wrong, f"not the lowest versions: {wrong}"
print("lowest versions:", ", ".join(f"{n} {v.strip()}" for n, v in pins))
PY
if [ "${1:-}" = --install-only ]; then
  exit 0
fi
exec "$VENV/bin/python" -m pytest -q -rfE -m "not slow" -n "${TEST_WORKERS:-auto}" \
  tests/unit tests/core tests/integration tests/input tests/entra/test_credential_kinds.py "$@"
