# shellcheck shell=bash
# Other MCP gateways as bench/run targets, measured in the same run as mcpgate, each with
# authentication equivalent to mcpgate's and configured as its own documentation says.
# Sourced by bench/run (uses its helpers: start_bg, wait_port, free_port, expect_status,
# forged_jwt, rand_hex, log, and the variables WORK, BENCH, MCPGATE, UPSTREAM_URL).
#
#   gateway_stdio  mcpgate in front of the stdio upstream (`mcpgate-bench upstream --stdio`), API key
#   mcp_proxy      mcp-proxy (crates.io) in front of the HTTP upstream, bearer token
#   mcp_guard      mcp-guard (crates.io; its free build proxies stdio servers only) in front of the
#                  stdio upstream, API key
#   fastmcp        FastMCP (PyPI) create_proxy in front of the HTTP upstream, JWTVerifier (HS256)
#   agentgateway   reported as not installable here (see target_agentgateway)
#
# Installs: each peer is installed on first use into BENCH_PEER_CACHE (default
# ~/.cache/mcpgate-bench): Rust peers with `cargo install --locked` into $BENCH_PEER_CACHE/cargo
# (build directory kept in $BENCH_PEER_CACHE/cargo-target, so an interrupted build resumes), the
# Python peer into the venv $BENCH_PEER_CACHE/venv. Each install is bounded by
# BENCH_PEER_INSTALL_TIMEOUT seconds (default 2400) and logged to $BENCH_PEER_CACHE/install-*.log;
# a peer that fails to install is reported as "did not start: …", never fails the run.
#
# A target function may set TARGET_STATUS (the report's status when it returns 1) and
# TARGET_UPSTREAM_PID (the stdio upstream it runs: its CPU is reported as the upstream's; "-":
# not reported).

PEER_CACHE=${BENCH_PEER_CACHE:-$HOME/.cache/mcpgate-bench}
PEER_INSTALL_TIMEOUT=${BENCH_PEER_INSTALL_TIMEOUT:-2400}
MCP_PROXY_VERSION=0.6.0
MCP_GUARD_VERSION=1.0.0
FASTMCP_VERSION=4.1.2   # the newest that installs from this machine's PyPI mirror (FIELD-NOTES)

# peer_cargo_install CRATE VERSION BIN: sets PEER_BIN to the installed binary, installing
# CRATE@VERSION first if $PEER_CACHE/cargo does not have it.
peer_cargo_install() {
  local crate=$1 version=$2 bin=$3 root="$PEER_CACHE/cargo" log
  PEER_BIN="$root/bin/$bin"
  if [ -x "$PEER_BIN" ] && grep -q "^\"$crate $version " "$root/.crates.toml" 2>/dev/null; then
    return 0
  fi
  mkdir -p "$root"
  log="$PEER_CACHE/install-$crate.log"
  log "installing $crate $version (cargo install --locked, at most ${PEER_INSTALL_TIMEOUT}s; log: $log)"
  if ! CARGO_TARGET_DIR="$PEER_CACHE/cargo-target" timeout "$PEER_INSTALL_TIMEOUT" \
      cargo install --locked --root "$root" "$crate@$version" >"$log" 2>&1 || [ ! -x "$PEER_BIN" ]; then
    TARGET_STATUS="did not start: cargo install $crate@$version failed or timed out ($(peer_last_line "$log"))"
    log "$TARGET_STATUS"
    return 1
  fi
}

# peer_venv: sets PEER_PY to a python with fastmcp==$FASTMCP_VERSION, installing it if needed.
peer_venv() {
  local venv="$PEER_CACHE/venv" log="$PEER_CACHE/install-fastmcp.log"
  PEER_PY="$venv/bin/python"
  if [ -x "$PEER_PY" ] && [ "$("$PEER_PY" -c 'import fastmcp; print(fastmcp.__version__)' 2>/dev/null)" = "$FASTMCP_VERSION" ]; then
    return 0
  fi
  mkdir -p "$PEER_CACHE"
  log "installing fastmcp $FASTMCP_VERSION into $venv (pip, at most ${PEER_INSTALL_TIMEOUT}s; log: $log)"
  if ! { [ -x "$PEER_PY" ] || timeout 300 python3 -m venv "$venv"; } >"$log" 2>&1 \
    || ! timeout "$PEER_INSTALL_TIMEOUT" "$PEER_PY" -m pip install --disable-pip-version-check -q \
      "fastmcp==$FASTMCP_VERSION" >>"$log" 2>&1; then
    TARGET_STATUS="did not start: pip install fastmcp==$FASTMCP_VERSION failed or timed out ($(peer_last_line "$log"))"
    log "$TARGET_STATUS"
    return 1
  fi
}

# start_peer NAME PORT PATH CMD...: starts a peer (log $WORK/NAME.log), waits for PORT, and sets
# TARGET_URL (http://127.0.0.1:PORT + PATH) and TARGET_PID; a peer that does not listen is
# reported as "did not start" with its last log line.
start_peer() {
  local name=$1 port=$2 path=$3
  shift 3
  start_bg "$name" "$@"
  TARGET_PIDS+=("$BG_PID")
  wait_port "$BG_PID" "$port" "$name" \
    || { TARGET_STATUS="did not start: $(peer_last_line "$WORK/$name.log")"; return 1; }
  TARGET_URL="http://127.0.0.1:$port$path"
  TARGET_PID=$BG_PID
}

