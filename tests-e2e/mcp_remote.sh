#!/usr/bin/env bash
# mcp-remote (the stdio bridge Claude Desktop and other stdio-only hosts run for remote servers,
# pinned in tests-e2e/package.json) signing in to mcpgate's own authorization server:
#   MCP_API_KEYS='{<fresh key>: admin "mcp-remote-user"}' mcpgate serve --listen 127.0.0.1:PORT \
#     --config <public_url = "http://127.0.0.1:PORT", [oauth]> \
#     --upstream-cmd "mcpgate-example-server --stdio --profile demo"
#   mcp-remote http://127.0.0.1:PORT/mcp CALLBACK_PORT --debug
# with a throwaway HOME and MCP_REMOTE_CONFIG_DIR, and BROWSER pointing at tests-e2e/
# oauth_browser.py (mcp-remote opens the browser through the `open` package, whose bundled
# xdg-open runs $BROWSER when there is no desktop): it GETs the authorization URL signed in by
# X-API-Key and then the Location, mcp-remote's own loopback callback. The host side is
# tests-e2e/stdio_mcp_client.py over mcp-remote's stdin/stdout: initialize, tools/list,
# tools/call whoami and echo.
# Runs: 1 fresh (DCR, browser sign-in, callback, code exchange); 2 the stored tokens (no
# browser); 3 the stored access token marked expired (a refresh, no browser; tokens rotate);
# 4 the stored access token tampered with but not expired (the gateway's 401 makes it refresh).
# Then: no key, code or token in the gateway's log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_npm_tools
e2e_init mcp_remote

USER_ID="mcp-remote-user"
if ! start_oauth_gateway gateway-oauth "$USER_ID"; then
  fail "mcp_remote/gateway-start" "mcpgate serve with [oauth] did not start (see above)"
  suite_summary
  exit 1
fi
MCP_REMOTE_JS="$(npm_bin "$NPM_TOOLS_DIR" mcp-remote mcp-remote)"
[[ -f "$MCP_REMOTE_JS" ]] || die "mcp-remote is not installed in $NPM_TOOLS_DIR (tests-e2e/package.json)"
MCP_REMOTE_VERSION="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
  "$NPM_TOOLS_DIR/node_modules/mcp-remote/package.json")"
log "mcp-remote $MCP_REMOTE_VERSION against $GATEWAY_URL"

HOME_DIR="$E2E_TMP/home"
CONFIG_DIR="$E2E_TMP/mcp-auth"
VISITS="$E2E_TMP/browser-visits.jsonl"
SECRETS_FILE="$E2E_TMP/seen-secrets.txt"
mkdir -p "$HOME_DIR" "$CONFIG_DIR"
: >"$SECRETS_FILE"
# $BROWSER is split on ':' by xdg-open and run with the URL: a path with neither ':' nor spaces.
BROWSER_CMD="$E2E_TMP/browser"
printf '#!/bin/sh\nexec python3 %q "$@"\n' "$E2E_DIR/oauth_browser.py" >"$BROWSER_CMD"
chmod +x "$BROWSER_CMD"
CALLBACK_PORT="$(free_port)"

# remote RUN: one mcp-remote session driven over stdio; its stderr goes to the suite's logs (it
# prints the authorization URL, never a code or token; checked below).
remote() {
  local run="$1"
  run_counted "mcp_remote/$run" 90 env -u DISPLAY -u WAYLAND_DISPLAY -u XDG_CURRENT_DESKTOP \
    -u DESKTOP_SESSION -u KDE_FULL_SESSION -u GNOME_DESKTOP_SESSION_ID -u DBUS_SESSION_BUS_ADDRESS \
    HOME="$HOME_DIR" MCP_REMOTE_CONFIG_DIR="$CONFIG_DIR" BROWSER="$BROWSER_CMD" \
    OAUTH_BROWSER_KEY="$OAUTH_KEY" OAUTH_BROWSER_LOG="$VISITS" NO_COLOR=1 \
    python3 "$E2E_DIR/stdio_mcp_client.py" --prefix "mcp_remote/$run" --expect-user "$USER_ID" \
    --init-timeout 60 --stderr "$E2E_SUITE_LOG_DIR/$run.mcp-remote.stderr" -- \
    "$NODE22" "$MCP_REMOTE_JS" "$GATEWAY_URL" "$CALLBACK_PORT" --debug
}

