#!/usr/bin/env bash
# Differential suite: what mcpgate authorizes and audits is exactly what the upstream executes.
#
# Three recording upstreams with one surface (tools echo/admin_tool/denied_tool, resources
# test://public and test://admin, prompts greet/admin_prompt), each over Streamable HTTP and
# stdio: the official Python SDK (differential/upstream_python.py), the official TypeScript SDK
# (differential/upstream_ts.mjs) and rmcp (mcpgate-example-server --profile differential). Each
# appends one JSON line per execution to a file. For each of the 6 upstream x transport pairs,
# `mcpgate serve` runs in front with the suite's policy (differential/corpus.py POLICY_TOML) and
# two keys (a read-only user, an admin); differential.py sends ~130 tricky raw bodies with each
# key and checks every message against the recording and `mcpgate audit --json`. A second gateway
# per pair adds a per-tool limit on echo (3 a minute) and tries to run echo past it.
# Then the witnesses: the same duplicate-key body straight to each HTTP upstream, and a raw line
# break smuggle straight into each stdio upstream, show the upstreams run what a byte-forwarding
# gateway would have let through (so the checks above can fail).
#
# DIFFERENTIAL_ONLY="python-stdio rmcp-http" limits the pairs; logs: target/e2e-logs/differential/;
# a case x pair matrix with the reason for every failure: target/differential-summary.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_tools
e2e_init differential
for bin in "$MCPGATE_BIN" "$MCPGATE_EXAMPLE_BIN"; do
  [[ -x "$bin" ]] || { fail "differential/binaries" "$bin not found (cargo build --profile ci --workspace)"; suite_summary; exit 1; }
done

DRIVER=("$VENV_PY" "$E2E_DIR/differential.py")
USER_KEY="$(new_test_key)"
ADMIN_KEY="$(new_test_key)"
GATEWAY_KEYS_JSON="$(python3 -c 'import json, sys
print(json.dumps({sys.argv[1]: {"name": "differential reader", "userId": "diff-user", "role": "user", "permissions": ["read"]},
                  sys.argv[2]: {"name": "differential admin", "userId": "diff-admin", "role": "admin", "permissions": ["*"]}}))' \
  "$USER_KEY" "$ADMIN_KEY")"
# The policy is written once, in corpus.py, next to the model the driver judges with.
"$VENV_PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import corpus; print(corpus.POLICY_TOML)' \
  "$E2E_DIR/differential" >"$E2E_TMP/policy.toml"
"$VENV_PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import corpus; print(corpus.POLICY_TOML + corpus.LIMIT_TOML)' \
  "$E2E_DIR/differential" >"$E2E_TMP/policy-limit.toml"

# upstream_cmd NAME RECORD: the command line (an array, UPSTREAM_CMD) of one recording upstream,
# without its transport flag.
upstream_cmd() {
  case "$1" in
    python) UPSTREAM_CMD=("$VENV_PY" "$E2E_DIR/differential/upstream_python.py" --record "$2") ;;
    typescript) UPSTREAM_CMD=("$NODE22" "$E2E_DIR/differential/upstream_ts.mjs" --node-modules "$NPM_TOOLS_DIR" --record "$2") ;;
    rmcp) UPSTREAM_CMD=("$MCPGATE_EXAMPLE_BIN" --profile differential --record "$2") ;;
  esac
}

# start_upstream NAME CMD...: an HTTP upstream that prints "listening on http://127.0.0.1:PORT/mcp".
# Sets UPSTREAM_URL and UPSTREAM_PID; returns 1 if it does not come up.
start_upstream() {
  local name="$1" logfile i
  shift
  logfile="$E2E_SUITE_LOG_DIR/$name.log"
  spawn "$logfile" "$@"
  UPSTREAM_PID=$SPAWNED_PID
  for i in $(seq 1 300); do
    UPSTREAM_URL="$(grep -o -m1 'listening on http://127\.0\.0\.1:[0-9]*/mcp' "$logfile" 2>/dev/null | sed 's/^listening on //' || true)"
    [[ -n "$UPSTREAM_URL" ]] && return 0
    kill -0 "$UPSTREAM_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$logfile" >&2 || true
  log "ERROR: $name did not start listening (log: $logfile)"
  return 1
}

# stop PID...: ends the process groups started for one pair (the exit trap would too, later).
stop() {
  local pid
  for pid in "$@"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    wait "$pid" 2>/dev/null || true
  done
}

