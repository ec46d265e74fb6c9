#!/usr/bin/env bash
# `mcpgate connect` against a server that is not mcpgate: FastMCP (PyPI, $FASTMCP_VERSION) with its
# own bearer-token checks (tests-e2e/fastmcp_server.py), driven by the official Python SDK's stdio
# client (tests-e2e/connect_client.py), which starts `mcpgate connect URL ...` as its "server":
#   - StaticTokenVerifier: --bearer env:FASTMCP_TOKEN (legacy, auto and 2026-07-28 modes);
#   - JWTVerifier (HS256, audience = the server's URL): tokens minted by the bridge with
#     --jwt-secret env:FASTMCP_JWT_SECRET and sub/client_id claims (default aud: the URL);
#   - each: connect, tools/list, echo, whoami (the identity FastMCP's verifier saw), an
#     elicitation and a sampling round trip; a wrong token, a wrong secret, a wrong audience and
#     no credential refused (a JSON-RPC error, not a hang);
#   - resumability: a FastMCP server whose echo closes its own SSE response stream mid-call
#     (ctx.close_sse_stream(), EventStore, retry 300 ms), so every answer arrives only on a stream
#     the bridge resumed with Last-Event-ID.
# Afterwards no token or secret may appear in the bridge's stderr, the clients' output or the
# servers' logs.
# FastMCP is installed on first use into $CACHE/venv-fastmcp (pip, bounded by
# FASTMCP_INSTALL_TIMEOUT seconds, default 900); a failed install is one FAIL, and the suite ends.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_python_sdk
e2e_init connect_fastmcp

FASTMCP_VERSION=4.1.2 # the newest that installs from this machine's PyPI mirror (bench/README.md)

# Sets FASTMCP_PY (a python with fastmcp==$FASTMCP_VERSION), installing it if needed; returns 1
# (after logging why) if that fails.
ensure_fastmcp() {
  local venv="$CACHE/venv-fastmcp" logf="$CACHE/install-fastmcp.log" rc=0
  FASTMCP_PY="$venv/bin/python"
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock-fastmcp"
  flock 8
  if [[ -x "$FASTMCP_PY" ]] &&
    [[ "$("$FASTMCP_PY" -c 'import fastmcp; print(fastmcp.__version__)' 2>/dev/null)" == "$FASTMCP_VERSION" ]]; then
    flock -u 8
    return 0
  fi
  log "installing fastmcp $FASTMCP_VERSION into $venv (pip, at most ${FASTMCP_INSTALL_TIMEOUT:-900}s; log: $logf)"
  rm -rf "$venv"
  if ! timeout 300 python3 -m venv "$venv" >"$logf" 2>&1 ||
    ! timeout "${FASTMCP_INSTALL_TIMEOUT:-900}" "$FASTMCP_PY" -m pip install --disable-pip-version-check \
      --no-input -q "fastmcp==$FASTMCP_VERSION" >>"$logf" 2>&1 ||
    ! "$FASTMCP_PY" -c 'import fastmcp, uvicorn' >>"$logf" 2>&1; then
    rc=1
    rm -rf "$venv"
  fi
  flock -u 8
  exec 8>&-
  return "$rc"
}

install_started=$SECONDS
if ! ensure_fastmcp; then
  fail "connect_fastmcp/install" "pip install fastmcp==$FASTMCP_VERSION failed or timed out: $(grep -v '^[[:space:]]*$' "$CACHE/install-fastmcp.log" 2>/dev/null | tail -n 1 | cut -c1-200)"
  suite_summary
  exit 1
fi
log "fastmcp $FASTMCP_VERSION ready in $((SECONDS - install_started))s"

# start_fastmcp NAME MODE [FLAGS...]: tests-e2e/fastmcp_server.py MODE PORT FLAGS on a free port
# (three tries; the port is chosen first since the JWT audience is the server's URL). Sets
# FM_URL, FM_LOG; returns 1 if it does not start.
start_fastmcp() {
  local name="$1" mode="$2" attempt port i
  shift 2
  for attempt in 1 2 3; do
    port="$(free_port)"
    FM_LOG="$E2E_SUITE_LOG_DIR/$name-$attempt.log"
    spawn "$FM_LOG" "$FASTMCP_PY" "$E2E_DIR/fastmcp_server.py" "$mode" "$port" "$@"
    for i in $(seq 1 300); do
      if grep -q "listening on http://127.0.0.1:$port/mcp" "$FM_LOG" 2>/dev/null; then
        FM_URL="http://127.0.0.1:$port/mcp"
        return 0
      fi
      kill -0 "$SPAWNED_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -TERM -- "-$SPAWNED_PID" 2>/dev/null || true
    log "$name did not start on port $port (attempt $attempt): $(tail -n 3 "$FM_LOG" 2>/dev/null)"
  done
  return 1
}

random_secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(40))'; }

SECRETS="$E2E_TMP/secrets.txt"
: >"$SECRETS"
ERRLOG="$E2E_SUITE_LOG_DIR/bridge.stderr"
: >"$ERRLOG"
SERVER_LOGS=()
RUNS=0
# client LABEL [connect_client.py options...] -- mcpgate connect ...
client() {
  local label="$1"
  shift
  RUNS=$((RUNS + 1))
  run_counted "connect_fastmcp/run-$RUNS-$label" 180 "$VENV_PY" "$E2E_DIR/connect_client.py" --label "$label" \
    --stderr-log "$ERRLOG" "$@"
}

