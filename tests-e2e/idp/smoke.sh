#!/usr/bin/env bash
# Smoke test of the two identity-provider fixtures (tests-e2e/idp/README.md): starts the OIDC
# provider (oidc_provider.mjs) and the GitHub stand-in (fake_github.mjs) on free 127.0.0.1 ports in
# a temp dir, runs complete authorization-code flows against each with curl (a cookie jar; redirects
# followed by hand up to the redirect URI, which points at a port nobody listens on, so its
# Location is read instead), exchanges the codes, checks tokens, claims and the REST answers, and
# the refusals (deny, wrong secret, code or verifier, missing PKCE). One PASS/FAIL line per check,
# then "N passed, N failed"; exit status 1 if any failed. The processes are stopped and the temp
# dir removed on exit (KEEP_TMP=1 keeps the dir and logs for a look).
#
#   bash tests-e2e/idp/smoke.sh
#
# Node 22 and the pinned npm packages (oidc-provider among them) come from tests-e2e/lib.sh's
# ensure_npm_tools, in the test cache (~/.cache/mcpgate-test/npm-tools), installed on first use.
set -euo pipefail

IDP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$IDP_DIR/../lib.sh"

# ---- tools: Node 22 + tests-e2e/package-lock.json, under the cache lock like ensure_tools -------
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
ensure_npm_tools
flock -u 9
exec 9>&-
NODE="$NODE22"

# ---- temp dir, logs inside it, cleanup ----------------------------------------------------------
E2E_SUITE=idp
E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-idp-smoke.XXXXXX")"
E2E_SUITE_LOG_DIR="$E2E_TMP/logs"
mkdir -p "$E2E_SUITE_LOG_DIR"
on_exit() {
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then
    log "keeping $E2E_TMP"
    local dir="$E2E_TMP"
    E2E_TMP=""
    e2e_cleanup
    E2E_TMP="$dir"
  else
    e2e_cleanup
  fi
}
trap on_exit EXIT
trap 'e2e_interrupted 130' INT
trap 'e2e_interrupted 143' TERM
cd "$E2E_TMP"

# ---- helpers ------------------------------------------------------------------------------------
# json FILE EXPR: a Python expression over the JSON in FILE (as d), printed (JSON for non-strings).
# Prints nothing (and succeeds) when FILE is not JSON or EXPR fails: the checks report that.
json() {
  python3 -c 'import json, sys
try:
    d = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2])
except Exception:
    sys.exit(0)
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}
# qparam URL NAME: a query parameter of URL, percent-decoded (empty if absent).
qparam() {
  local query="${1#*\?}" pair v pairs
  [[ "$1" == *\?* ]] || return 0
  IFS='&' read -ra pairs <<<"${query%%#*}"
  for pair in "${pairs[@]}"; do
    if [[ "${pair%%=*}" == "$2" ]]; then
      v="${pair#*=}"
      v="${v//+/ }"
      printf '%b\n' "${v//%/\\x}"
      return 0
    fi
  done
}
# b64url: stdin as unpadded base64url.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
rand() { head -c 18 /dev/urandom | b64url; }
# pkce: sets VERIFIER and CHALLENGE (S256).
pkce() {
  VERIFIER="$(head -c 48 /dev/urandom | b64url)"
  CHALLENGE="$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | b64url)"
}
# follow URL JAR STOP: GET URL with the cookie jar and follow redirects by hand until a Location
# starts with STOP (the redirect URI); prints that Location. Fails on a non-redirect or 10 hops.
follow() {
  local url="$1" jar="$2" stop="$3" i out code loc
  for i in 1 2 3 4 5 6 7 8 9 10; do
    out="$(curl -sS -o "$E2E_TMP/follow.body" -w '%{http_code} %{redirect_url}' -c "$jar" -b "$jar" \
      --max-time 10 "$url")" || return 1
    code="${out%% *}"
    loc="${out#* }"
    if [[ ! "$code" =~ ^30[1-8]$ || -z "$loc" ]]; then
      log "follow: $url answered $code: $(head -c 300 "$E2E_TMP/follow.body")"
      return 1
    fi
    if [[ "$loc" == "$stop"* ]]; then
      printf '%s\n' "$loc"
      return 0
    fi
    url="$loc"
  done
  log "follow: more than 10 redirects"
  return 1
}
# check NAME REASON CMD...: pass NAME if CMD succeeds, else fail NAME REASON.
check() {
  local name="$1" reason="$2"
  shift 2
  if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name" "$reason"; fi
}
# eq ACTUAL EXPECTED
eq() { [[ "$1" == "$2" ]]; }
# start_fixture_js NAME SCRIPT ARGS...: node SCRIPT in the background; waits for its READY line.
# Sets READY_URL.
start_fixture_js() {
  local name="$1" logfile="$E2E_SUITE_LOG_DIR/$1.log" i
  shift
  spawn "$logfile" "$NODE" "$@"
  for i in $(seq 1 200); do
    READY_URL="$(sed -n 's/^READY \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$logfile" | head -n1)"
    [[ -n "$READY_URL" ]] && return 0
    if ! kill -0 "$SPAWNED_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  tail -n 30 "$logfile" >&2 || true
  die "$name did not print READY (log: $logfile)"
}

