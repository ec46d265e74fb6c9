#!/usr/bin/env bash
# The official Python SDK client through mcpgate, with API-key authentication on:
#   MCP_API_KEYS='{<fresh key>: admin "e2e"}' mcpgate serve --upstream-cmd \
#     "mcpgate-example-server --stdio --profile demo"
# tests-e2e/python_client.py runs in the SDK's default mode (server/discover, then the
# initialize fallback) with the key in X-API-Key, again with Authorization: Bearer, once in the
# SDK's legacy mode (initialize only), and once with no key (must be refused, not hang).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_python_sdk
e2e_init python

KEY="$(new_test_key)"
GATEWAY_KEYS_JSON="$(keys_json_for "$KEY")"
start_gateway gateway-upstream-cmd-demo --upstream-cmd "$(fixture_stdio_cmd demo)" ||
  { fail "python/gateway-start" "mcpgate serve did not start (see above)"; suite_summary; exit 1; }
URL="$GATEWAY_URL"
log "python SDK client against $URL"

# python_client.py records its own checks (stdout, and $E2E_RESULTS); count them here too.
run_client() {
  local out="$E2E_TMP/py.out" rc=0 line
  RUNS=$((RUNS + 1))
  limited 120 "$VENV_PY" "$E2E_DIR/python_client.py" --url "$URL" "$@" \
    >"$out" 2>"$E2E_SUITE_LOG_DIR/client.$RUNS.stderr" || rc=$?
  cat "$out"
  while IFS= read -r line; do
    case "$line" in
      PASS\ *) E2E_PASSED=$((E2E_PASSED + 1)) ;;
      FAIL\ *) E2E_FAILED=$((E2E_FAILED + 1)) ;;
    esac
  done <"$out"
  if [[ "$rc" -ne 0 ]] && ! grep -q '^FAIL ' "$out"; then
    fail "python/run-$RUNS" "client exited $rc without a result (stderr: $E2E_SUITE_LOG_DIR/client.$RUNS.stderr)"
  fi
}
RUNS=0

run_client --label default --header "X-API-Key: $KEY" --expect-user e2e
run_client --label bearer --header "Authorization: Bearer $KEY" --expect-user e2e
run_client --label legacy --mode legacy --header "X-API-Key: $KEY" --expect-user e2e
run_client --label no-key --expect-auth-failure --timeout 10
run_client --label bad-key --header "X-API-Key: ${KEY%_*}_not-the-right-secret-0123456789abcdef" --expect-auth-failure --timeout 10

# A JWT bearer token (HS256, JWT_SECRET) instead of a key.
start_jwt_gateway gateway-jwt --upstream-cmd "$(fixture_stdio_cmd demo)" ||
  { fail "python/jwt-gateway-start" "mcpgate serve (JWT) did not start"; suite_summary; exit 1; }
URL="$GATEWAY_URL"
run_client --label jwt --header "Authorization: Bearer $JWT_TOKEN" --expect-user jwt-user
run_client --label bad-jwt --header "Authorization: Bearer $BAD_JWT_TOKEN" --expect-auth-failure --timeout 10

suite_summary
