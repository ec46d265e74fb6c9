# shellcheck shell=bash
# Shared helpers for mcpgate's non-Rust end-to-end tests. Sourced by scripts/test and tests-e2e/*.sh.
#
# Environment (all optional):
#   MCPGATE_TEST_CACHE   where tools are installed (default ~/.cache/mcpgate-test)
#   MCPGATE_BIN          gateway binary (default $TARGET_DIR/ci/mcpgate)
#   MCPGATE_EXAMPLE_BIN  fixture binary (default $TARGET_DIR/ci/mcpgate-example-server)
#   MCPGATE_EMBEDDED_BIN examples/embedded-server (default $TARGET_DIR/ci/mcpgate-embedded-example)
#   MCPGATE_PROFILE_DIR  cargo profile dir used for the defaults above (default ci, what scripts/test builds)
#   CARGO_TARGET_DIR     honoured like cargo does
#   E2E_RESULTS          file that PASS/FAIL lines are appended to (scripts/test sets it)
#   E2E_LOG_DIR          where server and client logs go (default $TARGET_DIR/e2e-logs)

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO_ROOT/$TARGET_DIR" ;; esac
CACHE="${MCPGATE_TEST_CACHE:-${HOME:-/root}/.cache/mcpgate-test}"

# ---- pinned tool versions (see tests-e2e/README.md for why) -------------------------------
NODE_VERSION="22.23.3"    # newest 22.x on the npm registry; the Inspector needs >= 22.19
NODE_MIN="22.19.0"
# @modelcontextprotocol/conformance, @modelcontextprotocol/inspector and @modelcontextprotocol/sdk:
# tests-e2e/package.json
# mcp (Python SDK) and its dependencies: tests-e2e/requirements.txt

MCPGATE_BIN="${MCPGATE_BIN:-$TARGET_DIR/${MCPGATE_PROFILE_DIR:-ci}/mcpgate}"
MCPGATE_EXAMPLE_BIN="${MCPGATE_EXAMPLE_BIN:-$TARGET_DIR/${MCPGATE_PROFILE_DIR:-ci}/mcpgate-example-server}"
MCPGATE_EMBEDDED_BIN="${MCPGATE_EMBEDDED_BIN:-$TARGET_DIR/${MCPGATE_PROFILE_DIR:-ci}/mcpgate-embedded-example}"
E2E_LOG_DIR="${E2E_LOG_DIR:-$TARGET_DIR/e2e-logs}"

log()  { printf '%s\n' "[e2e] $*" >&2; }
die()  { printf '%s\n' "[e2e] ERROR: $*" >&2; exit 1; }

# ---- results ------------------------------------------------------------------------------
E2E_PASSED=0
E2E_FAILED=0
# pass NAME / fail NAME REASON: one check each; printed, and appended to $E2E_RESULTS if set.
pass() {
  E2E_PASSED=$((E2E_PASSED + 1))
  printf 'PASS %s\n' "$1"
  if [[ -n "${E2E_RESULTS:-}" ]]; then printf 'PASS %s\n' "$1" >>"$E2E_RESULTS"; fi
}
fail() {
  E2E_FAILED=$((E2E_FAILED + 1))
  printf 'FAIL %s: %s\n' "$1" "${2:-}"
  if [[ -n "${E2E_RESULTS:-}" ]]; then printf 'FAIL %s: %s\n' "$1" "${2:-}" >>"$E2E_RESULTS"; fi
}
# run_counted NAME LIMIT CMD...: runs a client that prints its own PASS/FAIL lines (stdout to
# $E2E_SUITE_LOG_DIR/<NAME with / as .>.out, shown; stderr to .stderr), counts them into this
# suite, and records failure NAME if it exited badly without a FAIL line of its own.
run_counted() {
  local name="$1" limit="$2" out err rc=0 line
  shift 2
  out="$E2E_SUITE_LOG_DIR/${name//\//.}.out"
  err="$E2E_SUITE_LOG_DIR/${name//\//.}.stderr"
  limited "$limit" "$@" >"$out" 2>"$err" || rc=$?
  cat "$out"
  while IFS= read -r line; do
    case "$line" in
      PASS\ *) E2E_PASSED=$((E2E_PASSED + 1)) ;;
      FAIL\ *) E2E_FAILED=$((E2E_FAILED + 1)) ;;
    esac
  done <"$out"
  if [[ "$rc" -ne 0 ]] && ! grep -q '^FAIL ' "$out"; then
    fail "$name" "exited $rc without a result (stderr: $err)"
  fi
}