# Nobody listens here: the redirect URIs point at it, and the flows stop at its Location.
DEAD_PORT="$(free_port)"
CB="http://127.0.0.1:$DEAD_PORT/callback"
CB_ENC="http%3A%2F%2F127.0.0.1%3A$DEAD_PORT%2Fcallback"

# =================================================================================================
# OIDC provider
# =================================================================================================
cat >oidc_accounts.json <<'EOF'
[
  {"sub": "alice", "email": "alice@example.test", "email_verified": true, "name": "Alice Example",
   "preferred_username": "alice", "groups": ["engineering", "mcp-admins"], "roles": ["admin"]},
  {"sub": "bob", "email": "bob@example.test", "email_verified": false, "name": "Bob Example",
   "groups": ["sales"], "roles": []}
]
EOF
OIDC_ID="mcpgate-e2e"
OIDC_SECRET="oidc-secret-$(rand)"
POST_ID="mcpgate-e2e-post"
POST_SECRET="oidc-post-secret-$(rand)"
# A second client: client_secret_post, ES256 ID tokens (a client has exactly one auth method).
cat >oidc_clients.json <<EOF
[{"client_id": "$POST_ID", "client_secret": "$POST_SECRET", "redirect_uris": ["$CB"],
  "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
  "token_endpoint_auth_method": "client_secret_post", "id_token_signed_response_alg": "ES256"}]
EOF
start_fixture_js oidc "$IDP_DIR/oidc_provider.mjs" --node-modules "$NPM_TOOLS_DIR" --port 0 \
  --client-id "$OIDC_ID" --client-secret "$OIDC_SECRET" --redirect-uris "$CB" \
  --accounts oidc_accounts.json --clients oidc_clients.json
ISS="$READY_URL"
log "OIDC provider: $ISS"

curl -sS --max-time 10 "$ISS/.well-known/openid-configuration" -o disc.json
check oidc/discovery "issuer, S256, basic+post, RS256+ES256 not all advertised" python3 -c '
import json, sys
d = json.load(open("disc.json"))
assert d["issuer"] == sys.argv[1]
assert d["code_challenge_methods_supported"] == ["S256"]
assert {"client_secret_basic", "client_secret_post"} <= set(d["token_endpoint_auth_methods_supported"])
assert {"RS256", "ES256"} <= set(d["id_token_signing_alg_values_supported"])
assert d["userinfo_endpoint"] and d["jwks_uri"] and d["token_endpoint"].startswith(sys.argv[1])
' "$ISS"
AUTH_EP="$(json disc.json 'd["authorization_endpoint"]')"
TOKEN_EP="$(json disc.json 'd["token_endpoint"]')"
USERINFO_EP="$(json disc.json 'd["userinfo_endpoint"]')"

