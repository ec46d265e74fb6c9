#!/usr/bin/env bash
# `mcpgate connect URL --oauth` (issue 14) signing in to mcpgate's own authorization server, and
# mcp-remote on the same flow beside it:
#   MCP_API_KEYS='{<fresh key>: admin "connect-oauth-user"}' mcpgate serve --listen 127.0.0.1:PORT \
#     --config <public_url = "http://127.0.0.1:PORT", [oauth]> \
#     --upstream-cmd "mcpgate-example-server --stdio --profile demo"
#   connect_client.py -- mcpgate connect http://127.0.0.1:PORT/mcp --oauth
# with a throwaway HOME and MCPGATE_CONFIG_DIR (the tokens go to $MCPGATE_CONFIG_DIR/tokens), and
# BROWSER pointing at tests-e2e/oauth_browser.py, as mcp_remote.sh sets it up: it GETs the
# authorization URL signed in by X-API-Key, then the Location, the bridge's loopback callback.
# The host is the official Python SDK's stdio client (tests-e2e/connect_client.py): connect,
# tools/list, echo, whoami (the key's user, through the OAuth token).
# Runs: 1 fresh (DCR, browser, callback, code exchange; the visit judged by oauth_browser.py
# --check: PKCE S256, state, resource, 303 with one code, iss, the callback answered); 2 from the
# cache (no browser); the cache file 0600 in a 0700 directory; 3 the cached access token marked
# expired (a refresh, no browser; both tokens rotate); 4 the cached access token tampered with
# but not expired (the gateway's 401 makes the bridge refresh); 5 the cache file made 0644 (not
# used: a new sign-in, and the file is 0600 again). Then mcp-remote (as mcp_remote.sh runs it)
# against the same gateway: fresh, then stored. Last: no key, code or token in the bridge's
# stderr, the clients' output, mcp-remote's output or the gateway's log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_python_sdk
ensure_npm_tools
e2e_init connect_oauth

USER_ID="connect-oauth-user"
if ! start_oauth_gateway gateway-oauth "$USER_ID"; then
  fail "connect_oauth/gateway-start" "mcpgate serve with [oauth] did not start (see above)"
  suite_summary
  exit 1
fi
log "mcpgate connect --oauth against $GATEWAY_URL"

HOME_DIR="$E2E_TMP/home"
CONFIG_DIR="$E2E_TMP/config"
VISITS="$E2E_TMP/connect-visits.jsonl"
SECRETS_FILE="$E2E_TMP/seen-secrets.txt"
ERRLOG="$E2E_SUITE_LOG_DIR/bridge.stderr"
mkdir -p "$HOME_DIR"
: >"$SECRETS_FILE"
: >"$ERRLOG"
# $BROWSER is split on ':' and run with the URL: a path with neither ':' nor spaces.
BROWSER_CMD="$E2E_TMP/browser"
printf '#!/bin/sh\nexec python3 %q "$@"\n' "$E2E_DIR/oauth_browser.py" >"$BROWSER_CMD"
chmod +x "$BROWSER_CMD"

# No desktop, so only $BROWSER can open the URL (a command prefix: run_counted runs it under
# timeout(1), which cannot run a shell function).
HEADLESS=(env -u DISPLAY -u WAYLAND_DISPLAY -u XDG_CURRENT_DESKTOP -u DESKTOP_SESSION -u KDE_FULL_SESSION
  -u GNOME_DESKTOP_SESSION_ID -u DBUS_SESSION_BUS_ADDRESS NO_COLOR=1)

# bridge RUN: one `mcpgate connect --oauth` session driven by the Python SDK's stdio client.
bridge() {
  local run="$1"
  run_counted "connect_oauth/$run" 120 "${HEADLESS[@]}" HOME="$HOME_DIR" MCPGATE_CONFIG_DIR="$CONFIG_DIR" \
    BROWSER="$BROWSER_CMD" OAUTH_BROWSER_KEY="$OAUTH_KEY" OAUTH_BROWSER_LOG="$VISITS" \
    "$VENV_PY" "$E2E_DIR/connect_client.py" --label "connect_oauth/$run" --mode legacy \
    --expect-user "$USER_ID" --timeout 90 --stderr-log "$ERRLOG" -- \
    "$MCPGATE_BIN" connect "$GATEWAY_URL" --oauth
}

