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
# Tests run side by side under pytest-xdist, LIVETEST_WORKERS at a time (default 32; 0 runs
# them one after another, about an hour): most of them wait by design (idle timeouts,
# receivers that give up after 10-20 s, one 250 s sleep), so the run takes as long as its
# longest test, about five minutes, and little CPU. --sleep False skips the longest sleeps.
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
# From a copy: building in place would race with other installs of the same checkout.
mkdir "$work/localhub"
tar -C "$here" --exclude=build --exclude='*.egg-info' -cf - . | tar -C "$work/localhub" -xf -
"$work/venv/bin/pip" install -q "azure-eventhub==$version" pytest pytest-asyncio pytest-timeout \
  pytest-xdist aiohttp azure-identity websocket-client "$work/localhub[websockets,entra]"

cp "$here/sdk_livetests/conftest.py" "$sdist/tests/conftest.py"
cd "$sdist"
workers=${LIVETEST_WORKERS:-32}
rc=0
"$work/venv/bin/python" -m pytest -p no:cacheprovider -rfEs --timeout 900 \
  -o asyncio_default_fixture_loop_scope=function -n "$workers" --maxschedchunk 1 --durations=10 tests/livetest "$@" || rc=$?
exit "$rc"