# oidc_authorize JAR CLIENT_ID SCOPE EXTRA_QUERY: a fresh state, nonce and PKCE pair; runs the
# authorization request to the redirect URI. Sets STATE, NONCE, VERIFIER, LOC (the final Location).
oidc_authorize() {
  local jar="$1" client="$2" scope="$3" extra="$4"
  STATE="$(rand)"
  NONCE="$(rand)"
  pkce
  LOC="$(follow "$AUTH_EP?response_type=code&client_id=$client&redirect_uri=$CB_ENC&scope=${scope// /%20}&state=$STATE&nonce=$NONCE&code_challenge=$CHALLENGE&code_challenge_method=S256$extra" "$jar" "$CB")" || LOC=""
}

# -- 1. bob by login_hint, client_secret_basic, RS256 -----------------------------------------------
oidc_authorize jar_bob "$OIDC_ID" "openid email profile groups roles" "&login_hint=bob"
CODE="$(qparam "$LOC" code)"
check oidc/code_flow/redirect "no code, wrong state or iss at the redirect URI: $LOC" \
  bash -c '[[ -n "$1" && "$2" == "$3" && "$4" == "$5" ]]' _ "$CODE" "$(qparam "$LOC" state)" "$STATE" "$(qparam "$LOC" iss)" "$ISS"
curl -sS --max-time 10 -o tok_bob.json -w '%{http_code}' -u "$OIDC_ID:$OIDC_SECRET" \
  -d grant_type=authorization_code --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$CB" \
  --data-urlencode "code_verifier=$VERIFIER" "$TOKEN_EP" >code.txt || true
check oidc/token/client_secret_basic "token endpoint answered $(cat code.txt): $(head -c 300 tok_bob.json)" \
  python3 -c 'import json; d = json.load(open("tok_bob.json")); assert d["id_token"] and d["access_token"] and d["token_type"] == "Bearer"'
"$NODE" "$IDP_DIR/verify_id_token.mjs" --issuer "$ISS" --audience "$OIDC_ID" --nonce "$NONCE" --alg RS256 \
  "$(json tok_bob.json 'd.get("id_token", "x")')" >idt_bob.json 2>idt_bob.err || true
check oidc/id_token/verified_rs256 "$(cat idt_bob.err)" test -s idt_bob.json
check oidc/id_token/claims "ID token claims are not bob's: $(head -c 400 idt_bob.json)" python3 -c '
import json
p = json.load(open("idt_bob.json"))["payload"]
assert p["sub"] == "bob" and p["email"] == "bob@example.test" and p["email_verified"] is False
assert p["name"] == "Bob Example" and p["groups"] == ["sales"] and p["roles"] == []
'
curl -sS --max-time 10 -o ui_bob.json -H "Authorization: Bearer $(json tok_bob.json 'd.get("access_token", "x")')" "$USERINFO_EP" || true
check oidc/userinfo "userinfo: $(head -c 300 ui_bob.json)" python3 -c '
import json; d = json.load(open("ui_bob.json")); assert d["sub"] == "bob" and d["email"] == "bob@example.test" and d["groups"] == ["sales"]'

# -- 2. the code is single-use (and reusing it revokes what it gave: tok_bob's tokens end here);
#       a wrong verifier and a wrong secret are refused ---------------------------------------------
curl -sS --max-time 10 -o reuse.json -w '%{http_code}' -u "$OIDC_ID:$OIDC_SECRET" -d grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$CB" --data-urlencode "code_verifier=$VERIFIER" \
  "$TOKEN_EP" >code.txt || true
check oidc/token/code_reuse_refused "reused code: $(cat code.txt) $(head -c 200 reuse.json)" \
  bash -c '[[ "$(cat code.txt)" == 400 ]] && grep -q invalid_grant reuse.json'
oidc_authorize jar_bob "$OIDC_ID" "openid" "&login_hint=bob"
curl -sS --max-time 10 -o badver.json -w '%{http_code}' -u "$OIDC_ID:$OIDC_SECRET" -d grant_type=authorization_code \
  --data-urlencode "code=$(qparam "$LOC" code)" --data-urlencode "redirect_uri=$CB" \
  --data-urlencode "code_verifier=$(rand)$(rand)$(rand)" "$TOKEN_EP" >code.txt || true
check oidc/token/wrong_verifier_refused "wrong verifier: $(cat code.txt) $(head -c 200 badver.json)" \
  bash -c '[[ "$(cat code.txt)" == 400 ]] && grep -q invalid_grant badver.json'
oidc_authorize jar_bob "$OIDC_ID" "openid" "&login_hint=bob"
curl -sS --max-time 10 -o badsecret.json -w '%{http_code}' -u "$OIDC_ID:wrong-secret" -d grant_type=authorization_code \
  --data-urlencode "code=$(qparam "$LOC" code)" --data-urlencode "redirect_uri=$CB" \
  --data-urlencode "code_verifier=$VERIFIER" "$TOKEN_EP" >code.txt || true
check oidc/token/wrong_secret_refused "wrong secret: $(cat code.txt) $(head -c 200 badsecret.json)" \
  bash -c '[[ "$(cat code.txt)" == 401 ]] && grep -q invalid_client badsecret.json'

# -- 3. no login_hint -> the first account; offline_access (+ prompt=consent) -> refresh token ----
oidc_authorize jar_default "$OIDC_ID" "openid email profile groups roles offline_access" "&prompt=consent"
curl -sS --max-time 10 -o tok_alice.json -u "$OIDC_ID:$OIDC_SECRET" -d grant_type=authorization_code \
  --data-urlencode "code=$(qparam "$LOC" code)" --data-urlencode "redirect_uri=$CB" \
  --data-urlencode "code_verifier=$VERIFIER" "$TOKEN_EP" || true
"$NODE" "$IDP_DIR/verify_id_token.mjs" --issuer "$ISS" --audience "$OIDC_ID" --nonce "$NONCE" \
  "$(json tok_alice.json 'd.get("id_token", "x")')" >idt_alice.json 2>idt_alice.err || true
check oidc/default_account "no login_hint did not sign in alice: $(cat idt_alice.err) $(head -c 300 idt_alice.json)" python3 -c '
import json
p = json.load(open("idt_alice.json"))["payload"]
assert p["sub"] == "alice" and p["email_verified"] is True and p["groups"] == ["engineering", "mcp-admins"] and p["roles"] == ["admin"]'
curl -sS --max-time 10 -o refreshed.json -u "$OIDC_ID:$OIDC_SECRET" -d grant_type=refresh_token \
  --data-urlencode "refresh_token=$(json tok_alice.json 'd.get("refresh_token", "none")')" "$TOKEN_EP" || true
check oidc/refresh_token "refresh: $(head -c 300 refreshed.json)" python3 -c '
import json
d = json.load(open("refreshed.json")); t = json.load(open("tok_alice.json"))
assert t["refresh_token"] and d["access_token"] and d["access_token"] != t["access_token"] and d["id_token"]'

# -- 4. the same cookie jar, another login_hint: the other account, not the session's --------------
oidc_authorize jar_default "$OIDC_ID" "openid" "&login_hint=bob@example.test"
curl -sS --max-time 10 -o tok_switch.json -u "$OIDC_ID:$OIDC_SECRET" -d grant_type=authorization_code \
  --data-urlencode "code=$(qparam "$LOC" code)" --data-urlencode "redirect_uri=$CB" \
  --data-urlencode "code_verifier=$VERIFIER" "$TOKEN_EP" || true
check oidc/login_hint_switches_account "login_hint=bob@example.test in alice's session: $(head -c 300 tok_switch.json)" \
  python3 -c '
import base64, json
t = json.load(open("tok_switch.json"))["id_token"].split(".")[1]
assert json.loads(base64.urlsafe_b64decode(t + "=="))["sub"] == "bob"'

# -- 5. client_secret_post, ES256 ID tokens ------------------------------------------------------
oidc_authorize jar_post "$POST_ID" "openid email" "&login_hint=alice"
curl -sS --max-time 10 -o tok_post.json -d grant_type=authorization_code -d "client_id=$POST_ID" \
  --data-urlencode "client_secret=$POST_SECRET" --data-urlencode "code=$(qparam "$LOC" code)" \
  --data-urlencode "redirect_uri=$CB" --data-urlencode "code_verifier=$VERIFIER" "$TOKEN_EP" || true
"$NODE" "$IDP_DIR/verify_id_token.mjs" --issuer "$ISS" --audience "$POST_ID" --nonce "$NONCE" --alg ES256 \
  "$(json tok_post.json 'd.get("id_token", "x")')" >idt_post.json 2>idt_post.err || true
check oidc/token/client_secret_post_es256 "$(cat idt_post.err) $(head -c 300 tok_post.json)" python3 -c '
import json; p = json.load(open("idt_post.json"))["payload"]; assert p["sub"] == "alice" and p["email"] == "alice@example.test"'

# -- 6. refusals at the authorization endpoint ----------------------------------------------------
oidc_authorize jar_deny "$OIDC_ID" "openid" "&login_hint=deny"
check oidc/deny "login_hint=deny did not come back as access_denied with the state: $LOC" \
  bash -c '[[ "$1" == access_denied && "$2" == "$3" && -z "$4" ]]' _ "$(qparam "$LOC" error)" "$(qparam "$LOC" state)" "$STATE" "$(qparam "$LOC" code)"
oidc_authorize jar_unknown "$OIDC_ID" "openid" "&login_hint=nobody@example.test"
check oidc/unknown_login_hint_denied "unknown login_hint: $LOC" eq "$(qparam "$LOC" error)" access_denied
NOPKCE_STATE="$(rand)"
LOC="$(follow "$AUTH_EP?response_type=code&client_id=$OIDC_ID&redirect_uri=$CB&scope=openid&state=$NOPKCE_STATE&nonce=n" jar_nopkce "$CB")" || LOC=""
check oidc/pkce_required "no code_challenge was not refused: $LOC" \
  bash -c '[[ "$1" == invalid_request && "$2" == "$3" ]]' _ "$(qparam "$LOC" error)" "$(qparam "$LOC" state)" "$NOPKCE_STATE"

# -- 7. the accounts file is read again when it changes -------------------------------------------
sed -i 's/"groups": \["sales"\]/"groups": ["sales", "support"]/' oidc_accounts.json
oidc_authorize jar_reload "$OIDC_ID" "openid groups" "&login_hint=bob"
curl -sS --max-time 10 -o tok_reload.json -u "$OIDC_ID:$OIDC_SECRET" -d grant_type=authorization_code \
  --data-urlencode "code=$(qparam "$LOC" code)" --data-urlencode "redirect_uri=$CB" \
  --data-urlencode "code_verifier=$VERIFIER" "$TOKEN_EP" || true
curl -sS --max-time 10 -o ui_reload.json -H "Authorization: Bearer $(json tok_reload.json 'd.get("access_token", "x")')" "$USERINFO_EP" || true
check oidc/accounts_reloaded "userinfo after the edit: $(head -c 300 ui_reload.json)" python3 -c '
import base64, json
d = json.load(open("ui_reload.json")); t = json.load(open("tok_reload.json"))["id_token"].split(".")[1]
assert d["sub"] == "bob" and d["groups"] == ["sales", "support"]
assert json.loads(base64.urlsafe_b64decode(t + "=="))["groups"] == ["sales", "support"]'

# =================================================================================================
# GitHub stand-in
# =================================================================================================
cat >github_accounts.json <<'EOF'
[
  {"login": "octo-alice", "id": 583231, "name": "Alice Octo", "email": "alice@example.test",
   "orgs": ["acme", {"login": "initech", "public": true, "role": "admin"}],
   "teams": [{"org": "acme", "slug": "platform", "name": "Platform"}]},
  {"login": "octo-bob", "id": 583232, "name": "Bob Octo", "email": null,
   "emails": [{"email": "bob-private@example.test", "primary": true, "verified": true, "visibility": "private"},
              {"email": "bob-old@example.test", "primary": false, "verified": false}],
   "orgs": ["acme"], "teams": [{"org": "acme", "slug": "sales", "name": "Sales"}]},
  {"login": "octo-carol", "id": 583233, "name": "Carol Octo", "email": "carol@example.test"}
]
EOF
GH_ID="Iv1.e2e$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
GH_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(20))')"
# Registered callback without a port: GitHub lets a loopback redirect_uri use any port.
start_fixture_js github "$IDP_DIR/fake_github.mjs" --port 0 --client-id "$GH_ID" --client-secret "$GH_SECRET" \
  --redirect-uris "http://127.0.0.1/callback" --accounts github_accounts.json
