#!/usr/bin/env bash
# The test suite in two tiers (.ci/run and .github/workflows/test.yml run the full one).
#
#   bash scripts/test.sh            # everything, as CI runs it (under 12 minutes on 2 cores)
#   bash scripts/test.sh --fast     # unit, property and in-process local-hub tests, plus
#                                   # ruff check, ruff format --check and mypy (under 2 min)
#   bash scripts/test.sh --help     # this text
#   bash scripts/test.sh --install-only   # only make .venv (.ci/run: beside other set-up)
#   bash scripts/test.sh [--fast] ARGS...   # extra arguments go to pytest, e.g.
#                                   # tests/unit, -k proxy, -n 0 (serial), --durations=30
#
# Both tiers run in parallel with pytest-xdist (TEST_WORKERS workers, default 4 for --fast
# and 6 for the full run: the tests mostly wait on subprocesses, not on the CPU). The full
# run also needs PostgreSQL and tinyproxy (scripts/install_test_services.sh) and reaches
# PyPI once to install Meltano into a cached venv. With CI set (.ci/run sets it), a test
# that would skip for a missing service fails; only the tests against a real Azure namespace
# (TARGET_AZURE_EVENTHUBS_TEST_CONNECTION_STRING) may skip. The log ends with the line
# `skipped: N (real-namespace tests: M)`.
#
# Creates .venv if missing and installs the project with its test extras. Exits non-zero
# when a test fails. Set PYTHON to choose the interpreter for a new .venv (default: python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"

tier=full
case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
  --fast) tier=fast; shift ;;
  --install-only) tier=none ;;
esac

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "$PYTHON is $("$PYTHON" --version 2>&1); Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 1; }
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ./localhub -e ".[test]"

if [ "$tier" = none ]; then
  exit 0
fi

if [ "$tier" = fast ]; then
  exec .venv/bin/python -m pytest -v -rA -n "${TEST_WORKERS:-4}" -m "not slow" "$@"
fi
# --maxschedchunk 1: tests handed out one at a time, the longest first (tests/conftest.py).
exec .venv/bin/python -m pytest -v -rA -n "${TEST_WORKERS:-6}" --maxschedchunk 1 --durations=30 "$@"
