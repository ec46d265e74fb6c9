#!/usr/bin/env bash
# `mcpgate connect` (issue 14) driven by real stdio MCP clients: the official Python SDK's stdio
# client (tests-e2e/connect_client.py) and the Inspector CLI start `mcpgate connect URL ...` as
# their "server", and the bridge reaches mcpgate in front of the demo upstream with
#   - an API key and X-Tenant-ID (legacy and auto modes; elicitation and sampling round trips),
#   - a profile file (connect.toml; its key by env reference) through the Inspector CLI,
#   - HMAC signatures ([auth.hmac]) and minted HS256 JWTs (JWT_SECRET),
#   - OAuth client credentials (access tokens of 30 s, the gateway's shortest, refreshed
#     mid-session: a 45 s session calling once a second),
#   - a primary key revoked mid-session (the bridge switches to the fallback key and the session
#     goes on) and both revoked (a JSON-RPC error, and the reason on stderr),
#   - the gateway restarted on the same port mid-session (the bridge re-initializes).
# Afterwards no key, secret or token may appear in the bridge's stdout/stderr or the gateway's log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_python_sdk
e2e_init connect

SECRETS="$E2E_TMP/secrets.txt"
: >"$SECRETS"
ERRLOG="$E2E_SUITE_LOG_DIR/bridge.stderr"
: >"$ERRLOG"
RUNS=0
# client LABEL [connect_client.py options...] -- mcpgate connect ...
client() {
  local label="$1"
  shift
  RUNS=$((RUNS + 1))
  run_counted "connect/run-$RUNS-$label" 180 "$VENV_PY" "$E2E_DIR/connect_client.py" --label "$label" \
    --stderr-log "$ERRLOG" "$@"
}

# ---- 1. API key + tenant -------------------------------------------------------------------
KEY="$(new_test_key)"
echo "$KEY" >>"$SECRETS"
GATEWAY_KEYS_JSON="$(python3 -c 'import json, sys; print(json.dumps({sys.argv[1]: {"userId": "e2e", "tenantId": "acme", "role": "admin", "permissions": ["*"]}}))' "$KEY")"
start_gateway gw-key --upstream-cmd "$(fixture_stdio_cmd demo)" ||
  { fail "connect/gateway-start" "mcpgate serve did not start"; suite_summary; exit 1; }
URL="$GATEWAY_URL"
KEY_LOG="$E2E_SUITE_LOG_DIR/gw-key.log"
log "mcpgate connect against $URL"
client key-tenant-legacy --mode legacy --expect-user e2e --expect-tenant acme --elicit --sample \
  --env "E2E_KEY=$KEY" -- "$MCPGATE_BIN" connect "$URL" --key env:E2E_KEY --tenant acme
client key-tenant-auto --mode auto --expect-user e2e --expect-tenant acme --elicit --sample \
  --env "E2E_KEY=$KEY" -- "$MCPGATE_BIN" connect "$URL" --header "X-API-Key: env:E2E_KEY" --header "X-Tenant-ID: acme"
# A tenant the key does not belong to: refused by the gateway (403), reported, not a hang.
client wrong-tenant --expect-refused --timeout 30 --env "E2E_KEY=$KEY" -- \
  "$MCPGATE_BIN" connect "$URL" --key env:E2E_KEY --tenant other
client no-key --expect-refused --timeout 30 -- "$MCPGATE_BIN" connect "$URL"

# A secret written inline is refused before anything is sent, and not echoed.
if out="$("$MCPGATE_BIN" connect "$URL" --key "$KEY" </dev/null 2>&1)"; then
  fail "connect/inline-secret-refused" "exit 0 with an inline key"
elif grep -qF "${KEY##*_}" <<<"$out"; then
  fail "connect/inline-secret-refused" "the error repeats the key"
elif grep -q "env:" <<<"$out"; then
  pass "connect/inline-secret-refused"
else
  fail "connect/inline-secret-refused" "unclear error: $out"
fi