GH="$READY_URL"
log "fake GitHub: $GH"

# gh_authorize QUERY_EXTRA: authorize with a fresh state and PKCE; sets STATE, VERIFIER, LOC.
gh_authorize() {
  STATE="$(rand)"
  pkce
  LOC="$(follow "$GH/login/oauth/authorize?client_id=$GH_ID&redirect_uri=$CB&state=$STATE&code_challenge=$CHALLENGE&code_challenge_method=S256$1" jar_gh "$CB")" || LOC=""
}
# gh_token OUT CODE [curl args...]: POST the access token request; the HTTP status into code.txt.
gh_token() {
  local out="$1" code="$2"
  shift 2
  curl -sS --max-time 10 -o "$out" -w '%{http_code}' --data-urlencode "code=$code" \
    --data-urlencode "redirect_uri=$CB" "$@" "$GH/login/oauth/access_token" >code.txt || true
}
gh_api() { # gh_api OUT PATH [curl args...]: GET the REST path; prints the HTTP status.
  local out="$1" path="$2"
  shift 2
  curl -sS --max-time 10 -o "$out" -w '%{http_code}' "$@" "$GH$path" || true
}

# -- 1. octo-bob by login=, with PKCE; Basic client credentials; JSON answer ---------------------
gh_authorize "&login=octo-bob&scope=read:user%20user:email%20read:org"
GH_CODE="$(qparam "$LOC" code)"
check github/authorize "no code or wrong state: $LOC" \
  bash -c '[[ -n "$1" && "$2" == "$3" ]]' _ "$GH_CODE" "$(qparam "$LOC" state)" "$STATE"
