#!/usr/bin/env bash
# Installs tinyproxy (Debian's `tinyproxy` package), the HTTP CONNECT proxy the proxy tests
# start (tests/proxy.py, tests/integration/test_http_proxy.py), unless it is already there.
#
#   bash scripts/install_tinyproxy.sh
#
# The tests start their own tinyproxy in the foreground with their own configuration; this
# script only installs the package. It does not start or enable the system service. Needs
# root (or sudo) and apt-get. Running it again changes nothing.
set -euo pipefail

have_tinyproxy() {
  command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || [ -x /usr/sbin/tinyproxy ]
}

if have_tinyproxy; then
  echo "tinyproxy present: $(command -v tinyproxy || ls /usr/*bin/tinyproxy)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_tinyproxy.sh: tinyproxy missing and apt-get not available; install it by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install_tinyproxy.sh: needs root or sudo" >&2; exit 1; }
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The package's post-install script starts a proxy service on port 8888 where it can;
# policy-rc.d 101 keeps it from doing so (the tests run their own).
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod +x "$POLICY"
  ADDED_POLICY=1
fi
status=0
$SUDO apt-get install -y -qq --no-install-recommends tinyproxy >/dev/null || status=$?
[ -n "$ADDED_POLICY" ] && $SUDO rm -f "$POLICY"
[ "$status" -eq 0 ] || { echo "install_tinyproxy.sh: apt-get install tinyproxy failed ($status)" >&2; exit "$status"; }

have_tinyproxy || { echo "install_tinyproxy.sh: tinyproxy installed but not found" >&2; exit 1; }
echo "tinyproxy installed: $(tinyproxy -v 2>&1 | head -1)"