# A suite's own closing line; scripts/test prints the overall one.
suite_summary() {
  printf '%s%s\n' "${E2E_RESULTS:+${E2E_SUITE:-e2e}: }" "${E2E_PASSED} passed, ${E2E_FAILED} failed"
  [[ "$E2E_FAILED" -eq 0 ]]
}

# ---- tooling ------------------------------------------------------------------------------
version_ge() { # version_ge A B: A >= B (dotted numeric)
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

node_platform_pkg() {
  local arch
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no Node.js package for $(uname -m)" ;;
  esac
  printf 'node-linux-%s' "$arch"
}

# Sets NODE22 (a node >= $NODE_MIN). Uses the system node when it is new enough; otherwise
# installs the npm registry's node-linux-<arch>@$NODE_VERSION (the binary that the `node`
# package's preinstall step would fetch, without that indirection) into $CACHE/node-$NODE_VERSION.
ensure_node() {
  local sys_ver
  sys_ver="$(node --version 2>/dev/null | sed 's/^v//' || true)"
  if [[ -n "$sys_ver" ]] && version_ge "$sys_ver" "$NODE_MIN"; then
    NODE22="$(command -v node)"
    return 0
  fi
  local pkg dir
  pkg="$(node_platform_pkg)"
  dir="$CACHE/node-$NODE_VERSION"
  NODE22="$dir/node_modules/$pkg/bin/node"
  if [[ -x "$NODE22" ]] && [[ "$("$NODE22" --version)" == "v$NODE_VERSION" ]]; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is needed to fetch Node $NODE_VERSION (system node: ${sys_ver:-none})"
  log "installing Node $NODE_VERSION ($pkg) into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$dir" && npm install --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
    --prefix "$dir" "$pkg@$NODE_VERSION") >&2
  [[ -x "$NODE22" ]] || die "Node $NODE_VERSION install failed"
}

# npm_bin DIR PACKAGE BIN: the JS file that PACKAGE (installed under DIR) declares as BIN.
npm_bin() {
  local pkgdir="$1/node_modules/$2"
  python3 -c 'import json, os, sys
b = json.load(open(os.path.join(sys.argv[1], "package.json")))["bin"]
print(os.path.join(sys.argv[1], b if isinstance(b, str) else b[sys.argv[2]]))' "$pkgdir" "$3" 2>/dev/null || true
}