gh_token badsecret.json "$GH_CODE" -H 'Accept: application/json' -u "$GH_ID:not-the-secret" --data-urlencode "code_verifier=$VERIFIER"
check github/token/wrong_secret "wrong secret: $(cat code.txt) $(head -c 300 badsecret.json)" python3 -c '
import json; d = json.load(open("badsecret.json")); assert open("code.txt").read() == "200" and d["error"] == "incorrect_client_credentials"'
gh_token tok_gh.json "$GH_CODE" -H 'Accept: application/json' -u "$GH_ID:$GH_SECRET" --data-urlencode "code_verifier=$VERIFIER"
check github/token/json "token answer: $(cat code.txt) $(head -c 300 tok_gh.json)" python3 -c '
import json; d = json.load(open("tok_gh.json"))
assert d["access_token"].startswith("gho_") and d["token_type"] == "bearer" and d["scope"] == "read:user,user:email,read:org"'
GH_TOKEN="$(json tok_gh.json 'd.get("access_token", "x")')"
gh_token reuse_gh.json "$GH_CODE" -H 'Accept: application/json' -u "$GH_ID:$GH_SECRET" --data-urlencode "code_verifier=$VERIFIER"
check github/token/code_reuse "reused code: $(cat code.txt) $(head -c 300 reuse_gh.json)" python3 -c '
import json; d = json.load(open("reuse_gh.json")); assert open("code.txt").read() == "200" and d["error"] == "bad_verification_code"'

