#!/usr/bin/env bash
# The MCP Inspector CLI through mcpgate:
#   mcpgate serve --upstream-url <mcpgate-example-server --http 127.0.0.1:0 --profile demo>
# tools/list and tools/call (echo, add), without and with an extra header
# (--header "X-API-Key: ...", the path API keys will take).
#
# Environment: see lib.sh; MCPGATE_TEST_API_KEY: the key sent in the header runs (default: a
# dummy key, while the gateway runs without auth).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_npm_tools
e2e_init inspector

start_fixture fixture-demo demo
start_gateway gateway-upstream-url-demo --upstream-url "$FIXTURE_URL"
URL="$GATEWAY_URL"
KEY="${MCPGATE_TEST_API_KEY:-mcp_e2e_notarealsecret}"
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
  (cd "$E2E_TMP" && HOME="$E2E_TMP/home" timeout --kill-after=5 60 \
    "$NODE22" "$INSPECTOR_JS" --cli "$URL" --transport http "$@" </dev/null >"$out" 2>"$err") || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    fail "inspector/$name" "exit $rc: $(head -c 300 "$out" "$err" | tr '\n' ' ')"
    return 0
  fi
  verdict="$(python3 - "$out" "$assertion" <<'PY'
import json, re, sys
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
    ok = eval(sys.argv[2], {"out": out, "texts": texts, "nums": nums})
except Exception as e:
    ok = False
print("ok" if ok else "assertion failed: " + sys.argv[2] + " on " + json.dumps(out)[:300])
PY
)"
  if [[ "$verdict" == ok ]]; then pass "inspector/$name"; else fail "inspector/$name" "$verdict"; fi
}

TOOLS='{"echo", "add"} <= {t["name"] for t in out["tools"]}'
ECHO_HI='not out.get("isError") and any("hi" in t for t in texts(out))'
ADD_5='not out.get("isError") and 5.0 in nums(texts(out)) + nums(out.get("structuredContent"))'

inspect tools-list "$TOOLS" --method tools/list
inspect tools-call-echo "$ECHO_HI" --method tools/call --tool-name echo --tool-arg text=hi
inspect tools-call-add "$ADD_5" --method tools/call --tool-name add --tool-arg a=2 --tool-arg b=3
inspect tools-list-header "$TOOLS" --method tools/list --header "X-API-Key: $KEY"
inspect tools-call-echo-header "$ECHO_HI" --method tools/call --tool-name echo --tool-arg text=hi \
  --header "X-API-Key: $KEY"

suite_summary