# Sets CONFORMANCE_JS and INSPECTOR_JS (run them with "$NODE22" file.js ...), and NPM_TOOLS_DIR,
# whose node_modules holds @modelcontextprotocol/sdk for tests-e2e/differential/upstream_ts.mjs.
ensure_npm_tools() {
  ensure_node
  local dir="$CACHE/npm-tools" stamp want
  NPM_TOOLS_DIR="$dir"
  local sdk="$dir/node_modules/@modelcontextprotocol/sdk/package.json"
  want="$(cat "$E2E_DIR/package.json" "$E2E_DIR/package-lock.json" | sha256sum | cut -c1-16)-node$("$NODE22" --version)"
  CONFORMANCE_JS="$(npm_bin "$dir" @modelcontextprotocol/conformance conformance)"
  INSPECTOR_JS="$(npm_bin "$dir" @modelcontextprotocol/inspector mcp-inspector)"
  stamp="$(cat "$dir/.stamp" 2>/dev/null || true)"
  if [[ "$stamp" == "$want" && -f "$CONFORMANCE_JS" && -f "$INSPECTOR_JS" && -f "$sdk" ]]; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is needed to install the test tools"
  log "installing the Node tools (conformance suite, MCP Inspector, SDK, mcp-remote, oidc-provider: tests-e2e/package-lock.json) into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$E2E_DIR/package.json" "$E2E_DIR/package-lock.json" "$dir/"
  # npm itself is a JS program: run it under Node 22 so engines checks see the right version.
  (cd "$dir" && PATH="$(dirname "$NODE22"):$PATH" npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >&2
  CONFORMANCE_JS="$(npm_bin "$dir" @modelcontextprotocol/conformance conformance)"
  INSPECTOR_JS="$(npm_bin "$dir" @modelcontextprotocol/inspector mcp-inspector)"
  [[ -f "$CONFORMANCE_JS" && -f "$INSPECTOR_JS" && -f "$sdk" ]] || die "npm tools install incomplete"
  printf '%s\n' "$want" >"$dir/.stamp"
}

# Sets VENV_PY (a Python with the pinned official `mcp` SDK).
ensure_python_sdk() {
  local py dir stamp want
  py="$(command -v python3 || true)"
  [[ -n "$py" ]] || die "python3 not found"
  "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    die "the mcp SDK needs Python >= 3.10 ($("$py" --version))"
  dir="$CACHE/venv-mcp"
  VENV_PY="$dir/bin/python"
  want="$(sha256sum <"$E2E_DIR/requirements.txt" | cut -c1-16)-$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
  stamp="$(cat "$dir/.stamp" 2>/dev/null || true)"
  if [[ "$stamp" == "$want" && -x "$VENV_PY" ]]; then
    return 0
  fi
  log "creating Python venv with the mcp SDK (tests-e2e/requirements.txt) in $dir"
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$VENV_PY" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$E2E_DIR/requirements.txt" >&2
  "$VENV_PY" -c 'import mcp, mcp.client.streamable_http' || die "mcp SDK import failed"
  printf '%s\n' "$want" >"$dir/.stamp"
}

# apt_install PACKAGE: Debian's PACKAGE with apt-get (as root, or by passwordless sudo; no
# recommends; quiet, output in $CACHE/apt-PACKAGE.log; the package lists are refreshed only if the
# install fails without them). Returns 1 (after logging why) when it cannot.
apt_install() {
  local pkg="$1" sudo=() logf="$CACHE/apt-$1.log"
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      log "ERROR: $pkg is missing and installing it needs root: apt-get install $pkg"
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    log "ERROR: $pkg is missing and there is no apt-get to install it"
    return 1
  fi
  mkdir -p "$CACHE"
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o DPkg::Lock::Timeout=300)
  log "installing Debian's $pkg with apt-get (log: $logf)"
  if ! "${apt[@]}" install --no-install-recommends "$pkg" >"$logf" 2>&1; then
    "${apt[@]}" update >>"$logf" 2>&1 || true
    if ! "${apt[@]}" install --no-install-recommends "$pkg" >>"$logf" 2>&1; then
      tail -n 20 "$logf" >&2 || true
      log "ERROR: apt-get install $pkg failed (log: $logf)"
      return 1
    fi
  fi
}

# PostgreSQL's server binaries (initdb, pg_ctl) for the PostgreSQL store's tests, which start a
# throwaway server themselves (crates/store/tests/postgres.rs); Debian's postgresql installed with
# apt-get when neither PATH nor /usr/lib/postgresql/*/bin has them. Returns 1 if that fails.
ensure_postgres() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then return 0; fi
  if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then return 0; fi
  apt_install postgresql || return 1
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}

# redis-server for the Redis store's tests, which start a throwaway server themselves
# (mcpgate_store::redis::testing); Debian's redis-server installed with apt-get when it is not on
# PATH. The service the package may start is stopped again (nothing here uses port 6379).
# Returns 1 if that fails.
ensure_redis() {
  if command -v redis-server >/dev/null; then return 0; fi
  apt_install redis-server || return 1
  if command -v systemctl >/dev/null; then systemctl stop redis-server >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null; then service redis-server stop >/dev/null 2>&1 || true; fi
  command -v redis-server >/dev/null
}

