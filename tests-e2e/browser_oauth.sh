#!/usr/bin/env bash
# mcpgate's sign-in/consent page in a real browser: Debian's chromium, headless, driven from
# Python by Playwright (tests-e2e/requirements.txt; executable_path = the system chromium):
#   MCP_API_KEYS='{<fresh key>: admin "ana-browser"}' mcpgate serve --listen 127.0.0.1:PORT \
#     --config <public_url = "http://127.0.0.1:PORT", [oauth]> \
#     --upstream-cmd "mcpgate-example-server --stdio --profile demo"
# tests-e2e/browser_oauth.py: DCR, the consent page (name, redirect, scopes, "unverified"
# warning; screenshot in target/e2e-logs/browser/), key typed + Allow -> callback with code,
# state, iss -> /token -> whoami on /mcp; then framing refused, a cross-site form POST refused
# (403), a missing CSRF cookie refused (403), Deny and a wrong key -> access_denied. Then: no
# key, code or token in the gateway's log. Installs chromium with apt-get when it is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_python_sdk
e2e_init browser

if ! ensure_chromium; then
  fail "browser/chromium" "Debian's chromium is not installed and could not be installed (see above)"
  suite_summary
  exit 1
fi
if ! "$VENV_PY" -c 'import playwright.sync_api' 2>/dev/null; then
  fail "browser/playwright" "the venv $VENV_PY has no playwright (tests-e2e/requirements.txt)"
  suite_summary
  exit 1
fi

USER_ID="ana-browser"
KEY="$(new_test_key)"
GATEWAY_KEYS_JSON="$(python3 -c 'import json, sys; print(json.dumps({sys.argv[1]: {"name": "e2e browser", "userId": sys.argv[2], "role": "admin", "permissions": ["*"]}}))' "$KEY" "$USER_ID")"

# public_url must be the address the browser uses (it is the issuer and the tokens' audience),
# so the port is chosen first; another process may take it meanwhile, hence a few tries.
CFG="$E2E_TMP/oauth.toml"
started=0
for attempt in 1 2 3; do
  PORT="$(free_port)"
  printf 'public_url = "http://127.0.0.1:%s"\n\n[oauth]\n' "$PORT" >"$CFG"
  if GATEWAY_LISTEN="127.0.0.1:$PORT" start_gateway "gateway-browser-$attempt" --config "$CFG" \
    --upstream-cmd "$(fixture_stdio_cmd demo)"; then
    started=1
    break
  fi
  log "gateway did not start on port $PORT (attempt $attempt)"
done
if [[ "$started" != 1 ]]; then
  fail "browser/gateway-start" "mcpgate serve with [oauth] did not start (see above)"
  suite_summary
  exit 1
fi
GATEWAY_LOG="$E2E_SUITE_LOG_DIR/gateway-browser-$attempt.log"
log "chromium ($CHROMIUM_BIN) against $GATEWAY_URL"

# The browser's temp profile (Playwright makes one per launch) lands in $E2E_TMP, which the
# exit trap removes with the processes.
SECRETS_FILE="$E2E_TMP/seen-secrets.txt"
TMPDIR="$E2E_TMP" BROWSER_E2E_KEY="$KEY" run_counted "browser/client" 120 "$VENV_PY" "$E2E_DIR/browser_oauth.py" \
  --url "$GATEWAY_URL" --expect-user "$USER_ID" --chromium "$CHROMIUM_BIN" \
  --artifacts "$E2E_SUITE_LOG_DIR" --secrets-out "$SECRETS_FILE"

# No key, code or token the browser or client saw may appear in the gateway's log.
# (The key's secret and a wrong key's are always there; codes and tokens as far as the flow got.)
if [[ "$(grep -c . "$SECRETS_FILE" 2>/dev/null || true)" -lt 2 ]]; then
  fail "browser/no-secret-in-log" "the client recorded no keys, codes or tokens to look for ($SECRETS_FILE)"
elif grep -qF -f <(grep . "$SECRETS_FILE") "$GATEWAY_LOG"; then
  fail "browser/no-secret-in-log" "a key, code or token appears in $GATEWAY_LOG"
else
  pass "browser/no-secret-in-log"
  log "no-secret-in-log: none of $(grep -c . "$SECRETS_FILE") keys, codes and tokens in $GATEWAY_LOG"
fi
if [[ -f "$E2E_SUITE_LOG_DIR/consent.png" ]]; then log "screenshot: $E2E_SUITE_LOG_DIR/consent.png"; fi

suite_summary