FASTMCP_TOKEN="$(random_secret)"
WRONG_TOKEN="$(random_secret)"
FASTMCP_JWT_SECRET="$(random_secret)"
WRONG_SECRET="$(random_secret)"
printf '%s\n' "$FASTMCP_TOKEN" "$WRONG_TOKEN" "$FASTMCP_JWT_SECRET" "$WRONG_SECRET" >>"$SECRETS"

# ---- 1. StaticTokenVerifier, a bearer token -------------------------------------------------
if FASTMCP_TOKEN="$FASTMCP_TOKEN" start_fastmcp fastmcp-static static; then
  SERVER_LOGS+=("$FM_LOG")
  log "mcpgate connect against FastMCP (static token) at $FM_URL"
  client fastmcp-static-legacy --mode legacy --expect-user static-client --elicit --sample \
    --env "FASTMCP_TOKEN=$FASTMCP_TOKEN" -- "$MCPGATE_BIN" connect "$FM_URL" --bearer env:FASTMCP_TOKEN
  # Auto mode: server/discover through the bridge (under the version its _meta names) finds a
  # 2026-07-28 server, as the same client does directly; FastMCP 4.1.2's ctx.elicit and
  # create_message need the older era's server→client requests, so only tools here.
  client fastmcp-static-auto --mode auto --expect-user static-client \
    --env "FASTMCP_TOKEN=$FASTMCP_TOKEN" -- "$MCPGATE_BIN" connect "$FM_URL" --bearer env:FASTMCP_TOKEN
  # The 2026-07-28 protocol pinned (no initialize; no server→client requests in that era, so no
  # elicitation or sampling): FastMCP (the Python SDK's transport) routes a request to its
  # sessionless handler by the MCP-Protocol-Version header alone, so the bridge must send it.
  client fastmcp-static-2026 --mode 2026-07-28 --expect-user static-client \
    --env "FASTMCP_TOKEN=$FASTMCP_TOKEN" -- "$MCPGATE_BIN" connect "$FM_URL" --bearer env:FASTMCP_TOKEN
  client fastmcp-static-wrong-token --expect-refused --timeout 30 --env "FASTMCP_TOKEN=$WRONG_TOKEN" -- \
    "$MCPGATE_BIN" connect "$FM_URL" --bearer env:FASTMCP_TOKEN
  client fastmcp-static-no-token --expect-refused --timeout 30 -- "$MCPGATE_BIN" connect "$FM_URL"
else
  fail "connect_fastmcp/static-server-start" "fastmcp_server.py static did not start (log: $FM_LOG)"
fi

# ---- 2. JWTVerifier (HS256), JWTs minted by the bridge ---------------------------------------
JWT_FLAGS=(--jwt-secret env:FASTMCP_JWT_SECRET --jwt-claim sub=agent-1 --jwt-claim client_id=agent-1)
if FASTMCP_JWT_SECRET="$FASTMCP_JWT_SECRET" start_fastmcp fastmcp-jwt jwt; then
  SERVER_LOGS+=("$FM_LOG")
  log "mcpgate connect against FastMCP (JWT HS256) at $FM_URL"
  client fastmcp-jwt --mode legacy --expect-user agent-1 --elicit --sample \
    --env "FASTMCP_JWT_SECRET=$FASTMCP_JWT_SECRET" -- "$MCPGATE_BIN" connect "$FM_URL" "${JWT_FLAGS[@]}"
  client fastmcp-jwt-wrong-secret --expect-refused --timeout 30 --env "FASTMCP_JWT_SECRET=$WRONG_SECRET" -- \
    "$MCPGATE_BIN" connect "$FM_URL" "${JWT_FLAGS[@]}"
  client fastmcp-jwt-wrong-audience --expect-refused --timeout 30 --env "FASTMCP_JWT_SECRET=$FASTMCP_JWT_SECRET" -- \
    "$MCPGATE_BIN" connect "$FM_URL" "${JWT_FLAGS[@]}" --jwt-audience "http://127.0.0.1:1/mcp"
else
  fail "connect_fastmcp/jwt-server-start" "fastmcp_server.py jwt did not start (log: $FM_LOG)"
fi

# ---- 3. resumability: every echo answer arrives on a resumed SSE stream -----------------------
if FASTMCP_TOKEN="$FASTMCP_TOKEN" start_fastmcp fastmcp-resume static --close-echo-streams; then
  SERVER_LOGS+=("$FM_LOG")
  RESUME_LOG="$FM_LOG"
  log "mcpgate connect against FastMCP closing every echo's SSE stream at $FM_URL"
  client fastmcp-resume --mode legacy --calls-for 5 --timeout 30 \
    --env "FASTMCP_TOKEN=$FASTMCP_TOKEN" -- "$MCPGATE_BIN" connect "$FM_URL" --bearer env:FASTMCP_TOKEN
  replays="$(grep -c "replayed events after" "$RESUME_LOG" || true)"
  if [[ "$replays" -ge 3 ]]; then pass "connect_fastmcp/resume-last-event-id"; else
    fail "connect_fastmcp/resume-last-event-id" "the server replayed $replays stream(s) for Last-Event-ID (expected one per echo; log: $RESUME_LOG)"; fi
else
  fail "connect_fastmcp/resume-server-start" "fastmcp_server.py static --close-echo-streams did not start (log: $FM_LOG)"
fi

# ---- 4. nothing secret in what the bridge, the clients and the servers wrote ------------------
check_no_secret_in_log "connect_fastmcp/no-secret-in-logs" "$SECRETS" "$ERRLOG" \
  "$E2E_SUITE_LOG_DIR"/*.out "$E2E_SUITE_LOG_DIR"/*.stderr "${SERVER_LOGS[@]}"

suite_summary