# Sets CHROMIUM_BIN: $MCPGATE_CHROMIUM, else Debian's chromium, installed with apt-get when it is
# missing (as root, or by passwordless sudo; no recommends; quiet, output in
# $CACHE/apt-chromium.log; the package lists are refreshed only if the install fails without
# them). Idempotent: a working chromium is left as it is. Returns 1 (after logging why) if there
# is none and it cannot be installed. Not part of ensure_tools: only the browser suite needs it.
ensure_chromium() {
  CHROMIUM_BIN="${MCPGATE_CHROMIUM:-$(command -v chromium || true)}"
  if [[ -n "$CHROMIUM_BIN" ]] && "$CHROMIUM_BIN" --version >/dev/null 2>&1; then
    return 0
  fi
  if [[ -n "${MCPGATE_CHROMIUM:-}" ]]; then
    log "ERROR: MCPGATE_CHROMIUM=$MCPGATE_CHROMIUM does not run"
    return 1
  fi
  apt_install chromium || return 1
  CHROMIUM_BIN="$(command -v chromium || true)"
  if [[ -z "$CHROMIUM_BIN" ]] || ! "$CHROMIUM_BIN" --version >/dev/null 2>&1; then
    log "ERROR: chromium was installed but does not run (log: $CACHE/apt-chromium.log)"
    return 1
  fi
}

# All tools; safe to call concurrently (flock) and fast when everything is present.
ensure_tools() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  ensure_node
  ensure_npm_tools
  ensure_python_sdk
  flock -u 9
  exec 9>&-
}

# ---- processes ----------------------------------------------------------------------------
E2E_PIDS=()
E2E_TMP=""

e2e_cleanup() {
  local pid
  for pid in "${E2E_PIDS[@]}"; do
    # Each server runs in its own process group (setsid): end it and anything it spawned.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${E2E_PIDS[@]}"; do
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  E2E_PIDS=()
  if [[ -n "$E2E_TMP" && -d "$E2E_TMP" ]]; then rm -rf "$E2E_TMP"; fi
}

# limited SECONDS CMD...: runs CMD under a time limit (timeout(1), which puts it in its own
# process group and ends the whole group). It runs as a background job that the shell waits
# for, so that Ctrl-C or a TERM reach the script's trap at once, and the trap ends it.
E2E_CHILD=""
limited() {
  local limit="$1" rc=0
  shift
  timeout --kill-after=10 "$limit" "$@" &
  E2E_CHILD=$!
  wait "$E2E_CHILD" || rc=$?
  E2E_CHILD=""
  return "$rc"
}
e2e_interrupted() { # e2e_interrupted EXIT_CODE: the INT/TERM trap
  if [[ -n "$E2E_CHILD" ]]; then
    kill -TERM "$E2E_CHILD" 2>/dev/null || true
    wait "$E2E_CHILD" 2>/dev/null || true
  fi
  exit "$1"
}

# Call once per script: makes a temp dir (servers run there) and the cleanup traps.
e2e_init() {
  local suite="$1"
  E2E_SUITE="$suite"
  E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-e2e-$suite.XXXXXX")"
  E2E_SUITE_LOG_DIR="$E2E_LOG_DIR/$suite"
  rm -rf "$E2E_SUITE_LOG_DIR"
  mkdir -p "$E2E_SUITE_LOG_DIR"
  trap e2e_cleanup EXIT
  trap 'e2e_interrupted 130' INT
  trap 'e2e_interrupted 143' TERM
}

# spawn LOGFILE CMD...: start CMD in its own session in $E2E_TMP, stdout+stderr to LOGFILE.
# Sets SPAWNED_PID.
spawn() {
  local logfile="$1"
  shift
  (cd "$E2E_TMP" && exec setsid "$@" </dev/null >"$logfile" 2>&1) &
  SPAWNED_PID=$!
  E2E_PIDS+=("$SPAWNED_PID")
}

