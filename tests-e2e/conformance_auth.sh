#!/usr/bin/env bash
# The official MCP conformance suite's authorization-server scenarios against mcpgate's own
# authorization server. Only the 0.2 alphas of @modelcontextprotocol/conformance have them
# (`conformance authorization`; 0.1.16, the pin conformance.sh uses, has auth scenarios for
# clients only), so tests-e2e/package.json installs 0.2.0-alpha.12 beside it as "conformance-next".
#   MCP_API_KEYS='{<fresh key>: admin "conformance-auth-user"}' mcpgate serve --listen 127.0.0.1:PORT \
#     --config <public_url = "http://127.0.0.1:PORT", [oauth]> \
#     --upstream-cmd "mcpgate-example-server --stdio --profile demo"
#   conformance authorization --url http://127.0.0.1:PORT --client-id <DCR public client> \
#     --resource http://127.0.0.1:PORT/mcp --port CALLBACK_PORT -o <dir>
# Scenarios: authorization-server-metadata-endpoint (RFC 8414 metadata: status, content type,
# required fields, issuer = the URL, S256, and a CIMD check) and authorization-code-grant (PKCE
# S256 code flow with a loopback callback on CALLBACK_PORT: the code, state and iss in the
# redirect, then the token response: 200, JSON, no-store, access_token and token_type). The suite
# prints the authorization URL and waits for a browser: tests-e2e/oauth_browser.py opens it signed
# in by X-API-Key and then the Location (the suite's callback).
# Each conformance check is one PASS/FAIL here (SUCCESS/FAILURE; WARNING, INFO and SKIPPED are
# printed, not counted), and a scenario with no result fails.
# Variant "no-resource" (RFC 8707 resource omitted, as the suite does by default): mcpgate requires
# the resource and answers invalid_target, so authorization-code-grant fails; it is reported but
# not counted unless CONFORMANCE_AUTH_STRICT=1 (MCP clients always send the resource).
# Then: no key or code in the gateway's log. Results: $E2E_LOG_DIR/conformance_auth/<variant>.*
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STRICT="${CONFORMANCE_AUTH_STRICT:-0}"
ensure_npm_tools
e2e_init conformance_auth

CONF_JS="$(npm_bin "$NPM_TOOLS_DIR" conformance-next conformance)"
[[ -f "$CONF_JS" ]] || die "conformance-next is not installed in $NPM_TOOLS_DIR (tests-e2e/package.json)"
CONF_VERSION="$("$NODE22" "$CONF_JS" --version 2>/dev/null || echo '?')"

USER_ID="conformance-auth-user"
if ! start_oauth_gateway gateway-oauth "$USER_ID"; then
  fail "conformance_auth/gateway-start" "mcpgate serve with [oauth] did not start (see above)"
  suite_summary
  exit 1
fi
ISSUER="$GATEWAY_BASE"
log "conformance $CONF_VERSION (authorization scenarios) against $ISSUER"
SECRETS_FILE="$E2E_TMP/seen-secrets.txt"
: >"$SECRETS_FILE"