# cache CMD: reads or rewrites the bridge's tokens file ($CONFIG_DIR/tokens/<sha256>.json; the
# registration is client-<sha256>.json beside it). show prints "access refresh"; secrets appends
# both to the secrets file; modes prints "FILE_MODE DIR_MODE"; expire and tamper rewrite it in
# place (its mode kept).
cache() {
  python3 - "$CONFIG_DIR/tokens" "$1" "$SECRETS_FILE" <<'PY'
import glob, json, os, stat, sys, time
d, cmd, secrets = sys.argv[1:]
files = [f for f in glob.glob(f"{d}/*.json") if not os.path.basename(f).startswith("client-")]
if len(files) != 1:
    print(f"ERROR: {len(files)} token files under {d}"); sys.exit(0)
path = files[0]
t = json.load(open(path, encoding="utf-8"))
if cmd == "show":
    print(t.get("access_token", ""), t.get("refresh_token", ""))
elif cmd == "secrets":
    with open(secrets, "a", encoding="utf-8") as f:
        f.writelines(s + "\n" for s in (t.get("access_token"), t.get("refresh_token")) if s)
elif cmd == "modes":
    print(f"{stat.S_IMODE(os.stat(path).st_mode):o} {stat.S_IMODE(os.stat(d).st_mode):o}")
elif cmd == "expire":
    t["expires_at_ms"] = int((time.time() - 60) * 1000)
    t["obtained_at_ms"] = int((time.time() - 120) * 1000)
elif cmd == "tamper":
    a = t["access_token"]
    t["access_token"] = a[:-6] + ("BBBBBB" if a.endswith("AAAAAA") else "AAAAAA")
elif cmd == "open":
    os.chmod(path, 0o644)
if cmd in ("expire", "tamper"):
    with open(path, "w", encoding="utf-8") as f:  # an existing file keeps its mode
        json.dump(t, f)
PY
}

visits() { if [[ -s "$1" ]]; then grep -c . "$1"; else echo 0; fi; }