# start_fixture NAME PROFILE: mcpgate-example-server --http 127.0.0.1:0 --profile PROFILE.
# Sets FIXTURE_URL and FIXTURE_PID.
start_fixture() {
  local name="$1" profile="$2" logfile i
  [[ -x "$MCPGATE_EXAMPLE_BIN" ]] || die "fixture binary not found: $MCPGATE_EXAMPLE_BIN (build first)"
  logfile="$E2E_SUITE_LOG_DIR/$name.log"
  spawn "$logfile" "$MCPGATE_EXAMPLE_BIN" --http 127.0.0.1:0 --profile "$profile"
  FIXTURE_PID=$SPAWNED_PID
  FIXTURE_URL=""
  for i in $(seq 1 300); do
    FIXTURE_URL="$(grep -o -m1 'listening on http://127\.0\.0\.1:[0-9]*/mcp' "$logfile" 2>/dev/null | sed 's/^listening on //' || true)"
    [[ -n "$FIXTURE_URL" ]] && return 0
    if ! kill -0 "$FIXTURE_PID" 2>/dev/null; then
      tail -n 20 "$logfile" >&2 || true
      die "$name exited before it was listening (log: $logfile)"
    fi
    sleep 0.1
  done
  tail -n 20 "$logfile" >&2 || true
  die "$name printed no 'listening on http://127.0.0.1:PORT/mcp' within 30s (log: $logfile)"
}

# start_gateway NAME ARGS...: mcpgate serve --listen 127.0.0.1:0 --store <temp file> ARGS...,
# with MCP_API_KEYS="$GATEWAY_KEYS_JSON" when that is set; reads the URL from its
# "listening on http://127.0.0.1:PORT/mcp" line, then waits for GET /healthz = 200.
# GATEWAY_LISTEN (default 127.0.0.1:0) replaces the listen address, for a gateway whose config
# must name its own URL beforehand (public_url; take a port from free_port).
# Sets GATEWAY_URL, GATEWAY_BASE and GATEWAY_PID; returns 1 (after logging why) if it won't start.
start_gateway() {
  local name="$1" logfile i code
  shift
  if [[ ! -x "$MCPGATE_BIN" ]]; then
    log "ERROR: gateway binary not found: $MCPGATE_BIN (build first)"
    return 1
  fi
  logfile="$E2E_SUITE_LOG_DIR/$name.log"
  local envs=(NO_COLOR=1)
  if [[ -n "${GATEWAY_KEYS_JSON:-}" ]]; then envs+=("MCP_API_KEYS=$GATEWAY_KEYS_JSON"); fi
  spawn "$logfile" env "${envs[@]}" "$MCPGATE_BIN" serve --listen "${GATEWAY_LISTEN:-127.0.0.1:0}" \
    --store "$E2E_TMP/$name.db" "$@"
  GATEWAY_PID=$SPAWNED_PID
  GATEWAY_URL=""
  for i in $(seq 1 600); do
    if [[ -z "$GATEWAY_URL" ]]; then
      GATEWAY_URL="$(grep -o -m1 'listening on http://127\.0\.0\.1:[0-9]*/mcp' "$logfile" 2>/dev/null | sed 's/^listening on //' || true)"
      GATEWAY_BASE="${GATEWAY_URL%/mcp}"
    fi
    if [[ -n "$GATEWAY_URL" ]]; then
      code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$GATEWAY_BASE/healthz" 2>/dev/null || true)"
      [[ "$code" == "200" ]] && return 0
    fi
    if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
      tail -n 30 "$logfile" >&2 || true
      log "ERROR: $name exited during startup (log: $logfile)"
      return 1
    fi
    sleep 0.1
  done
  tail -n 30 "$logfile" >&2 || true
  log "ERROR: $name: no 'listening on' line and GET /healthz = 200 within 60s (log: $logfile)"
  return 1
}

# free_port: a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it; a caller that
# binds it later can lose a race, so retry on a failed start).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# A fresh API key in mcpgate's format (mcp_<keyId>_<secret>), and an MCP_API_KEYS registry
# (seed 001's JSON) that makes it an admin key for user "e2e".
new_test_key() {
  python3 -c 'import secrets; print("mcp_e2e%s_%s" % (secrets.token_hex(4), secrets.token_urlsafe(32).replace("_", "-")))'
}
keys_json_for() {
  python3 -c 'import json, sys; print(json.dumps({sys.argv[1]: {"name": "e2e admin", "userId": "e2e", "role": "admin", "permissions": ["*"]}}))' "$1"
}

