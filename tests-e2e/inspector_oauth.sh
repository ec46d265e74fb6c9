#!/usr/bin/env bash
# The MCP Inspector CLI (pinned in tests-e2e/package.json) doing its own OAuth against mcpgate's
# authorization server, headless:
#   MCP_API_KEYS='{<fresh key>: admin "inspector-oauth-user"}' mcpgate serve --listen 127.0.0.1:PORT \
#     --config <public_url = "http://127.0.0.1:PORT", [oauth]> \
#     --upstream-cmd "mcpgate-example-server --stdio --profile demo"
#   mcp-inspector --cli http://127.0.0.1:PORT/mcp --transport http --method … \
#     --callback-url http://127.0.0.1:CALLBACK_PORT/oauth/callback
# The CLI's interactive OAuth (DCR, PKCE, its loopback callback listener) needs a TTY unless
# MCP_AUTO_OPEN_ENABLED=true; it then prints "Please navigate to: URL" and opens the URL with the
# `open` package, whose bundled xdg-open runs $BROWSER when there is no desktop: BROWSER is
# tests-e2e/oauth_browser.py (GET the URL signed in by X-API-Key, then the Location, the CLI's
# callback). Secrets go to a file store (MCP_INSPECTOR_SECRET_STORE=file) in a throwaway HOME, so
# later runs use the stored tokens (--stored-auth-only).
# Runs: 1 tools/list, signing in; 2 whoami and 3 echo from the stored tokens, no browser;
# 4 the stored access token tampered with: the CLI refreshes (tokens rotate), no browser;
# 5 --relogin: a second sign-in; 6 --stored-auth-only with an empty store: refused, promptly.
# Then: no key, code or token in the gateway's log or the CLI's output.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_npm_tools
e2e_init inspector_oauth

USER_ID="inspector-oauth-user"
if ! start_oauth_gateway gateway-oauth "$USER_ID"; then
  fail "inspector_oauth/gateway-start" "mcpgate serve with [oauth] did not start (see above)"
  suite_summary
  exit 1
fi
URL="$GATEWAY_URL"
log "MCP Inspector CLI $("$NODE22" "$INSPECTOR_JS" --cli --version 2>/dev/null || echo '?') with OAuth against $URL"

HOME_DIR="$E2E_TMP/home"
EMPTY_HOME="$E2E_TMP/empty-home"
VISITS="$E2E_TMP/browser-visits.jsonl"
SECRETS_FILE="$E2E_TMP/seen-secrets.txt"
mkdir -p "$HOME_DIR" "$EMPTY_HOME"
: >"$SECRETS_FILE"
BROWSER_CMD="$E2E_TMP/browser" # xdg-open splits $BROWSER on ':': a path without ':' or spaces
printf '#!/bin/sh\nexec python3 %q "$@"\n' "$E2E_DIR/oauth_browser.py" >"$BROWSER_CMD"
chmod +x "$BROWSER_CMD"
CALLBACK_PORT="$(free_port)"
CALLBACK_URL="http://127.0.0.1:$CALLBACK_PORT/oauth/callback"

