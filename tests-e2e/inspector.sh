#!/usr/bin/env bash
# The MCP Inspector CLI through mcpgate, with API-key authentication on:
#   MCP_API_KEYS='{<fresh key>: admin "e2e"}' mcpgate serve --upstream-url \
#     <mcpgate-example-server --http 127.0.0.1:0 --profile demo>
# tools/list and tools/call (echo, add, the gateway's whoami) with --header "X-API-Key: ...",
# tools/list with Authorization: Bearer, the demo's inspect tool to see that the caller's key
# is not passed upstream, and tools/list with no key (must be refused, not hang).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_npm_tools
e2e_init inspector

start_fixture fixture-demo demo
KEY="$(new_test_key)"
GATEWAY_KEYS_JSON="$(keys_json_for "$KEY")"
start_gateway gateway-upstream-url-demo --upstream-url "$FIXTURE_URL" ||
  { fail "inspector/gateway-start" "mcpgate serve did not start (see above)"; suite_summary; exit 1; }
URL="$GATEWAY_URL"
log "MCP Inspector CLI against $URL"

# The Inspector keeps state (OAuth, catalog) under ~/.mcp-inspector: give it a throwaway home.
mkdir -p "$E2E_TMP/home"

N=0
# inspect NAME PY_ASSERTION INSPECTOR_ARGS...: runs the Inspector CLI; PY_ASSERTION is a Python
# expression over `out` (its parsed JSON stdout) that must be true.
inspect() {
  local name="$1" assertion="$2" rc=0 out err verdict
  shift 2
  N=$((N + 1))
  out="$E2E_SUITE_LOG_DIR/$N.$name.stdout"
  err="$E2E_SUITE_LOG_DIR/$N.$name.stderr"
  HOME="$E2E_TMP/home" limited 60 "$NODE22" "$INSPECTOR_JS" --cli "$URL" --transport http "$@" \
    </dev/null >"$out" 2>"$err" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    fail "inspector/$name" "exit $rc: $(head -c 300 "$out" "$err" | tr '\n' ' ')"
    return 0
  fi
  verdict="$(python3 - "$out" "$assertion" <<'PY'
import json, os, re, sys
def texts(o):
    return [c.get("text", "") for c in o.get("content", []) if c.get("type") == "text"]
def nums(v):
    if isinstance(v, bool) or v is None:
        return []
    if isinstance(v, (int, float)):
        return [float(v)]
    if isinstance(v, str):
        return [float(m) for m in re.findall(r"-?\d+(?:\.\d+)?", v)]
    if isinstance(v, dict):
        v = list(v.values())
    return [n for x in v for n in nums(x)]
try:
    out = json.load(open(sys.argv[1], encoding="utf-8"))
except Exception as e:
    print(f"stdout is not JSON: {e}"); sys.exit(0)
try:
    ok = eval(sys.argv[2], {"out": out, "texts": texts, "nums": nums, "json": json,
                            "key": os.environ.get("KEY", "\0")})
except Exception as e:
    ok = False
print("ok" if ok else "assertion failed: " + sys.argv[2] + " on " + json.dumps(out)[:300])
PY
)"
  if [[ "$verdict" == ok ]]; then pass "inspector/$name"; else fail "inspector/$name" "$verdict"; fi
}

# inspect_refused NAME INSPECTOR_ARGS...: the CLI must exit non-zero (promptly) with an error.
inspect_refused() {
  local name="$1" rc=0 out err
  shift
  N=$((N + 1))
  out="$E2E_SUITE_LOG_DIR/$N.$name.stdout"
  err="$E2E_SUITE_LOG_DIR/$N.$name.stderr"
  HOME="$E2E_TMP/home" limited 30 "$NODE22" "$INSPECTOR_JS" --cli "$URL" --transport http "$@" \
    </dev/null >"$out" 2>"$err" || rc=$?
  if [[ "$rc" -eq 0 ]]; then
    fail "inspector/$name" "succeeded without a valid key: $(head -c 200 "$out")"
  elif [[ "$rc" -eq 124 || "$rc" -eq 137 ]]; then
    fail "inspector/$name" "no answer within 30s (a hang, not a refusal)"
  else
    pass "inspector/$name"
  fi
}

TOOLS='{"echo", "add"} <= {t["name"] for t in out["tools"]}'
ECHO_HI='not out.get("isError") and any("hi" in t for t in texts(out))'
ADD_5='not out.get("isError") and 5.0 in nums(texts(out)) + nums(out.get("structuredContent"))'

WHOAMI='(out.get("structuredContent") or json.loads(texts(out)[0])).get("user_id") == "e2e"'
NO_KEY_UPSTREAM='"headers" in json.dumps(out) and key not in json.dumps(out)'

H=(--header "X-API-Key: $KEY")
inspect tools-list "$TOOLS" --method tools/list "${H[@]}"
inspect tools-call-echo "$ECHO_HI" --method tools/call --tool-name echo --tool-arg text=hi "${H[@]}"
inspect tools-call-add "$ADD_5" --method tools/call --tool-name add --tool-arg a=2 --tool-arg b=3 "${H[@]}"
inspect whoami "$WHOAMI" --method tools/call --tool-name whoami "${H[@]}"
inspect tools-list-bearer "$TOOLS" --method tools/list --header "Authorization: Bearer $KEY"
KEY="$KEY" inspect key-not-forwarded-upstream "$NO_KEY_UPSTREAM" --method tools/call --tool-name inspect "${H[@]}"
inspect_refused no-key-refused --method tools/list

# A JWT bearer token (HS256, JWT_SECRET) instead of a key; the token is not passed upstream either.
start_jwt_gateway gateway-jwt --upstream-url "$FIXTURE_URL" ||
  { fail "inspector/jwt-gateway-start" "mcpgate serve (JWT) did not start"; suite_summary; exit 1; }
URL="$GATEWAY_URL"
WHOAMI_JWT='(out.get("structuredContent") or json.loads(texts(out)[0])).get("user_id") == "jwt-user"'
J=(--header "Authorization: Bearer $JWT_TOKEN")
inspect jwt-tools-list "$TOOLS" --method tools/list "${J[@]}"
inspect jwt-whoami "$WHOAMI_JWT" --method tools/call --tool-name whoami "${J[@]}"
KEY="$JWT_TOKEN" inspect jwt-not-forwarded-upstream "$NO_KEY_UPSTREAM" --method tools/call --tool-name inspect "${J[@]}"
inspect_refused bad-jwt-refused --method tools/list --header "Authorization: Bearer $BAD_JWT_TOKEN"

suite_summary