# -- 2. wrong verifier; missing verifier; the form-encoded answer (no Accept) with form credentials --
gh_authorize "&login=octo-bob"
gh_token badver_gh.json "$(qparam "$LOC" code)" -H 'Accept: application/json' -d "client_id=$GH_ID" \
  -d "client_secret=$GH_SECRET" --data-urlencode "code_verifier=$(rand)$(rand)$(rand)"
check github/token/wrong_verifier "wrong verifier: $(cat code.txt) $(head -c 300 badver_gh.json)" python3 -c '
import json; d = json.load(open("badver_gh.json")); assert open("code.txt").read() == "200" and d["error"] == "bad_verification_code"'
gh_authorize "&login=octo-bob"
gh_token nover_gh.json "$(qparam "$LOC" code)" -H 'Accept: application/json' -d "client_id=$GH_ID" -d "client_secret=$GH_SECRET"
check github/token/missing_verifier "no verifier for a PKCE code: $(head -c 300 nover_gh.json)" python3 -c '
import json; d = json.load(open("nover_gh.json")); assert d["error"] == "bad_verification_code"'
STATE="$(rand)"
LOC="$(follow "$GH/login/oauth/authorize?client_id=$GH_ID&redirect_uri=$CB&state=$STATE" jar_gh "$CB")" || LOC=""
gh_token form_gh.txt "$(qparam "$LOC" code)" -d "client_id=$GH_ID" -d "client_secret=$GH_SECRET"
check github/token/form_encoded "form answer (no PKCE, default account, no scope): $(head -c 300 form_gh.txt)" python3 -c '
import urllib.parse as u
d = u.parse_qs(open("form_gh.txt").read(), keep_blank_values=True)
assert d["access_token"][0].startswith("gho_") and d["token_type"] == ["bearer"] and d["scope"] == [""]'
GH_NOSCOPE_TOKEN="$(python3 -c 'import urllib.parse as u; print(u.parse_qs(open("form_gh.txt").read()).get("access_token", ["x"])[0])')"

