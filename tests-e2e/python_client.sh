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

# python_client.py records its own checks (stdout, and $E2E_RESULTS); run_counted counts them.
run_client() {
  RUNS=$((RUNS + 1))
  run_counted "python/run-$RUNS" 120 "$VENV_PY" "$E2E_DIR/python_client.py" --url "$URL" "$@"
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

# examples/embedded-server: an rmcp server with mcpgate-layer in the same process. An admin key,
# a read-only key (sees and calls `count`, is refused `admin_reset`), an HS256 JWT, no key.
ADMIN_KEY="$(new_test_key)"
READER_KEY="$(new_test_key)"
EMB_KEYS="$(python3 -c 'import json, sys; print(json.dumps({
  sys.argv[1]: {"userId": "ana", "role": "admin", "permissions": ["*"]},
  sys.argv[2]: {"userId": "rob", "role": "user", "permissions": ["read"]}}))' "$ADMIN_KEY" "$READER_KEY")"
[[ -x "$MCPGATE_EMBEDDED_BIN" ]] || die "embedded example not found: $MCPGATE_EMBEDDED_BIN (build first)"
EMB_LOG="$E2E_SUITE_LOG_DIR/embedded.log"
spawn "$EMB_LOG" env MCP_API_KEYS="$EMB_KEYS" JWT_SECRET="$JWT_SECRET" NO_COLOR=1 "$MCPGATE_EMBEDDED_BIN" 127.0.0.1:0
URL=""
for _ in $(seq 1 300); do
  URL="$(grep -o -m1 'listening on http://127\.0\.0\.1:[0-9]*/mcp' "$EMB_LOG" 2>/dev/null | sed 's/^listening on //' || true)"
  [[ -n "$URL" ]] && break
  sleep 0.1
done
if [[ -z "$URL" ]]; then
  tail -n 20 "$EMB_LOG" >&2 || true
  fail "embedded/start" "the embedded example printed no listening line (log: $EMB_LOG)"
else
  EMB_JWT="$(JWT_SECRET="$JWT_SECRET" "$MCPGATE_BIN" token mint --sub jwt-ana --aud "$URL" --roles admin --claim 'permissions=["*"]' --ttl 1h)"
  run_embedded() {
    RUNS=$((RUNS + 1))
    run_counted "embedded/run-$RUNS" 120 "$VENV_PY" "$E2E_DIR/embedded_client.py" --url "$URL" "$@"
  }
  run_embedded --label admin-key --header "X-API-Key: $ADMIN_KEY" --expect-user ana --admin
  run_embedded --label read-only-key --header "Authorization: Bearer $READER_KEY" --expect-user rob
  run_embedded --label jwt --header "Authorization: Bearer $EMB_JWT" --expect-user jwt-ana --admin
  run_embedded --label no-key --expect-auth-failure --timeout 10
  # No secret the clients sent may appear in the server's log.
  if grep -qF -e "${ADMIN_KEY##*_}" -e "${READER_KEY##*_}" -e "$EMB_JWT" -e "$JWT_SECRET" "$EMB_LOG"; then
    fail "embedded/no-secret-in-log" "a key, token or the JWT secret appears in $EMB_LOG"
  else
    pass "embedded/no-secret-in-log"
  fi
fi

suite_summary
