#!/usr/bin/env bash
# The azure-eventhub SDK's own live tests (sync and async) against a local hub.
#
#   localhub/scripts/run_sdk_livetests.sh [PYTEST ARGS...]
#
# Downloads the SDK's source distribution from PyPI (the version in AZURE_EVENTHUB_VERSION,
# else the one installed beside this repository, else 5.15.1), unpacks it in a temporary
# directory, makes a virtual environment there with that SDK, pytest, pytest-asyncio,
# aiohttp, websocket-client and this local hub, puts sdk_livetests/conftest.py in place of
# the SDK's management-plane conftest, and runs tests/livetest against a hub it starts.
# The hub serves "localhost" on ports 5671 (AMQP/TLS) and 443 (WebSockets), the ports the SDK
# dials: both must be free, and 443 needs root or net.ipv4.ip_unprivileged_port_start<=443.
# It takes about an hour: some tests sleep for minutes by design (--sleep False skips
# those sleeps). LIVETEST_PARALLEL=N runs N test files at a time, each in a private network
# namespace of its own (needs root and unshare): about 25 minutes with N=10.
# KEEP_LIVETEST_DIR=1 keeps the temporary directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo=$(cd "$here/.." && pwd)
python=${PYTHON:-python3}
version=${AZURE_EVENTHUB_VERSION:-}
if [[ -z "$version" && -x "$repo/.venv/bin/python" ]]; then
  version=$("$repo/.venv/bin/python" -c \
    'import importlib.metadata as m; print(m.version("azure-eventhub"))' 2>/dev/null || true)
fi
version=${version:-5.15.1}

work=$(mktemp -d "${TMPDIR:-/tmp}/sdk-livetests.XXXXXX")
if [[ -z "${KEEP_LIVETEST_DIR:-}" ]]; then
  trap 'rm -rf "$work"' EXIT
else
  echo "keeping $work"
fi

echo "azure-eventhub $version: downloading the source distribution" >&2
"$python" -m pip download -q --no-binary :all: --no-deps "azure-eventhub==$version" -d "$work/dist"
tar -xzf "$work"/dist/azure*eventhub-"$version".tar.gz -C "$work"
sdist=$(echo "$work"/azure*eventhub-"$version")

echo "making a virtual environment in $work/venv" >&2
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "azure-eventhub==$version" pytest pytest-asyncio pytest-timeout aiohttp azure-identity \
  websocket-client "$here[websockets,entra]"

cp "$here/sdk_livetests/conftest.py" "$sdist/tests/conftest.py"
cd "$sdist"
pytest=("$work/venv/bin/python" -m pytest -p no:cacheprovider -rfEs --timeout 900
  -o asyncio_default_fixture_loop_scope=function)
if [[ -z "${LIVETEST_PARALLEL:-}" ]]; then
  rc=0
  "${pytest[@]}" tests/livetest "$@" || rc=$?
  exit "$rc"
fi
# Parallel: one test file per private network namespace (root and unshare needed), so that
# each file's hub has ports 5671 and 443 to itself; LIVETEST_PARALLEL files at a time.
mkdir -p "$work/logs"
export work
printf '%s\n' tests/livetest/*/test_*.py | xargs -P "$LIVETEST_PARALLEL" -I{} sh -c \
  'unshare -n sh -c "ip link set lo up && exec \"\$@\"" - "$@" > "$work/logs/$(basename {}).log" 2>&1' \
  - "${pytest[@]}" {} "$@" || true
tail -qn1 "$work"/logs/*.log
grep -hE '^(FAILED|ERROR|SKIPPED)' "$work"/logs/*.log || true
for outcome in passed failed skipped error deselected; do
  echo "$outcome: $(grep -ohE "[0-9]+ $outcome" "$work"/logs/*.log | awk '{s+=$1} END {print s+0}')"
done
! grep -qE '^(FAILED|ERROR)' "$work"/logs/*.log