# -- 3. REST as octo-bob -----------------------------------------------------------------------------
st="$(gh_api user.json /user -H "Authorization: Bearer $GH_TOKEN")"
check github/user "GET /user: $st $(head -c 300 user.json)" python3 -c '
import json, sys; d = json.load(open("user.json"))
assert sys.argv[1] == "200" and d["login"] == "octo-bob" and d["id"] == 583232 and d["name"] == "Bob Octo" and d["email"] is None and d["type"] == "User"' "$st"
st="$(gh_api user2.json /user -H "Authorization: token $GH_TOKEN")"
check github/user/token_scheme "Authorization: token ...: $st" bash -c '[[ "$1" == 200 ]] && grep -q octo-bob user2.json' _ "$st"
st="$(gh_api emails.json /user/emails -H "Authorization: Bearer $GH_TOKEN")"
check github/user/emails "GET /user/emails: $st $(head -c 300 emails.json)" python3 -c '
import json, sys; d = json.load(open("emails.json"))
assert sys.argv[1] == "200"
p = [e for e in d if e["primary"]]
assert len(p) == 1 and p[0]["email"] == "bob-private@example.test" and p[0]["verified"] is True
assert any(e["email"] == "bob-old@example.test" and e["verified"] is False for e in d)' "$st"
st="$(gh_api orgs.json /user/orgs -H "Authorization: Bearer $GH_TOKEN")"
check github/user/orgs "GET /user/orgs: $st $(head -c 300 orgs.json)" python3 -c '
import json, sys; d = json.load(open("orgs.json")); assert sys.argv[1] == "200" and [o["login"] for o in d] == ["acme"] and d[0]["id"] > 0' "$st"
st="$(gh_api teams.json /user/teams -H "Authorization: Bearer $GH_TOKEN")"
check github/user/teams "GET /user/teams: $st $(head -c 300 teams.json)" python3 -c '
import json, sys; d = json.load(open("teams.json"))
assert sys.argv[1] == "200" and [(t["organization"]["login"], t["slug"]) for t in d] == [("acme", "sales")]' "$st"
check github/org_member_204 "octo-alice in acme" eq "$(gh_api /dev/null /orgs/acme/members/octo-alice -H "Authorization: Bearer $GH_TOKEN")" 204
check github/org_nonmember_404 "octo-carol in acme" eq "$(gh_api /dev/null /orgs/acme/members/octo-carol -H "Authorization: Bearer $GH_TOKEN")" 404
check github/org_not_mine_302 "octo-bob asking about initech (not his org)" \
  eq "$(gh_api /dev/null /orgs/initech/members/octo-alice -H "Authorization: Bearer $GH_TOKEN")" 302