# tokens CMD: reads (or, for expire/tamper, rewrites) mcp-remote's stored tokens
# ($CONFIG_DIR/mcp-remote-v1/<hash>_tokens.json). show prints "access refresh"; secrets appends
# both to the secrets file.
tokens() {
  python3 - "$CONFIG_DIR" "$1" "$SECRETS_FILE" <<'PY'
import glob, json, sys, time
cfg, cmd, secrets = sys.argv[1:]
files = glob.glob(f"{cfg}/mcp-remote-v1/*_tokens.json")
if len(files) != 1:
    print(f"ERROR: {len(files)} token files under {cfg}/mcp-remote-v1"); sys.exit(0)
t = json.load(open(files[0], encoding="utf-8"))
if cmd == "show":
    print(t.get("access_token", ""), t.get("refresh_token", ""))
elif cmd == "secrets":
    with open(secrets, "a", encoding="utf-8") as f:
        f.writelines(s + "\n" for s in (t.get("access_token"), t.get("refresh_token")) if s)
elif cmd == "expire":
    t["expires_at"] = int((time.time() - 60) * 1000)
    t["expires_in"] = 0
elif cmd == "tamper":
    a = t["access_token"]
    t["access_token"] = a[:-6] + ("BBBBBB" if a.endswith("AAAAAA") else "AAAAAA")
if cmd in ("expire", "tamper"):
    json.dump(t, open(files[0], "w", encoding="utf-8"))
PY
}

visits() { if [[ -s "$VISITS" ]]; then grep -c . "$VISITS"; else echo 0; fi; }

# rotated NAME BEFORE: the stored tokens changed (both) since BEFORE ("access refresh"), with no
# further browser visit.
rotated() {
  local name="$1" before="$2" after
  after="$(tokens show)"
  tokens secrets
  if [[ "$after" == ERROR* ]]; then
    fail "$name" "$after"
  elif [[ "${after% *}" != "${before% *}" && "${after#* }" != "${before#* }" && -n "${after#* }" && "$(visits)" == 1 ]]; then
    pass "$name"
  else
    fail "$name" "access token changed: $([[ "${after% *}" != "${before% *}" ]] && echo yes || echo no), refresh token changed: $([[ "${after#* }" != "${before#* }" ]] && echo yes || echo no), browser visits $(visits) (want 1)"
  fi
}

# 1. Fresh: registration, the browser, the callback, the code exchange.
remote fresh
tokens secrets
run_counted "mcp_remote/fresh/browser" 30 python3 "$E2E_DIR/oauth_browser.py" --check "$VISITS" \
  --issuer "$GATEWAY_BASE" --prefix mcp_remote/fresh --visits 1 --resource "$GATEWAY_URL" \
  --redirect-prefix "http://localhost:$CALLBACK_PORT/oauth/callback?" --secrets-out "$SECRETS_FILE"
stored="$(tokens show)"
if [[ "$stored" == ERROR* || -z "${stored#* }" ]]; then
  fail "mcp_remote/fresh/tokens-stored" "no access and refresh token in $CONFIG_DIR: ${stored:0:80}"
else
  pass "mcp_remote/fresh/tokens-stored"
fi

# 2. The stored tokens: no browser.
remote stored
if [[ "$(visits)" == 1 ]]; then pass "mcp_remote/stored/no-browser"; else
  fail "mcp_remote/stored/no-browser" "mcp-remote sent the browser again (visits: $(visits))"; fi

# 3. The stored access token has expired: a refresh, no browser.
before="$(tokens show)"
tokens expire
remote expired
rotated "mcp_remote/expired/refreshed" "$before"

# 4. The stored access token no longer verifies (tampered, not expired): the gateway's 401
#    makes mcp-remote refresh.
before="$(tokens show)"
tokens tamper
remote tampered
rotated "mcp_remote/tampered/refreshed" "$before"

# mcp-remote's own output must not carry a code or token either (it is kept in the logs).
printf '%s\n' "${OAUTH_KEY##*_}" >>"$SECRETS_FILE"
check_no_secret_in_log "mcp_remote/no-secret-in-log" "$SECRETS_FILE" "$GATEWAY_LOG"
check_no_secret_in_log "mcp_remote/no-secret-in-mcp-remote-output" "$SECRETS_FILE" \
  "$E2E_SUITE_LOG_DIR"/*.mcp-remote.stderr

suite_summary
