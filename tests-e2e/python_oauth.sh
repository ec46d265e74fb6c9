#!/usr/bin/env bash
# The official Python SDK's OAuth client against mcpgate's own authorization server (issue #11):
#   MCP_API_KEYS='{<fresh key>: admin "ana-oauth"}' mcpgate serve --listen 127.0.0.1:PORT \
#     --config <public_url = "http://127.0.0.1:PORT", [oauth] refresh_grace_s = 1> \
#     --upstream-cmd "mcpgate-example-server --stdio --profile demo"
# tests-e2e/python_oauth.py: discovery and the 401 challenge, the SDK's OAuthClientProvider
# (DCR, PKCE, header sign-in with the key as the "browser", code exchange) under its Streamable
# HTTP client, refresh rotation, reuse of a replaced refresh token, and the refusals (another
# audience, a wrong key, an unregistered redirect). Then: no code or token in the gateway's log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_python_sdk
e2e_init oauth

USER_ID="ana-oauth"
GRACE_S=1
KEY="$(new_test_key)"
GATEWAY_KEYS_JSON="$(python3 -c 'import json, sys; print(json.dumps({sys.argv[1]: {"name": "e2e oauth", "userId": sys.argv[2], "role": "admin", "permissions": ["*"]}}))' "$KEY" "$USER_ID")"

# public_url must be the address clients use (it is the issuer and the tokens' audience), so
# the port is chosen first; another process may take it meanwhile, hence a few tries.
CFG="$E2E_TMP/oauth.toml"
started=0
for attempt in 1 2 3; do
  PORT="$(free_port)"
  printf 'public_url = "http://127.0.0.1:%s"\n\n[oauth]\nrefresh_grace_s = %s\n' "$PORT" "$GRACE_S" >"$CFG"
  if GATEWAY_LISTEN="127.0.0.1:$PORT" start_gateway "gateway-oauth-$attempt" --config "$CFG" \
    --upstream-cmd "$(fixture_stdio_cmd demo)"; then
    started=1
    break
  fi
  log "gateway did not start on port $PORT (attempt $attempt)"
done
if [[ "$started" != 1 ]]; then
  fail "oauth/gateway-start" "mcpgate serve with [oauth] did not start (see above)"
  suite_summary
  exit 1
fi
if [[ "$GATEWAY_BASE" != "http://127.0.0.1:$PORT" ]]; then
  fail "oauth/gateway-address" "listening on $GATEWAY_BASE, configured public_url http://127.0.0.1:$PORT"
fi
GATEWAY_LOG="$E2E_SUITE_LOG_DIR/gateway-oauth-$attempt.log"
log "python SDK OAuth client against $GATEWAY_URL"

SECRETS_FILE="$E2E_TMP/seen-secrets.txt"
OAUTH_E2E_KEY="$KEY" run_counted "oauth/client" 90 "$VENV_PY" "$E2E_DIR/python_oauth.py" \
  --url "$GATEWAY_URL" --expect-user "$USER_ID" --grace "$GRACE_S" \
  --redirect-port "$(free_port)" --secrets-out "$SECRETS_FILE"

# No key, code or token the client saw may appear in the gateway's log.
printf '%s\n' "${KEY##*_}" >>"$SECRETS_FILE"
if [[ "$(grep -c . "$SECRETS_FILE" || true)" -lt 4 ]]; then
  fail "oauth/no-secret-in-log" "the client recorded almost no codes or tokens to look for ($SECRETS_FILE)"
elif grep -qF -f <(grep . "$SECRETS_FILE") "$GATEWAY_LOG"; then
  fail "oauth/no-secret-in-log" "a key, code or token appears in $GATEWAY_LOG"
else
  pass "oauth/no-secret-in-log"
fi

suite_summary