# start_jwt_gateway NAME ARGS...: a gateway that takes HS256 JWTs signed with $JWT_SECRET (a
# fresh one) for audience "mcpgate-e2e"; sets JWT_TOKEN (sub "jwt-user", every permission), minted
# with `mcpgate token mint`, and BAD_JWT_TOKEN (same claims, another secret).
start_jwt_gateway() {
  local name="$1" cfg="$E2E_TMP/$1.toml"
  shift
  printf '[auth.jwt]\nsecret_env = "JWT_SECRET"\naudience = ["mcpgate-e2e"]\n' >"$cfg"
  local mint=(token mint --sub jwt-user --aud mcpgate-e2e --scope "read write" --claim 'permissions=["*"]' --ttl 1h)
  BAD_JWT_TOKEN="$(JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')" "$MCPGATE_BIN" "${mint[@]}")"
  JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
  export JWT_SECRET
  JWT_TOKEN="$("$MCPGATE_BIN" "${mint[@]}")"
  GATEWAY_KEYS_JSON="" start_gateway "$name" --config "$cfg" "$@"
}

# The stdio upstream command line for --upstream-cmd (the binary path shell-quoted).
fixture_stdio_cmd() {
  printf '%q --stdio --profile %s' "$MCPGATE_EXAMPLE_BIN" "$1"
}

# ---- OAuth client suites (ts_oauth, inspector_oauth, mcp_remote, conformance_auth) ---------
# start_oauth_gateway NAME USER_ID [OAUTH_TOML_LINE...]: a fresh key OAUTH_KEY (admin, every
# permission, user USER_ID) and a gateway that is its own authorization server, as
# python_oauth.sh starts it: public_url = "http://127.0.0.1:PORT" (the port chosen first, since
# the issuer and the tokens' audience must be the address clients use; three tries) and an
# [oauth] section holding the given lines, in front of the demo stdio upstream.
# Sets OAUTH_KEY, GATEWAY_URL, GATEWAY_BASE, GATEWAY_PID and GATEWAY_LOG; returns 1 (after
# logging why) if it will not start.
start_oauth_gateway() {
  local name="$1" user="$2" cfg attempt port keys
  shift 2
  OAUTH_KEY="$(new_test_key)"
  keys="$(python3 -c 'import json, sys; print(json.dumps({sys.argv[1]: {"name": "e2e oauth", "userId": sys.argv[2], "role": "admin", "permissions": ["*"]}}))' "$OAUTH_KEY" "$user")"
  cfg="$E2E_TMP/$name.toml"
  for attempt in 1 2 3; do
    port="$(free_port)"
    {
      printf 'public_url = "http://127.0.0.1:%s"\n\n[oauth]\n' "$port"
      if [[ $# -gt 0 ]]; then printf '%s\n' "$@"; fi
    } >"$cfg"
    if GATEWAY_KEYS_JSON="$keys" GATEWAY_LISTEN="127.0.0.1:$port" start_gateway "$name-$attempt" \
      --config "$cfg" --upstream-cmd "$(fixture_stdio_cmd demo)"; then
      GATEWAY_LOG="$E2E_SUITE_LOG_DIR/$name-$attempt.log"
      if [[ "$GATEWAY_BASE" != "http://127.0.0.1:$port" ]]; then
        log "ERROR: $name listens on $GATEWAY_BASE, its public_url is http://127.0.0.1:$port"
        return 1
      fi
      return 0
    fi
    log "$name did not start on port $port (attempt $attempt)"
  done
  return 1
}

# check_no_secret_in_log NAME SECRETS_FILE LOGFILE...: one check, NAME: none of the non-empty
# lines of SECRETS_FILE (keys, codes and tokens a client saw) occurs in any LOGFILE. Fails too
# when SECRETS_FILE has fewer than ${SECRETS_MIN:-3} lines: the client recorded too little.
check_no_secret_in_log() {
  local name="$1" secrets="$2" f
  shift 2
  if [[ "$(grep -c . "$secrets" 2>/dev/null || true)" -lt "${SECRETS_MIN:-3}" ]]; then
    fail "$name" "the client recorded almost no codes or tokens to look for ($secrets)"
    return 0
  fi
  for f in "$@"; do
    if grep -qF -f <(grep . "$secrets") "$f"; then
      fail "$name" "a key, code or token the client saw appears in $f"
      return 0
    fi
  done
  pass "$name"
}
