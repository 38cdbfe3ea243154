#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run and .github/workflows/test.yml call this).
#
#   bash scripts/test.sh                 # every test, each reported by name with its outcome
#   bash scripts/test.sh -m "not slow"   # extra arguments go to pytest
#
# Creates .venv if missing and installs the project with its test extras. Exits non-zero
# when a test fails. Set PYTHON to choose the interpreter for a new .venv (default: python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "$PYTHON is $("$PYTHON" --version 2>&1); Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 1; }
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
exec .venv/bin/python -m pytest -v -rA "$@"