# ---- 2. a profile, through the Inspector CLI ------------------------------------------------
if ensure_npm_tools >/dev/null 2>&1; then
  CFG="$E2E_TMP/config"
  mkdir -p "$CFG" "$E2E_TMP/home"
  printf '[profiles.staging]\nurl = "%s"\nkey = "env:E2E_KEY"\ntenant = "acme"\n' "$URL" >"$CFG/connect.toml"
  chmod 600 "$CFG/connect.toml"
  out="$E2E_SUITE_LOG_DIR/inspector.stdout"
  if HOME="$E2E_TMP/home" E2E_KEY="$KEY" MCPGATE_CONFIG_DIR="$CFG" limited 90 "$NODE22" "$INSPECTOR_JS" --cli \
    -e "E2E_KEY=$KEY" -e "MCPGATE_CONFIG_DIR=$CFG" --method tools/call --tool-name whoami \
    -- "$MCPGATE_BIN" connect --profile staging </dev/null >"$out" 2>>"$ERRLOG"; then
    if python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); s=o.get("structuredContent") or json.loads(o["content"][0]["text"]); sys.exit(0 if s.get("user_id")=="e2e" and s.get("tenant")=="acme" else 1)' "$out"; then
      pass "connect/inspector-profile"
    else
      fail "connect/inspector-profile" "unexpected answer: $(head -c 300 "$out")"
    fi
  else
    fail "connect/inspector-profile" "the Inspector CLI failed: $(head -c 300 "$out")"
  fi
else
  fail "connect/inspector-profile" "could not install the Inspector CLI"
fi

# ---- 3. the gateway restarted on the same port mid-session ---------------------------------
PORT="${URL#http://127.0.0.1:}"
PORT="${PORT%/mcp}"
(
  sleep 4
  kill "$GATEWAY_PID" 2>/dev/null || true
  wait "$GATEWAY_PID" 2>/dev/null || true
  GATEWAY_LISTEN="127.0.0.1:$PORT" start_gateway gw-key-restarted --upstream-cmd "$(fixture_stdio_cmd demo)" >/dev/null 2>&1 || true
) &
RESTARTER=$!
client restart --mode legacy --calls-for 12 --env "E2E_KEY=$KEY" -- "$MCPGATE_BIN" connect "$URL" --key env:E2E_KEY
wait "$RESTARTER" || true
if grep -q "initialized again" "$ERRLOG"; then pass "connect/restart-reinitialized"; else
  fail "connect/restart-reinitialized" "the bridge never said it initialized again (see $ERRLOG)"; fi

# ---- 4. HMAC and a minted HS256 JWT ---------------------------------------------------------
HMAC_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(40))')"
JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
printf '%s\n%s\n' "$HMAC_SECRET" "$JWT_SECRET" >>"$SECRETS"
export HMAC_SECRET JWT_SECRET
printf '[auth.hmac]\n[[auth.hmac.clients]]\nid = "svc-signer"\nsecret_env = "HMAC_SECRET"\nuser_id = "signer"\npermissions = ["*"]\n\n[auth.jwt]\nsecret_env = "JWT_SECRET"\naudience = ["mcpgate-e2e"]\n' >"$E2E_TMP/signed.toml"
GATEWAY_KEYS_JSON="" start_gateway gw-signed --config "$E2E_TMP/signed.toml" --upstream-cmd "$(fixture_stdio_cmd demo)" ||
  { fail "connect/signed-gateway-start" "mcpgate serve (HMAC, JWT) did not start"; suite_summary; exit 1; }
SIGNED_LOG="$E2E_SUITE_LOG_DIR/gw-signed.log"
client hmac --mode legacy --expect-user signer --elicit -- \
  "$MCPGATE_BIN" connect "$GATEWAY_URL" --hmac-secret env:HMAC_SECRET --hmac-key-id svc-signer
client jwt --mode auto --expect-user jwt-ana --sample -- \
  "$MCPGATE_BIN" connect "$GATEWAY_URL" --jwt-secret env:JWT_SECRET --jwt-claim sub=jwt-ana \
  --jwt-claim "scope=read write" --jwt-audience mcpgate-e2e --jwt-ttl 10m
unset HMAC_SECRET JWT_SECRET