check github/api_v3_prefix "GET /api/v3/user" eq "$(gh_api /dev/null /api/v3/user -H "Authorization: Bearer $GH_TOKEN")" 200

sed -i 's/"slug": "sales", "name": "Sales"}\]/"slug": "sales", "name": "Sales"}, {"org": "globex", "slug": "ops"}]/' github_accounts.json
gh_api teams2.json /user/teams -H "Authorization: Bearer $GH_TOKEN" >/dev/null
check github/accounts_reloaded "GET /user/teams after the edit: $(head -c 300 teams2.json)" python3 -c '
import json; d = json.load(open("teams2.json"))
assert [(t["organization"]["login"], t["slug"]) for t in d] == [("acme", "sales"), ("globex", "ops")]'

# -- 4. REST refusals ----------------------------------------------------------------------------
check github/no_token_401 "GET /user without a token" eq "$(gh_api /dev/null /user)" 401
check github/bad_token_401 "GET /user with a made-up token" eq "$(gh_api /dev/null /user -H 'Authorization: Bearer gho_madeup')" 401
check github/no_user_agent_403 "GET /user without User-Agent" \
  eq "$(gh_api /dev/null /user -H "Authorization: Bearer $GH_TOKEN" -H 'User-Agent:')" 403
check github/scope/emails_404 "/user/emails with no scope" \
  eq "$(gh_api /dev/null /user/emails -H "Authorization: Bearer $GH_NOSCOPE_TOKEN")" 404
check github/scope/orgs_403 "/user/orgs with no scope" \
  eq "$(gh_api /dev/null /user/orgs -H "Authorization: Bearer $GH_NOSCOPE_TOKEN")" 403

# -- 5. refusals at the authorize page; revocation -------------------------------------------------
gh_authorize "&login=deny"
check github/deny "login=deny: $LOC" \
  bash -c '[[ "$1" == access_denied && "$2" == "$3" && -z "$4" ]]' _ "$(qparam "$LOC" error)" "$(qparam "$LOC" state)" "$STATE" "$(qparam "$LOC" code)"
LOC="$(follow "$GH/login/oauth/authorize?client_id=$GH_ID&redirect_uri=http://127.0.0.1:$DEAD_PORT/elsewhere&state=s1" jar_gh "http://127.0.0.1/callback")" || LOC=""
check github/redirect_uri_mismatch "a redirect_uri outside the callback: $LOC" eq "$(qparam "$LOC" error)" redirect_uri_mismatch
st="$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X DELETE -u "$GH_ID:$GH_SECRET" \
  -H 'Content-Type: application/json' -d "{\"access_token\": \"$GH_TOKEN\"}" "$GH/applications/$GH_ID/token" || true)"
after="$(gh_api /dev/null /user -H "Authorization: Bearer $GH_TOKEN")"
check github/revoke "DELETE /applications/{client_id}/token: $st, then GET /user: $after" \
  bash -c '[[ "$1" == 204 && "$2" == 401 ]]' _ "$st" "$after"

# ---- summary ------------------------------------------------------------------------------------
if [[ "$E2E_FAILED" -gt 0 ]]; then
  for f in "$E2E_SUITE_LOG_DIR"/*.log; do
    log "---- $(basename "$f") (last 20 lines)"
    tail -n 20 "$f" >&2 || true
  done
fi
suite_summary
