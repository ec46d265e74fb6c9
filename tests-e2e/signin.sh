#!/usr/bin/env bash
# Sign-in through identity providers (issue #12), end to end on loopback: a real OpenID Provider
# (panva's oidc-provider, tests-e2e/idp/oidc_provider.mjs) and a GitHub stand-in
# (tests-e2e/idp/fake_github.mjs), in front of mcpgate's authorization server:
#   [[oauth.providers]] oidc "corp" (issuer = the provider) and github (endpoints + api_base =
#   the stand-in); [[oauth.identities]]: the corp group mcp-users, the corp e-mail domain
#   example.test (verified addresses only), the GitHub organization acme.
# tests-e2e/signin.py drives it as an MCP client and its user would: DCR, /authorize, the page's
# provider link, the provider's own pages and back, consent, token, whoami through /mcp; and the
# refusals (outside the group, an unverified e-mail, outside the organization); with
# delegation.source = "provider:corp", the demo upstream receives alice's own token at the
# provider (its userinfo endpoint says whose), and the GitHub user is told where to sign in.
# tests-e2e/signin_browser.py does seed 004's browser path in headless Chromium (screenshots).
# Then: no code, token, client secret or cookie in the gateway's log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_npm_tools
ensure_python_sdk
e2e_init signin

start_fixture_js() { # NAME SCRIPT ARGS...: node SCRIPT; sets READY_URL from its READY line
  local name="$1" logfile="$E2E_SUITE_LOG_DIR/$1.log" i
  shift
  spawn "$logfile" "$NODE22" "$@"
  for i in $(seq 1 300); do
    READY_URL="$(sed -n 's/^READY \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$logfile" | head -n1)"
    [[ -n "$READY_URL" ]] && return 0
    if ! kill -0 "$SPAWNED_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  tail -n 30 "$logfile" >&2 || true
  return 1
}

cat >"$E2E_TMP/oidc_accounts.json" <<'JSON'
[
  {"sub": "alice", "email": "alice@example.test", "email_verified": true, "name": "Alice", "groups": ["engineering", "mcp-users"]},
  {"sub": "bob", "email": "bob@example.test", "email_verified": false, "name": "Bob", "groups": ["sales"]},
  {"sub": "carol", "email": "carol@elsewhere.test", "email_verified": true, "name": "Carol", "groups": ["sales"]}
]
JSON
cat >"$E2E_TMP/github_accounts.json" <<'JSON'
[
  {"login": "ana", "id": 1001, "name": "Ana", "emails": [{"email": "ana@acme.test", "primary": true, "verified": true}], "orgs": ["acme"]},
  {"login": "bob", "id": 1002, "name": "Bob", "emails": [{"email": "bob@initech.test", "primary": true, "verified": true}], "orgs": ["initech"]}
]
JSON

CORP_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
GH_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
MCPGATE_ENCRYPTION_KEY="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export CORP_SECRET GH_SECRET MCPGATE_ENCRYPTION_KEY

started=0
for attempt in 1 2 3; do
  PORT="$(free_port)"
  BASE="http://127.0.0.1:$PORT"
  if ! start_fixture_js "oidc-$attempt" "$E2E_DIR/idp/oidc_provider.mjs" --node-modules "$NPM_TOOLS_DIR" --port 0 \
    --client-id mcpgate-corp --client-secret "$CORP_SECRET" --redirect-uris "$BASE/auth/oauth/callback" \
    --accounts "$E2E_TMP/oidc_accounts.json"; then
    fail "signin/oidc-provider-start" "oidc_provider.mjs printed no READY line"
    suite_summary
    exit 1
  fi
  ISS="$READY_URL"
  if ! start_fixture_js "github-$attempt" "$E2E_DIR/idp/fake_github.mjs" --port 0 \
    --client-id mcpgate-gh --client-secret "$GH_SECRET" --redirect-uris "http://127.0.0.1/auth/oauth/callback" \
    --accounts "$E2E_TMP/github_accounts.json"; then
    fail "signin/github-start" "fake_github.mjs printed no READY line"
    suite_summary
    exit 1
  fi
  GH="$READY_URL"
  CFG="$E2E_TMP/signin-$attempt.toml"
  cat >"$CFG" <<TOML
public_url = "$BASE"

[oauth]

[[oauth.providers]]
kind = "oidc"
id = "corp"
name = "Corp SSO"
issuer = "$ISS"
client_id = "mcpgate-corp"
client_secret_env = "CORP_SECRET"
scopes = ["openid", "email", "profile", "groups"]

[[oauth.providers]]
kind = "github"
client_id = "mcpgate-gh"
client_secret_env = "GH_SECRET"
authorization_endpoint = "$GH/login/oauth/authorize"
token_endpoint = "$GH/login/oauth/access_token"
api_base = "$GH"

[[oauth.identities]]
provider = "corp"
claim = "groups"
value = "mcp-users"
permissions = ["read", "write"]
user_id = "{email}"

[[oauth.identities]]
provider = "corp"
email_domain = "example.test"
permissions = ["read"]
user_id = "{email}"

[[oauth.identities]]
provider = "github"
github_org = "acme"
user_id = "gh:{login}"
permissions = ["read", "write"]

# The person's own corp token goes upstream (the demo's inspect tool shows its arguments).
[delegation]
tool_argument = "upstream_token"
source = "provider:corp"
TOML
  if GATEWAY_KEYS_JSON="" GATEWAY_LISTEN="127.0.0.1:$PORT" start_gateway "gateway-signin-$attempt" \
    --config "$CFG" --upstream-cmd "$(fixture_stdio_cmd demo)"; then
    started=1
    break
  fi
  log "gateway did not start on port $PORT (attempt $attempt)"
done
if [[ "$started" != 1 ]]; then
  fail "signin/gateway-start" "mcpgate serve with [[oauth.providers]] did not start (see above)"
  suite_summary
  exit 1
fi
GATEWAY_LOG="$E2E_SUITE_LOG_DIR/gateway-signin-$attempt.log"

SECRETS_FILE="$E2E_TMP/seen-secrets.txt"
printf '%s\n%s\n%s\n' "$CORP_SECRET" "$GH_SECRET" "$MCPGATE_ENCRYPTION_KEY" >"$SECRETS_FILE"
run_counted "signin/client" 120 "$VENV_PY" "$E2E_DIR/signin.py" --base "$BASE" --oidc-issuer "$ISS" \
  --redirect-uri "http://127.0.0.1:$(free_port)/callback" --secrets-out "$SECRETS_FILE"

# Seed 004's browser path in headless Chromium: start → GitHub → callback → /auth/me (the web
# session), sign-out; the refusal pages; screenshots in this suite's log directory.
if ensure_chromium; then
  run_counted "signin/browser" 180 "$VENV_PY" "$E2E_DIR/signin_browser.py" --base "$BASE" \
    --chromium "$CHROMIUM_BIN" --artifacts "$E2E_SUITE_LOG_DIR" --secrets-out "$SECRETS_FILE"
else
  fail "signin/browser" "no working chromium (see above)"
fi

SECRETS_MIN=6 check_no_secret_in_log "signin/no-secret-in-log" "$SECRETS_FILE" "$GATEWAY_LOG"

suite_summary