# bearer_checks MADE_UP GOOD WHAT: a made-up bearer credential gets 401 and the bench's own 200;
# then the bench's is sent on every request.
bearer_checks() {
  expect_status 401 --header "Authorization: Bearer $1" || return 1
  expect_status 200 --header "Authorization: Bearer $2" || return 1
  log "auth check ok: a made-up $3 gets 401, the bench $3 200"
  TARGET_HEADERS=("Authorization: Bearer $2")
}

peer_last_line() { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-200 | tr -d '`'; }

# peer_stdio_child PID: the pid of PID's child running `mcpgate-bench upstream --stdio` (waits up
# to 10 s for it to appear); sets TARGET_UPSTREAM_PID.
peer_stdio_child() {
  local pid=$1 c
  for _ in $(seq 100); do
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
      if tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -q -- 'upstream --stdio'; then
        TARGET_UPSTREAM_PID=$c
        return 0
      fi
    done
    sleep 0.1
  done
  log "no stdio upstream process under pid $pid: its CPU is not reported"
}

# ---------------------------------------------------------------------------------------------

# mcpgate in front of the stdio upstream, with an API key like `apikey`: the like-for-like
# baseline for mcp-guard (whose free build proxies stdio servers only).
target_gateway_stdio() {
  local key
  TARGET_DESC="mcpgate serve --upstream-cmd \"mcpgate-bench upstream --stdio\", API key auth (X-API-Key; key with huge limits)"
  need_mcpgate || return 1
  key=$("$MCPGATE" keys create --store "$WORK/gateway_stdio.db" --name bench --user bench --role admin \
    --permissions '*' --per-minute 1000000000 --per-hour 1000000000 --per-day 1000000000 --json \
    2>"$WORK/gateway_stdio-create.log" | grep -oE '"key":"[^"]+"' | cut -d'"' -f4) || true
  [ -n "$key" ] || { log "could not create an API key: $(tail -n 3 "$WORK/gateway_stdio-create.log")"; return 1; }
  GATEWAY_UPSTREAM_FLAGS=(--upstream-cmd "$BENCH upstream --stdio")
  start_gateway gateway_stdio || return 1
  expect_status 401 --header "X-API-Key: mcp_bench_0000000000000000000000000000000000000000" || return 1
  expect_status 200 --header "X-API-Key: $key" || return 1
  log "auth check ok: a made-up key gets 401, the bench key 200"
  # mcpgate runs one upstream process per MCP session (32 under load): no single pid to account,
  # so the upstream's CPU is not reported for this target (it counts under "other processes").
  TARGET_UPSTREAM_PID=-
  TARGET_HEADERS=("X-API-Key: $key")
}

# mcp-proxy (crates.io), its documented TOML: `[auth] type = "bearer"` with one token (read from
# the environment with its `${VAR}` substitution), one HTTP backend (the fast upstream), audit
# logging on (`[observability] audit = true`: one log line per request, to its stderr log). Its
# log filter is built as "tower_mcp=LEVEL,mcp_proxy=LEVEL", which drops its own audit events
# (target `mcp::audit`), so log_level carries "mcp::audit=info" too, or `audit = true` would
# write nothing. Its MCP endpoint is `/`. It prefixes every tool with "<backend
# name><separator>"; the load generator calls `echo`, so the backend is named "" with separator ""
# (the tool keeps its name); with that prefix its `proxy/` admin tools are not registered (it
# logs a warning and goes on).
target_mcp_proxy() {
  local port
  TARGET_DESC="mcp-proxy $MCP_PROXY_VERSION (crates.io, default features): [auth] type = \"bearer\", one token (Authorization: Bearer); one HTTP backend (name \"\", separator \"\" so the tool stays \"echo\"); [observability] audit = true, log_level = \"info,mcp::audit=info\" (audit lines to its log)"
  peer_cargo_install mcp-proxy "$MCP_PROXY_VERSION" mcp-proxy || return 1
  port=$(free_port)
  BENCH_MCP_PROXY_SECRET=$(rand_hex 32)
  export BENCH_MCP_PROXY_SECRET
  cat >"$WORK/mcp_proxy.toml" <<TOML
[proxy]
name = "mcpgate-bench"
separator = ""

[proxy.listen]
host = "127.0.0.1"
port = $port

[[backends]]
name = ""
transport = "http"
url = "$UPSTREAM_URL"

[auth]
type = "bearer"
tokens = ["\${BENCH_MCP_PROXY_SECRET}"]

[observability]
audit = true
log_level = "info,mcp::audit=info"
TOML
  start_peer mcp_proxy "$port" / "$PEER_BIN" --config "$WORK/mcp_proxy.toml" || return 1
  bearer_checks "$(rand_hex 32)" "$BENCH_MCP_PROXY_SECRET" token || return 1
}