N=0
LAST_OUT=""
# inspect NAME PY_ASSERTION [HOME] -- INSPECTOR_ARGS...: runs the Inspector CLI; PY_ASSERTION is
# a Python expression over `out` (its parsed JSON stdout) that must be true.
inspect() {
  local name="$1" assertion="$2" home="$HOME_DIR" rc=0 out err verdict
  shift 2
  if [[ "$1" != -- ]]; then home="$1"; shift; fi
  shift
  N=$((N + 1))
  out="$E2E_SUITE_LOG_DIR/$N.${name//\//.}.stdout"
  err="$E2E_SUITE_LOG_DIR/$N.${name//\//.}.stderr"
  LAST_OUT="$out"
  limited 60 env -u DISPLAY -u WAYLAND_DISPLAY -u XDG_CURRENT_DESKTOP -u DESKTOP_SESSION \
    -u KDE_FULL_SESSION -u GNOME_DESKTOP_SESSION_ID -u DBUS_SESSION_BUS_ADDRESS \
    HOME="$home" MCP_INSPECTOR_SECRET_STORE=file MCP_AUTO_OPEN_ENABLED=true BROWSER="$BROWSER_CMD" \
    OAUTH_BROWSER_KEY="$OAUTH_KEY" OAUTH_BROWSER_LOG="$VISITS" NO_COLOR=1 \
    "$NODE22" "$INSPECTOR_JS" --cli "$URL" --transport http --callback-url "$CALLBACK_URL" "$@" \
    </dev/null >"$out" 2>"$err" || rc=$?
  if [[ "$assertion" == REFUSED ]]; then
    if [[ "$rc" -eq 0 ]]; then
      fail "inspector_oauth/$name" "succeeded: $(head -c 200 "$out")"
    elif [[ "$rc" -eq 124 || "$rc" -eq 137 ]]; then
      fail "inspector_oauth/$name" "no answer within 60s (a hang, not a refusal)"
    else
      pass "inspector_oauth/$name"
    fi
    return 0
  fi
  if [[ "$rc" -ne 0 ]]; then
    fail "inspector_oauth/$name" "exit $rc: $(head -c 400 "$out" "$err" | tr '\n' ' ')"
    return 0
  fi
  verdict="$(python3 - "$out" "$assertion" "$USER_ID" <<'PY'
import json, sys
def texts(o):
    return [c.get("text", "") for c in o.get("content", []) if c.get("type") == "text"]
def who(o):
    return o.get("structuredContent") or json.loads(texts(o)[0])
try:
    out = json.load(open(sys.argv[1], encoding="utf-8"))
except Exception as e:
    print(f"stdout is not JSON: {e}"); sys.exit(0)
try:
    ok = eval(sys.argv[2], {"out": out, "texts": texts, "who": who, "user": sys.argv[3]})
except Exception as e:
    ok = False
print("ok" if ok else "assertion failed: " + sys.argv[2] + " on " + json.dumps(out)[:300])
PY
)"
  if [[ "$verdict" == ok ]]; then pass "inspector_oauth/$name"; else fail "inspector_oauth/$name" "$verdict"; fi
}

# stored CMD: the Inspector's stored tokens for this server ($HOME/.mcp-inspector/secrets.json,
# the file store). show prints "access refresh"; secrets appends them to the secrets file;
# tamper spoils the access token's signature.
stored() {
  python3 - "$HOME_DIR/.mcp-inspector/secrets.json" "$1" "$SECRETS_FILE" <<'PY'
import json, sys
path, cmd, secrets = sys.argv[1:]
try:
    store = json.load(open(path, encoding="utf-8"))
except Exception as e:
    print(f"ERROR: {path}: {e}"); sys.exit(0)
keys = [k for k in store.get("secrets", {}) if ":tokens:" in k]
if len(keys) != 1:
    print(f"ERROR: {len(keys)} token entries in {path}"); sys.exit(0)
t = json.loads(store["secrets"][keys[0]])
if cmd == "show":
    print(t.get("access_token", ""), t.get("refresh_token", ""))
elif cmd == "secrets":
    with open(secrets, "a", encoding="utf-8") as f:
        f.writelines(s + "\n" for s in (t.get("access_token"), t.get("refresh_token")) if s)
elif cmd == "tamper":
    a = t["access_token"]
    t["access_token"] = a[:-6] + ("BBBBBB" if a.endswith("AAAAAA") else "AAAAAA")
    store["secrets"][keys[0]] = json.dumps(t)
    json.dump(store, open(path, "w", encoding="utf-8"))
PY
}
visits() { if [[ -s "$VISITS" ]]; then grep -c . "$VISITS"; else echo 0; fi; }
no_browser() { # no_browser NAME WANT: the CLI sent the browser WANT times in all
  if [[ "$(visits)" == "$2" ]]; then pass "inspector_oauth/$1"; else
    fail "inspector_oauth/$1" "browser visits $(visits), want $2"; fi
}