# rotated NAME BEFORE: both stored tokens changed since BEFORE ("access refresh"), and the browser
# was not sent again (still 1 visit).
rotated() {
  local name="$1" before="$2" after
  after="$(cache show)"
  cache secrets
  if [[ "$after" == ERROR* ]]; then
    fail "$name" "$after"
  elif [[ "${after% *}" != "${before% *}" && "${after#* }" != "${before#* }" && -n "${after#* }" && "$(visits "$VISITS")" == 1 ]]; then
    pass "$name"
  else
    fail "$name" "access token changed: $([[ "${after% *}" != "${before% *}" ]] && echo yes || echo no), refresh token changed: $([[ "${after#* }" != "${before#* }" ]] && echo yes || echo no), browser visits $(visits "$VISITS") (want 1)"
  fi
}

# 1. Fresh: registration, the browser, the callback, the code exchange.
bridge fresh
cache secrets
run_counted "connect_oauth/fresh/browser" 30 python3 "$E2E_DIR/oauth_browser.py" --check "$VISITS" \
  --issuer "$GATEWAY_BASE" --prefix connect_oauth/fresh --visits 1 --resource "$GATEWAY_URL" \
  --redirect-prefix "http://127.0.0.1:" --secrets-out "$SECRETS_FILE"
stored="$(cache show)"
if [[ "$stored" == ERROR* || -z "${stored#* }" ]]; then
  fail "connect_oauth/fresh/tokens-stored" "no access and refresh token in $CONFIG_DIR/tokens: ${stored:0:80}"
else
  pass "connect_oauth/fresh/tokens-stored"
fi
if grep -q "open this URL to sign in" "$ERRLOG"; then pass "connect_oauth/fresh/url-printed"; else
  fail "connect_oauth/fresh/url-printed" "the bridge did not print the authorization URL on stderr"; fi

# 2. The cache: no browser. Its file 0600, its directory 0700.
bridge cached
if [[ "$(visits "$VISITS")" == 1 ]]; then pass "connect_oauth/cached/no-browser"; else
  fail "connect_oauth/cached/no-browser" "the bridge sent the browser again (visits: $(visits "$VISITS"))"; fi
modes="$(cache modes)"
if [[ "$modes" == "600 700" ]]; then pass "connect_oauth/cache-modes"; else
  fail "connect_oauth/cache-modes" "tokens file and directory modes: $modes (want 600 700)"; fi

# 3. The cached access token has expired: a refresh, no browser.
before="$(cache show)"
cache expire
bridge expired
rotated "connect_oauth/expired/refreshed" "$before"

# 4. The cached access token no longer verifies (tampered, not expired): the gateway's 401
#    makes the bridge refresh.
before="$(cache show)"
cache tamper
bridge tampered
rotated "connect_oauth/tampered/refreshed" "$before"

# 5. The cache file open to other users: not used; a new sign-in writes it 0600 again.
before="$(cache show)"
cache open
bridge opened
cache secrets
after="$(cache show)"
if [[ "$(visits "$VISITS")" == 2 && "${after% *}" != "${before% *}" && "$(cache modes)" == "600 700" ]]; then
  pass "connect_oauth/opened/signed-in-again"
else
  fail "connect_oauth/opened/signed-in-again" "browser visits $(visits "$VISITS") (want 2), modes $(cache modes), token changed: $([[ "${after% *}" != "${before% *}" ]] && echo yes || echo no)"
fi
if grep -q "open to other users" "$ERRLOG"; then pass "connect_oauth/opened/said-why"; else
  fail "connect_oauth/opened/said-why" "the bridge did not say why it ignored the 0644 cache file"; fi
run_counted "connect_oauth/opened/browser" 30 python3 "$E2E_DIR/oauth_browser.py" --check "$VISITS" \
  --issuer "$GATEWAY_BASE" --prefix connect_oauth/opened --first 2 --resource "$GATEWAY_URL" \
  --redirect-prefix "http://127.0.0.1:" --secrets-out "$SECRETS_FILE"

# ---- mcp-remote on the same gateway, the same browser helper ---------------------------------
MCP_REMOTE_JS="$(npm_bin "$NPM_TOOLS_DIR" mcp-remote mcp-remote)"
if [[ -f "$MCP_REMOTE_JS" ]]; then
  REMOTE_CONFIG="$E2E_TMP/mcp-auth"
  REMOTE_VISITS="$E2E_TMP/mcp-remote-visits.jsonl"
  mkdir -p "$REMOTE_CONFIG"
  CALLBACK_PORT="$(free_port)"
  remote() {
    local run="$1"
    run_counted "connect_oauth/mcp-remote-$run" 90 "${HEADLESS[@]}" HOME="$HOME_DIR" \
      MCP_REMOTE_CONFIG_DIR="$REMOTE_CONFIG" BROWSER="$BROWSER_CMD" OAUTH_BROWSER_KEY="$OAUTH_KEY" \
      OAUTH_BROWSER_LOG="$REMOTE_VISITS" python3 "$E2E_DIR/stdio_mcp_client.py" \
      --prefix "connect_oauth/mcp-remote-$run" --expect-user "$USER_ID" --init-timeout 60 \
      --stderr "$E2E_SUITE_LOG_DIR/$run.mcp-remote.stderr" -- \
      "$NODE22" "$MCP_REMOTE_JS" "$GATEWAY_URL" "$CALLBACK_PORT" --debug
  }
  remote fresh
  run_counted "connect_oauth/mcp-remote-fresh/browser" 30 python3 "$E2E_DIR/oauth_browser.py" \
    --check "$REMOTE_VISITS" --issuer "$GATEWAY_BASE" --prefix connect_oauth/mcp-remote-fresh --visits 1 \
    --resource "$GATEWAY_URL" --redirect-prefix "http://localhost:$CALLBACK_PORT/oauth/callback?" \
    --secrets-out "$SECRETS_FILE"
  remote stored
  if [[ "$(visits "$REMOTE_VISITS")" == 1 ]]; then pass "connect_oauth/mcp-remote-stored/no-browser"; else
    fail "connect_oauth/mcp-remote-stored/no-browser" "mcp-remote sent the browser again (visits: $(visits "$REMOTE_VISITS"))"; fi
  python3 - "$REMOTE_CONFIG" "$SECRETS_FILE" <<'PY'
import glob, json, sys
cfg, secrets = sys.argv[1:]
with open(secrets, "a", encoding="utf-8") as out:
    for f in glob.glob(f"{cfg}/mcp-remote-v1/*_tokens.json"):
        t = json.load(open(f, encoding="utf-8"))
        out.writelines(s + "\n" for s in (t.get("access_token"), t.get("refresh_token")) if s)
PY
else
  fail "connect_oauth/mcp-remote" "mcp-remote is not installed in $NPM_TOOLS_DIR (tests-e2e/package.json)"
fi

# ---- nothing secret where it should not be ---------------------------------------------------
printf '%s\n' "${OAUTH_KEY##*_}" >>"$SECRETS_FILE"
SECRETS_MIN=6 check_no_secret_in_log "connect_oauth/no-secret-in-logs" "$SECRETS_FILE" "$ERRLOG" \
  "$GATEWAY_LOG" "$E2E_SUITE_LOG_DIR"/*.out "$E2E_SUITE_LOG_DIR"/*.stderr

suite_summary