# run_driver LOGNAME ARGS...: differential.py, its PASS/FAIL lines counted here.
run_driver() {
  local logname="$1"
  shift
  run_counted "differential/$logname" 600 "${DRIVER[@]}" "$@"
}

# pair UPSTREAM TRANSPORT VARIANT: one recording upstream, one gateway in front, one driver run.
pair() {
  local up="$1" tr="$2" variant="$3" label="$1-$2" record gw_pid up_pid="" cfg="$E2E_TMP/policy.toml"
  [[ "$variant" == limit ]] && cfg="$E2E_TMP/policy-limit.toml"
  record="$E2E_TMP/$label-$variant.jsonl"
  : >"$record"
  upstream_cmd "$up" "$record"
  log "$label ($variant): ${UPSTREAM_CMD[*]##*/} behind mcpgate"
  if [[ "$tr" == http ]]; then
    start_upstream "upstream-$label-$variant" "${UPSTREAM_CMD[@]}" --http 127.0.0.1:0 ||
      { fail "differential/$label/$variant/upstream-start" "see $E2E_SUITE_LOG_DIR"; return 0; }
    up_pid=$UPSTREAM_PID
    start_gateway "gateway-$label-$variant" --config "$cfg" --upstream-url "$UPSTREAM_URL" ||
      { fail "differential/$label/$variant/gateway-start" "see $E2E_SUITE_LOG_DIR"; stop "$up_pid"; return 0; }
  else
    start_gateway "gateway-$label-$variant" --config "$cfg" \
      --upstream-cmd "$(printf '%q ' "${UPSTREAM_CMD[@]}")--stdio" ||
      { fail "differential/$label/$variant/gateway-start" "see $E2E_SUITE_LOG_DIR"; return 0; }
  fi
  gw_pid=$GATEWAY_PID
  run_driver "$label-$variant" gateway --label "$label" --variant "$variant" --url "$GATEWAY_URL" \
    --store "$E2E_TMP/gateway-$label-$variant.db" --record "$record" --mcpgate "$MCPGATE_BIN" \
    --user-key "$USER_KEY" --admin-key "$ADMIN_KEY" --rows "$E2E_SUITE_LOG_DIR/rows.jsonl"
  stop "$gw_pid" $up_pid
}

PAIRS="${DIFFERENTIAL_ONLY:-python-http python-stdio typescript-http typescript-stdio rmcp-http rmcp-stdio}"
for p in $PAIRS; do
  pair "${p%-*}" "${p##*-}" main
  pair "${p%-*}" "${p##*-}" limit
done

# ---- witnesses: no gateway; the upstreams run what a byte-forwarding gateway would pass ------
log "witnesses: the same bodies straight to the upstreams"
for up in python typescript rmcp; do
  record="$E2E_TMP/witness-$up-http.jsonl"
  upstream_cmd "$up" "$record"
  if start_upstream "witness-$up-http" "${UPSTREAM_CMD[@]}" --http 127.0.0.1:0; then
    # rmcp refuses duplicate fields (serde), so it is shown, not asserted.
    run_driver "witness-$up-http" witness --label "$up-http" --url "$UPSTREAM_URL" --record "$record" \
      --expect "$([[ $up == rmcp ]] && echo none || echo last-key-wins)"
    stop "$UPSTREAM_PID"
  else
    fail "differential/witness/$up-http/start" "see $E2E_SUITE_LOG_DIR"
  fi
  record="$E2E_TMP/witness-$up-stdio.jsonl"
  upstream_cmd "$up" "$record"
  run_driver "witness-$up-stdio-lf" witness-stdio --label "$up-stdio" --record "$record" --sep lf -- \
    "${UPSTREAM_CMD[@]}" --stdio
done
# Python's stdio reader uses universal newlines: a lone CR ends a line there too.
upstream_cmd python "$E2E_TMP/witness-python-stdio-cr.jsonl"
run_driver "witness-python-stdio-cr" witness-stdio --label python-stdio --record "$E2E_TMP/witness-python-stdio-cr.jsonl" \
  --sep cr -- "${UPSTREAM_CMD[@]}" --stdio

if [[ -s "$E2E_SUITE_LOG_DIR/rows.jsonl" ]]; then
  "${DRIVER[@]}" summary --rows "$E2E_SUITE_LOG_DIR/rows.jsonl" --out "$TARGET_DIR/differential-summary.md" || true
fi
suite_summary