# register PORT: a public client (DCR, token_endpoint_auth_method none) whose redirect URI is the
# suite's callback http://127.0.0.1:PORT/callback; prints its client_id.
register() {
  python3 - "$ISSUER/register" "$1" <<'PY'
import json, sys, urllib.request
body = {"client_name": "MCP conformance suite", "redirect_uris": [f"http://127.0.0.1:{sys.argv[2]}/callback"],
        "token_endpoint_auth_method": "none", "grant_types": ["authorization_code"], "response_types": ["code"]}
req = urllib.request.Request(sys.argv[1], data=json.dumps(body).encode(), headers={"content-type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(json.load(r)["client_id"])
except Exception as e:
    print(f"ERROR: {e}", file=sys.stderr)
PY
}

# judge VARIANT GATED: one line per conformance check from the run's checks.json files:
# "PASS|FAIL|INFO name: reason". Writes a copy of the results, codes redacted, to the logs.
judge() {
  python3 - "$E2E_TMP/$1.results" "$E2E_SUITE_LOG_DIR/$1" "$1" "$2" "$E2E_SUITE_LOG_DIR/$1.suite.log" <<'PY'
import glob, json, os, re, sys
results, logs, variant, gated, suite_log = sys.argv[1:]
expected = ["authorization-server-metadata-endpoint", "authorization-code-grant"]
seen = set()
out = []
for f in sorted(glob.glob(f"{results}/*/checks.json")):
    scen = next((s for s in expected if f"-{s}-" in os.path.basename(os.path.dirname(f)) + "-"), None)
    scen = scen or os.path.basename(os.path.dirname(f))
    seen.add(scen)
    checks = json.load(open(f, encoding="utf-8"))
    text = re.sub(r"(code=)[^&\"\s]+", r"\1<redacted>", json.dumps(checks, indent=2))
    os.makedirs(logs, exist_ok=True)
    open(f"{logs}/{scen}.checks.json", "w", encoding="utf-8").write(text)
    for c in checks:
        name = f"conformance_auth/{variant}/{scen}/{c.get('id') or c.get('name')}"
        st, why = c.get("status"), (c.get("errorMessage") or "")[:300]
        if st == "SUCCESS":
            out.append(f"PASS {name}" if gated == "1" else f"INFO {name}: SUCCESS")
        elif st == "FAILURE":
            out.append(f"{'FAIL' if gated == '1' else 'INFO'} {name}: FAILURE: {why} (log: {suite_log})")
        else:
            out.append(f"INFO {name}: {st}{': ' + why if why else ''}")
for s in expected:
    if s not in seen:
        out.append(f"{'FAIL' if gated == '1' else 'INFO'} conformance_auth/{variant}/{s}: no result (log: {suite_log})")
print("\n".join(out))
PY
}

# run_variant VARIANT GATED RESOURCE: registers a client, runs the suite (with --resource RESOURCE
# unless it is empty), plays the browser, and records the results (counted when GATED is 1).
run_variant() {
  local variant="$1" gated="$2" resource="$3" port cid log pid i au rc=0 line
  local extra=() bcheck=()
  if [[ -n "$resource" ]]; then extra=(--resource "$resource") && bcheck=(--resource "$resource"); fi
  port="$(free_port)"
  cid="$(register "$port")"
  if [[ -z "$cid" ]]; then
    fail "conformance_auth/$variant/register" "POST /register for a public client failed"
    return 0
  fi
  log="$E2E_SUITE_LOG_DIR/$variant.suite.log"
  spawn "$log" timeout 90 "$NODE22" "$CONF_JS" authorization --url "$ISSUER" --client-id "$cid" \
    --port "$port" -o "$E2E_TMP/$variant.results" "${extra[@]}"
  pid=$SPAWNED_PID
  au=""
  for i in $(seq 1 300); do # the suite prints the authorization URL for a person to open
    au="$(grep -m1 -o "^$ISSUER/authorize?[^[:space:]]*" "$log" 2>/dev/null || true)"
    [[ -n "$au" ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -n "$au" ]]; then
    OAUTH_BROWSER_KEY="$OAUTH_KEY" OAUTH_BROWSER_LOG="$E2E_TMP/$variant.visits.jsonl" \
      python3 "$E2E_DIR/oauth_browser.py" "$au" || true
  fi
  for i in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || rc=$?
  sed -n '/=== SUMMARY ===/,$p' "$log" | sed "s/^/  [$variant] /"
  E2E_RESULTS="" python3 "$E2E_DIR/oauth_browser.py" --check "$E2E_TMP/$variant.visits.jsonl" --issuer "$ISSUER" \
    --prefix "conformance_auth/$variant" --visits 1 --redirect-prefix "http://127.0.0.1:$port/callback?" \
    "${bcheck[@]}" --secrets-out "$SECRETS_FILE" >"$E2E_TMP/$variant.browser" || true
  while IFS= read -r line; do
    case "$line" in
      PASS\ * | FAIL\ * | INFO\ *)
        if [[ "$gated" != 1 ]]; then line="INFO ${line#* }"; fi
        case "$line" in
          PASS\ *) pass "${line#PASS }" ;;
          FAIL\ *) fail "$(sed 's/: .*//' <<<"${line#FAIL }")" "$(sed 's/^[^:]*: //' <<<"${line#FAIL }")" ;;
          INFO\ *) printf '%s\n' "$line" ;;
        esac
        ;;
    esac
  done < <(
    if [[ "$gated" == 1 && -z "$au" ]]; then echo "FAIL conformance_auth/$variant/browser: the suite printed no authorization URL (exit $rc; log: $log)"; fi
    # The browser's own checks are only for the variant whose sign-in is meant to succeed.
    if [[ "$gated" == 1 ]]; then cat "$E2E_TMP/$variant.browser"; fi
    judge "$variant" "$gated"
  )
  if [[ "$gated" != 1 ]]; then
    python3 - "$E2E_TMP/$variant.visits.jsonl" "$variant" <<'PY' || true
import json, re, sys
for line in open(sys.argv[1], encoding="utf-8"):
    v = json.loads(line)
    loc = re.sub(r"(code=)[^&]+", r"\1<redacted>", v.get("location", ""))
    print(f"INFO conformance_auth/{sys.argv[2]}/exchange: GET /authorize (X-API-Key) -> {v.get('status')} Location: {loc}")
PY
  fi
}

run_variant mcp 1 "$GATEWAY_URL"
run_variant no-resource "$([[ "$STRICT" == 1 ]] && echo 1 || echo 0)" ""

printf '%s\n' "${OAUTH_KEY##*_}" >>"$SECRETS_FILE"
SECRETS_MIN=2 check_no_secret_in_log "conformance_auth/no-secret-in-log" "$SECRETS_FILE" "$GATEWAY_LOG"

suite_summary
