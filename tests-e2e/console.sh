#!/usr/bin/env bash
# The operator's console (/admin) in a real browser: Debian's chromium, headless, driven from
# Python by Playwright (tests-e2e/console_browser.py), against
#   mcpgate serve --config <public_url = "http://127.0.0.1:PORT", [oauth], [admin] enabled = true>
#     --upstream-cmd "mcpgate-example-server --stdio --profile demo"
# with one admin key from MCP_API_KEYS. The browser signs in with it, creates a key on the keys
# page, the key works on /mcp, the browser revokes it, the refusal shows on the audit page and
# the overview's counts and chart change; every page is screenshotted (target/e2e-logs/console/)
# and checked for its Content-Security-Policy and for no browser console errors. Then: no key in
# the gateway's log. Installs chromium with apt-get when it is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_python_sdk
e2e_init console

if ! ensure_chromium; then
  fail "console/chromium" "Debian's chromium is not installed and could not be installed (see above)"
  suite_summary
  exit 1
fi
if ! "$VENV_PY" -c 'import playwright.sync_api' 2>/dev/null; then
  fail "console/playwright" "the venv $VENV_PY has no playwright (tests-e2e/requirements.txt)"
  suite_summary
  exit 1
fi

if ! start_oauth_gateway console root "" "[admin]" "enabled = true"; then
  fail "console/gateway-start" "mcpgate serve with [oauth] and [admin] did not start (see above)"
  suite_summary
  exit 1
fi
log "chromium ($CHROMIUM_BIN) against $GATEWAY_BASE/admin"

SECRETS_FILE="$E2E_TMP/seen-secrets.txt"
TMPDIR="$E2E_TMP" CONSOLE_ADMIN_KEY="$OAUTH_KEY" run_counted "console/browser" 180 "$VENV_PY" \
  "$E2E_DIR/console_browser.py" --base "$GATEWAY_BASE" --chromium "$CHROMIUM_BIN" \
  --artifacts "$E2E_SUITE_LOG_DIR" --secrets-out "$SECRETS_FILE"

SECRETS_MIN=2 check_no_secret_in_log "console/no-secret-in-log" "$SECRETS_FILE" "$GATEWAY_LOG"
for f in "$E2E_SUITE_LOG_DIR"/*.png; do [[ -f "$f" ]] && log "screenshot: $f"; done
suite_summary
