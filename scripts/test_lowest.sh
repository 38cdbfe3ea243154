#!/usr/bin/env bash
# The fast tier on the lowest releases pyproject.toml allows (ci/lowest-versions.txt), in
# .venv-lowest, so that each lower bound is tested. .ci/run calls it after the full suite,
# which runs on the newest releases.
#
#   bash scripts/test_lowest.sh          # extra arguments go to pytest
#
# Left out here, and run by the full suite on the newest releases: the tests that compare
# the README's settings table and the plugin definition with --about, whose standard
# settings are those of the newest singer-sdk.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV=.venv-lowest

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --constraint ci/lowest-versions.txt -e ./localhub -e ".[test]"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
pins = [l.split("==") for l in open("ci/lowest-versions.txt") if "==" in l and not l.startswith("#")]
wrong = [(n, v.strip(), m.version(n)) for n, v in pins if m.version(n) != v.strip()]
assert not wrong, f"not the lowest versions: {wrong}"
print("lowest versions:", ", ".join(f"{n} {v.strip()}" for n, v in pins))
PY
exec "$VENV/bin/python" -m pytest -q -rfE -m "not slow" -n "${TEST_WORKERS:-auto}" \
  --deselect tests/test_readme.py::test_readme_settings_table_matches_about_output \
  --deselect tests/packaging/test_plugin_definition.py::test_definition_is_what_the_generator_makes_from_about \
  "$@"