TOOLS='{"echo", "whoami"} <= {t["name"] for t in out["tools"]}'
WHOAMI='not out.get("isError") and who(out).get("user_id") == user and who(out).get("auth_method") == "oauth"'
ECHO_HI='not out.get("isError") and any("hi there" in t for t in texts(out))'

# 1. Sign in.
inspect sign-in/tools-list "$TOOLS" -- --method tools/list
if grep -q 'Please navigate to: http://127.0.0.1' "$LAST_OUT" "${LAST_OUT%.stdout}.stderr"; then
  pass "inspector_oauth/sign-in/prompted"
else
  fail "inspector_oauth/sign-in/prompted" "the CLI printed no 'Please navigate to: <authorization URL>'"
fi
run_counted "inspector_oauth/sign-in/browser" 30 python3 "$E2E_DIR/oauth_browser.py" --check "$VISITS" \
  --issuer "$GATEWAY_BASE" --prefix inspector_oauth/sign-in --visits 1 --resource "$URL" \
  --redirect-prefix "$CALLBACK_URL?" --secrets-out "$SECRETS_FILE"
tokens="$(stored show)"
stored secrets
if [[ "$tokens" == ERROR* || -z "${tokens#* }" ]]; then
  fail "inspector_oauth/sign-in/tokens-stored" "no access and refresh token stored: ${tokens:0:120}"
else
  pass "inspector_oauth/sign-in/tokens-stored"
fi

# 2-3. The stored tokens.
inspect stored/whoami "$WHOAMI" -- --method tools/call --tool-name whoami --stored-auth-only
inspect stored/echo "$ECHO_HI" -- --method tools/call --tool-name echo --tool-arg "text=hi there" --stored-auth-only
no_browser stored/no-browser 1

# 4. A stored access token that no longer verifies: the gateway's 401 makes the CLI refresh.
before="$(stored show)"
stored tamper
inspect refresh/whoami "$WHOAMI" -- --method tools/call --tool-name whoami --stored-auth-only
after="$(stored show)"
stored secrets
if [[ "$after" != ERROR* && "${after% *}" != "${before% *}" && "${after#* }" != "${before#* }" && "$(visits)" == 1 ]]; then
  pass "inspector_oauth/refresh/rotated"
else
  fail "inspector_oauth/refresh/rotated" "access token changed: $([[ "${after% *}" != "${before% *}" ]] && echo yes || echo no), refresh token changed: $([[ "${after#* }" != "${before#* }" ]] && echo yes || echo no), browser visits $(visits) (want 1) ${after:0:60}"
fi

# 5. --relogin: the stored state is dropped and the CLI signs in again.
inspect relogin/whoami "$WHOAMI" -- --method tools/call --tool-name whoami --relogin
no_browser relogin/signed-in-again 2
stored secrets
run_counted "inspector_oauth/relogin/browser" 30 python3 "$E2E_DIR/oauth_browser.py" --check "$VISITS" \
  --issuer "$GATEWAY_BASE" --prefix inspector_oauth/relogin --first 2 --resource "$URL" \
  --redirect-prefix "$CALLBACK_URL?" --secrets-out "$SECRETS_FILE"

# 6. Nothing stored and --stored-auth-only: refused (auth_required), not a hang, no browser.
inspect no-stored-auth-refused REFUSED "$EMPTY_HOME" -- --method tools/list --stored-auth-only
no_browser no-stored-auth/no-browser 2

printf '%s\n' "${OAUTH_KEY##*_}" >>"$SECRETS_FILE"
sort -u -o "$SECRETS_FILE" "$SECRETS_FILE"
check_no_secret_in_log "inspector_oauth/no-secret-in-log" "$SECRETS_FILE" "$GATEWAY_LOG"
check_no_secret_in_log "inspector_oauth/no-secret-in-inspector-output" "$SECRETS_FILE" \
  "$E2E_SUITE_LOG_DIR"/*.stdout "$E2E_SUITE_LOG_DIR"/*.stderr

suite_summary