# ---- 5. OAuth client credentials, tokens refreshed mid-session -------------------------------
if start_oauth_gateway gw-oauth cc-user 'access_token_ttl_s = 30'; then
  OAUTH_LOG="$GATEWAY_LOG"
  DB="$(ls -t "$E2E_TMP"/gw-oauth-*.db | head -1)"
  created="$("$MCPGATE_BIN" clients add --name e2e-service --redirect-uri http://127.0.0.1/unused \
    --grant-type client_credentials --scope "read write" --store "$DB" --json)"
  CC_ID="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$created")"
  CC_SECRET="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$created")"
  echo "$CC_SECRET" >>"$SECRETS"
  before="$(grep -c "fetched an access token" "$ERRLOG" || true)"
  client client-credentials --mode legacy --calls-for 45 --env "CC_SECRET=$CC_SECRET" -- \
    "$MCPGATE_BIN" connect "$GATEWAY_URL" --client-credentials --token-url "$GATEWAY_BASE/token" \
    --client-id "$CC_ID" --client-secret env:CC_SECRET --scope "read write"
  fetched=$(($(grep -c "fetched an access token" "$ERRLOG" || true) - before))
  if [[ "$fetched" -ge 2 ]]; then pass "connect/client-credentials-refreshed"; else
    fail "connect/client-credentials-refreshed" "$fetched token fetch(es) over a 45 s session of 30 s tokens"; fi
else
  fail "connect/oauth-gateway-start" "mcpgate serve (OAuth) did not start"
  OAUTH_LOG=/dev/null
fi

# ---- 6. key rotation: primary revoked mid-session, then both --------------------------------
GATEWAY_KEYS_JSON="" start_gateway gw-rotate --upstream-cmd "$(fixture_stdio_cmd demo)" ||
  { fail "connect/rotate-gateway-start" "mcpgate serve did not start"; suite_summary; exit 1; }
ROT_DB="$E2E_TMP/gw-rotate.db"
ROT_LOG="$E2E_SUITE_LOG_DIR/gw-rotate.log"
mint_key() { "$MCPGATE_BIN" keys create --store "$ROT_DB" --name "$1" --user rot --role admin --permissions '*' --json; }
P_JSON="$(mint_key primary)"
S_JSON="$(mint_key secondary)"
PRIMARY="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key"])' "$P_JSON")"
SECONDARY="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key"])' "$S_JSON")"
P_ID="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key_id"])' "$P_JSON")"
S_ID="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key_id"])' "$S_JSON")"
printf '%s\n%s\n' "$PRIMARY" "$SECONDARY" >>"$SECRETS"
(sleep 4 && "$MCPGATE_BIN" keys revoke "$P_ID" --store "$ROT_DB" >/dev/null 2>&1) &
REVOKER=$!
client rotation --mode legacy --calls-for 10 --expect-user rot --env "K1=$PRIMARY" --env "K2=$SECONDARY" -- \
  "$MCPGATE_BIN" connect "$GATEWAY_URL" --key env:K1 --fallback-key env:K2
wait "$REVOKER" || true
if grep -q "using the fallback key" "$ERRLOG"; then pass "connect/rotation-switched"; else
  fail "connect/rotation-switched" "no notice of the switch to the fallback key on stderr"; fi
"$MCPGATE_BIN" keys revoke "$S_ID" --store "$ROT_DB" >/dev/null 2>&1
sleep 1.5
client both-revoked --expect-refused --timeout 30 --env "K1=$PRIMARY" --env "K2=$SECONDARY" -- \
  "$MCPGATE_BIN" connect "$GATEWAY_URL" --key env:K1 --fallback-key env:K2
if grep -q "both keys were refused" "$ERRLOG"; then pass "connect/both-revoked-said"; else
  fail "connect/both-revoked-said" "stderr does not say both keys were refused"; fi

# ---- 7. nothing secret in what the bridge and the gateways wrote -----------------------------
SECRETS_MIN=5 check_no_secret_in_log "connect/no-secret-in-logs" "$SECRETS" "$ERRLOG" \
  "$E2E_SUITE_LOG_DIR"/*.stdout "$KEY_LOG" "$SIGNED_LOG" "$OAUTH_LOG" "$ROT_LOG"

suite_summary
