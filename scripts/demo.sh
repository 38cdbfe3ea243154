#!/usr/bin/env bash
# The demo: sample profiles -> Meltano (tap-jsonl -> target-azure-eventhubs) -> a local
# Event Hubs-compatible server -> read back with the official consumer client -> report.
#
#   bash scripts/demo.sh
#
# Needs only Python 3.11+ with pip/venv. Creates .venv (this project and the local hub, `pip install -e ./localhub -e .`)
# and .venv-meltano (Meltano, kept apart because its dependencies may clash with
# singer-sdk's), starts the local hub on a free port, runs the pipeline, prints a report and
# stops the hub. Exits non-zero unless every sample profile arrived, and nothing else.
# Logs go to output/demo/. Set PYTHON to choose the interpreter (default: python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
LOGS="$ROOT/output/demo"
EVENTHUB=profiles
STATE_SUFFIX=demo
STARTED=$SECONDS
mkdir -p "$LOGS"

step() { printf '\n==> %s (%ds)\n' "$*" "$((SECONDS - STARTED))"; }
fail() { printf '\nDEMO FAILED: %s\n' "$*" >&2; exit 1; }

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "$PYTHON is $("$PYTHON" --version 2>&1); Python 3.11 or newer is needed (set PYTHON=...)"

step "Project virtualenv .venv (pip install -e ./localhub -e .)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ./localhub -e . \
  > "$LOGS/pip-project.log" 2>&1 || { cat "$LOGS/pip-project.log" >&2; fail "pip install -e . failed"; }

step "Meltano in its own virtualenv .venv-meltano"
if [ ! -x .venv-meltano/bin/meltano ]; then
  [ -x .venv-meltano/bin/python ] || "$PYTHON" -m venv .venv-meltano
  echo '*' > .venv-meltano/.gitignore  # keep git status clean, like virtualenv does
  .venv-meltano/bin/python -m pip install --quiet --disable-pip-version-check "meltano>=4.0,<5" \
    > "$LOGS/pip-meltano.log" 2>&1 || { cat "$LOGS/pip-meltano.log" >&2; fail "pip install meltano failed"; }
fi
MELTANO="$ROOT/.venv-meltano/bin/meltano"
"$MELTANO" --version 2>/dev/null | tail -n 1

step "Starting the local hub (event hub '$EVENTHUB', 4 partitions, free port)"
HUB_OUT="$LOGS/localhub.out"
HUB_PID=""
stop_hub() {
  if [ -n "$HUB_PID" ] && kill -0 "$HUB_PID" 2>/dev/null; then
    kill "$HUB_PID" 2>/dev/null || true
    wait "$HUB_PID" 2>/dev/null || true
  fi
}
trap stop_hub EXIT
.venv/bin/python -m eventhubs_localhub --port 0 --hub "$EVENTHUB:4" \
  > "$HUB_OUT" 2> "$LOGS/localhub.log" &
HUB_PID=$!
for _ in $(seq 1 150); do
  grep -q '^READY' "$HUB_OUT" 2>/dev/null && break
  kill -0 "$HUB_PID" 2>/dev/null || { cat "$LOGS/localhub.log" >&2; fail "the local hub exited"; }
  sleep 0.2
done
grep -q '^READY' "$HUB_OUT" || { cat "$LOGS/localhub.log" >&2; fail "the local hub did not print READY in 30 s"; }
CONNECTION_STRING="$(head -n 1 "$HUB_OUT")"
case "$CONNECTION_STRING" in Endpoint=*) ;; *) fail "unexpected first line from the local hub: $CONNECTION_STRING" ;; esac
echo "local hub pid $HUB_PID: ${CONNECTION_STRING%%;*}"
# Meltano maps TARGET_AZURE_EVENTHUBS_<SETTING> variables to the target's settings.
export TARGET_AZURE_EVENTHUBS_CONNECTION_STRING="$CONNECTION_STRING"

step "meltano install"
"$MELTANO" install > "$LOGS/meltano-install.log" 2>&1 \
  || { tail -n 40 "$LOGS/meltano-install.log" >&2; fail "meltano install failed"; }

step "meltano run tap-jsonl target-azure-eventhubs"
# --full-refresh: each demo starts an empty hub, so every run sends all sample profiles
# (tap-jsonl skips files older than its bookmark); the new STATE is still saved.
"$MELTANO" run --full-refresh --state-id-suffix "$STATE_SUFFIX" tap-jsonl target-azure-eventhubs \
  > "$LOGS/meltano-run.log" 2>&1 \
  || { tail -n 40 "$LOGS/meltano-run.log" >&2; fail "meltano run failed (full log: $LOGS/meltano-run.log)"; }
grep -o 'Summary: .*' "$LOGS/meltano-run.log" | tail -n 1 | sed 's/^/target: /' || true

STATE_ID="$("$MELTANO" state list 2>/dev/null | grep -E "tap-jsonl-to-target-azure-eventhubs:$STATE_SUFFIX\$" | head -n 1 || true)"
[ -n "$STATE_ID" ] || fail "meltano state list shows no state for the run"
"$MELTANO" state get "$STATE_ID" > "$LOGS/state.json" 2> "$LOGS/meltano-state.log" \
  || { cat "$LOGS/meltano-state.log" >&2; fail "meltano state get $STATE_ID failed"; }
echo "state id: $STATE_ID"

step "Reading the events back (EventHubConsumerClient, all partitions, from the start)"
set +e
.venv/bin/python scripts/demo_report.py \
  --connection-string "$CONNECTION_STRING" \
  --eventhub "$EVENTHUB" \
  --sample-dir sample_data \
  --state-file "$LOGS/state.json" \
  --state-id "$STATE_ID"
STATUS=$?
set -e
# stderr, so that the report's DEMO RESULT line stays the last line on stdout
printf 'Demo finished in %ds; logs in %s\n' "$((SECONDS - STARTED))" "${LOGS#"$ROOT"/}" >&2
exit "$STATUS"
