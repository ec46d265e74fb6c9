#!/usr/bin/env bash
# The official TypeScript SDK's OAuth client (@modelcontextprotocol/sdk, its OAuthClientProvider
# as the StreamableHTTPClientTransport's authProvider) against mcpgate's own authorization server:
#   MCP_API_KEYS='{<fresh key>: admin "ts-oauth-user"}' mcpgate serve --listen 127.0.0.1:PORT \
#     --config <public_url = "http://127.0.0.1:PORT", [oauth]> \
#     --upstream-cmd "mcpgate-example-server --stdio --profile demo"
# tests-e2e/ts_oauth.mjs: UnauthorizedError + transport.finishAuth(code) with a headless browser
# (header sign-in, iss checked), tools/list, echo, whoami, a forced refresh through the transport
# and one through auth() directly. Then: no key, code or token in the gateway's log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_npm_tools
e2e_init ts_oauth

USER_ID="ts-oauth-user"
if ! start_oauth_gateway gateway-oauth "$USER_ID"; then
  fail "ts_oauth/gateway-start" "mcpgate serve with [oauth] did not start (see above)"
  suite_summary
  exit 1
fi
log "TypeScript SDK OAuth client against $GATEWAY_URL"

SECRETS_FILE="$E2E_TMP/seen-secrets.txt"
OAUTH_E2E_KEY="$OAUTH_KEY" run_counted "ts_oauth/client" 90 "$NODE22" "$E2E_DIR/ts_oauth.mjs" \
  --url "$GATEWAY_URL" --expect-user "$USER_ID" --node-modules "$NPM_TOOLS_DIR" \
  --redirect-port "$(free_port)" --secrets-out "$SECRETS_FILE"

printf '%s\n' "${OAUTH_KEY##*_}" >>"$SECRETS_FILE"
check_no_secret_in_log "ts_oauth/no-secret-in-log" "$SECRETS_FILE" "$GATEWAY_LOG"

suite_summary
