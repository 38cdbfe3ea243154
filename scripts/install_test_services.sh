#!/usr/bin/env bash
# Installs the servers some tests start themselves, from Debian's packages, unless present:
#   postgresql  the pipeline tests and the PostgreSQL change store (tests/postgres.py)
#   tinyproxy   the HTTP CONNECT proxy of the proxy tests (tests/proxy.py)
#
#   bash scripts/install_test_services.sh
#
# Only installs the packages, in one apt-get run: it starts and enables no service (the tests
# run their own servers, with their own configuration). Needs root (or sudo) and apt-get.
# Running it again changes nothing.
set -euo pipefail

have_postgresql() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/psql" ] && return 0
  done
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 \
    && command -v psql >/dev/null 2>&1
}

have_tinyproxy() {
  command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || [ -x /usr/sbin/tinyproxy ]
}

missing=()
have_postgresql || missing+=(postgresql)
have_tinyproxy || missing+=(tinyproxy)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "Test services present: PostgreSQL ($(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tr '\n' ' ')), tinyproxy"
  exit 0
fi

fail() { echo "install_test_services.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 || fail "${missing[*]} missing and apt-get not available; install by hand"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "needs root or sudo to install ${missing[*]}"
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The packages' post-install scripts start services where they can (a PostgreSQL cluster, a
# proxy on port 8888); policy-rc.d 101 keeps them from doing so.
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod +x "$POLICY"
  ADDED_POLICY=1
fi
status=0
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
[ -n "$ADDED_POLICY" ] && $SUDO rm -f "$POLICY"
[ "$status" -eq 0 ] || fail "apt-get install ${missing[*]} failed ($status)"

have_postgresql || fail "postgresql installed but initdb/pg_ctl not found"
have_tinyproxy || fail "tinyproxy installed but not found"
echo "Installed: ${missing[*]}"
