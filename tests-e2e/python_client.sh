#!/usr/bin/env bash
# The official Python SDK client through mcpgate:
#   mcpgate serve --upstream-cmd "mcpgate-example-server --stdio --profile demo"
# runs tests-e2e/python_client.py in the SDK's default mode (server/discover, then initialize
# fallback), again with an extra header (--header 'X-API-Key: ...', the path API keys will
# take), and once in the SDK's legacy mode (initialize only).
#
# Environment: see lib.sh; MCPGATE_TEST_API_KEY: the key sent in the header run (default: a
# dummy key, while the gateway runs without auth).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_python_sdk
e2e_init python

start_gateway gateway-upstream-cmd-demo --upstream-cmd "$(fixture_stdio_cmd demo)"
URL="$GATEWAY_URL"
log "python SDK client against $URL"

KEY="${MCPGATE_TEST_API_KEY:-mcp_e2e_notarealsecret}"

# python_client.py records its own checks (stdout, and $E2E_RESULTS); count them here too.
run_client() {
  local out="$E2E_TMP/py.out" rc=0 line
  RUNS=$((RUNS + 1))
  timeout --kill-after=5 120 "$VENV_PY" "$E2E_DIR/python_client.py" --url "$URL" "$@" \
    2>"$E2E_SUITE_LOG_DIR/client.$RUNS.stderr" | tee "$out" || rc=$?
  while IFS= read -r line; do
    case "$line" in
      PASS\ *) E2E_PASSED=$((E2E_PASSED + 1)) ;;
      FAIL\ *) E2E_FAILED=$((E2E_FAILED + 1)) ;;
    esac
  done <"$out"
  if [[ "$rc" -ne 0 ]] && ! grep -q '^FAIL ' "$out"; then
    fail "python/$*" "client exited $rc without a result (stderr: $E2E_SUITE_LOG_DIR/client.$RUNS.stderr)"
  fi
}
RUNS=0

run_client --label default
run_client --label header --header "X-API-Key: $KEY"
run_client --label legacy --mode legacy

suite_summary