# mcp-guard (crates.io), its documented TOML: one `[[auth.api_keys]]` entry (hash from
# `mcp-guard keygen`; the key is sent as `Authorization: Bearer`), the stdio upstream
# (`[upstream] transport = "stdio"`), its rate limiter left on with limits far above what the load
# reaches (as the apikey target's key has; its default is 25 req/s), audit to a file. Its MCP
# endpoint is `/mcp`, JSON in and out, no sessions.
# Known (FIELD-NOTES): it hands the next line its upstream writes to whichever request waits next,
# without matching ids, and waits for an answer to notifications too: the probe and the load show
# this as crossed responses, errors and timeouts (each bounded by their --timeout and bench/run's
# own time bounds).
target_mcp_guard() {
  local port keygen key hash
  TARGET_DESC="mcp-guard $MCP_GUARD_VERSION (crates.io, free build): [[auth.api_keys]] (one key from mcp-guard keygen, Authorization: Bearer); [upstream] transport = \"stdio\" (mcpgate-bench upstream --stdio); [rate_limit] 10⁹/s; [audit] file"
  peer_cargo_install mcp-guard "$MCP_GUARD_VERSION" mcp-guard || return 1
  keygen=$(cd "$WORK" && timeout 30 "$PEER_BIN" keygen --user-id bench 2>"$WORK/mcp_guard-keygen.log") \
    || { TARGET_STATUS="did not start: mcp-guard keygen failed ($(peer_last_line "$WORK/mcp_guard-keygen.log"))"; return 1; }
  key=$(grep -oE 'mcp_[A-Za-z0-9_-]{20,}' <<<"$keygen" | head -n 1)
  hash=$(grep -oE 'key_hash = "[^"]+"' <<<"$keygen" | cut -d'"' -f2)
  [ -n "$key" ] && [ -n "$hash" ] || { TARGET_STATUS="did not start: could not read a key from mcp-guard keygen"; return 1; }
  port=$(free_port)
  cat >"$WORK/mcp_guard.toml" <<TOML
[server]
host = "127.0.0.1"
port = $port

[upstream]
transport = "stdio"
command = "$BENCH"
args = ["upstream", "--stdio"]

[rate_limit]
enabled = true
requests_per_second = 1000000000
burst_size = 1000000000

[audit]
enabled = true
file = "$WORK/mcp_guard-audit.log"

[[auth.api_keys]]
id = "bench"
key_hash = "$hash"
TOML
  start_peer mcp_guard "$port" /mcp "$PEER_BIN" run --config "$WORK/mcp_guard.toml" || return 1
  bearer_checks "mcp_$(rand_hex 32)" "$key" key || return 1
  peer_stdio_child "$TARGET_PID"
}

# FastMCP (PyPI) as its docs show a proxy: `create_proxy(URL)` (a fresh upstream session for
# each request, its documented default), served over HTTP at /mcp, `auth=JWTVerifier(public_key=
# <secret>, algorithm="HS256", audience=<its URL>)`; the token is minted by `mcpgate token mint`
# as for jwt_hs256. The script: bench/peers/fastmcp_proxy.py.
target_fastmcp() {
  local port aud token
  TARGET_DESC="FastMCP $FASTMCP_VERSION (PyPI) create_proxy(upstream URL) (new upstream session per request, its default), HTTP /mcp; auth=JWTVerifier(HS256 shared secret, audience = its URL); one token (mcpgate token mint, as jwt_hs256) as Authorization: Bearer"
  need_mcpgate || { TARGET_STATUS="did not start: no mcpgate to mint the token with"; return 1; }
  peer_venv || return 1
  port=$(free_port)
  aud="http://127.0.0.1:$port/mcp"
  token=$("$MCPGATE" token mint --secret-env BENCH_JWT_SECRET --sub bench --scope "read write" --aud "$aud" \
    --claim 'permissions=["*"]' --ttl 24h 2>"$WORK/fastmcp-mint.log") \
    || { log "token mint failed: $(tail -n 3 "$WORK/fastmcp-mint.log")"; return 1; }
  start_peer fastmcp "$port" /mcp "$PEER_PY" "$ROOT/bench/peers/fastmcp_proxy.py" "$UPSTREAM_URL" "$port" "$aud" \
    || return 1
  check_bearer "$token" "$aud" || return 1
  TARGET_HEADERS=("Authorization: Bearer $token")
}

# agentgateway (the Linux Foundation MCP/A2A proxy) is distributed as GitHub release binaries,
# container images and source; none of the package registries this machine reaches carries it:
# crates.io has no `agentgateway` crate, npm has no `agentgateway` package, Debian has none, and
# PyPI's `agentgateway` is an unrelated project (an LLM agent framework). Building from source
# needs its git repository, which cannot be fetched here.
target_agentgateway() {
  TARGET_DESC="agentgateway (agentgateway/agentgateway, Rust MCP/A2A proxy)"
  TARGET_STATUS="not installable here: not in crates.io, npm or Debian; PyPI's agentgateway is another project"
  log "agentgateway: $TARGET_STATUS"
  return 1
}
