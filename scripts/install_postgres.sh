#!/usr/bin/env bash
# Installs a PostgreSQL server (Debian's `postgresql` package) for the pipeline test
# (tests/pipeline/test_postgres_pipeline.py), unless initdb and pg_ctl are already there.
#
#   bash scripts/install_postgres.sh
#
# The test looks for the server binaries under /usr/lib/postgresql/*/bin (Debian's layout,
# not on PATH) and on PATH, and starts its own throwaway server; this script only installs
# the package. It does not start or enable any service. Needs root (or sudo) and apt-get.
set -euo pipefail

have_server() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/psql" ] && return 0
  done
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 \
    && command -v psql >/dev/null 2>&1
}

if have_server; then
  echo "PostgreSQL server binaries present: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tr '\n' ' ')"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_postgres.sh: initdb/pg_ctl missing and apt-get not available; install PostgreSQL by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install_postgres.sh: needs root or sudo" >&2; exit 1; }
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The package's post-install script may try to start a cluster through the service manager;
# policy-rc.d 101 keeps it from doing so (there is no service manager in a container).
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod +x "$POLICY"
  ADDED_POLICY=1
fi
status=0
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null || status=$?
[ -n "$ADDED_POLICY" ] && $SUDO rm -f "$POLICY"
[ "$status" -eq 0 ] || { echo "install_postgres.sh: apt-get install postgresql failed ($status)" >&2; exit "$status"; }

have_server || { echo "install_postgres.sh: postgresql installed but initdb/pg_ctl not found" >&2; exit 1; }
echo "PostgreSQL installed: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
