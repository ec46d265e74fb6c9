#!/usr/bin/env bash
# The admin API against schemathesis (PyPI), which reads /admin/api/v1/openapi.json and sends
# generated requests to every operation (schema-valid and not), as an admin key, against
#   mcpgate serve --config <[oauth], [admin] enabled = true> --upstream-cmd <the demo server>
# Checks: no answer is a 5xx (schemathesis' not_a_server_error over every operation, a fixed
# seed and ${ADMIN_FUZZ_EXAMPLES:-40} examples each, bounded in time), the gateway is still
# healthy afterwards and never panicked, and the admin key is not in its log. Longer runs:
#   ADMIN_FUZZ_EXAMPLES=1000 scripts/test admin_fuzz
# schemathesis is installed on first use into $CACHE/venv-schemathesis.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_python_sdk
e2e_init admin_fuzz

SCHEMATHESIS_VERSION=4.32.5

ensure_schemathesis() {
  local venv="$CACHE/venv-schemathesis" logf="$CACHE/install-schemathesis.log" rc=0
  ST_BIN="$venv/bin/schemathesis"
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock-schemathesis"
  flock 8
  if [[ -x "$ST_BIN" ]] && "$venv/bin/pip" show schemathesis 2>/dev/null | grep -qx "Version: $SCHEMATHESIS_VERSION"; then
    flock -u 8
    return 0
  fi
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv (log: $logf)"
  rm -rf "$venv"
  if ! timeout 300 python3 -m venv "$venv" >"$logf" 2>&1 ||
    ! timeout 600 "$venv/bin/pip" install --disable-pip-version-check --no-input -q \
      "schemathesis==$SCHEMATHESIS_VERSION" >>"$logf" 2>&1; then
    rc=1
    rm -rf "$venv"
  fi
  flock -u 8
  exec 8>&-
  return "$rc"
}

if ! ensure_schemathesis; then
  fail "admin_fuzz/install" "pip install schemathesis==$SCHEMATHESIS_VERSION failed: $(tail -n 1 "$CACHE/install-schemathesis.log" 2>/dev/null | cut -c1-200)"
  suite_summary
  exit 1
fi

if ! start_oauth_gateway admin_fuzz root "" "[admin]" "enabled = true"; then
  fail "admin_fuzz/gateway-start" "mcpgate serve with [admin] did not start (see above)"
  suite_summary
  exit 1
fi

# Some state for the operations to find: a key, a session.
curl -s -o /dev/null -H "X-API-Key: $OAUTH_KEY" -H 'content-type: application/json' \
  -d '{"name":"fuzz","user_id":"fuzz"}' "$GATEWAY_BASE/admin/api/v1/keys" || true

out="$E2E_SUITE_LOG_DIR/schemathesis.out"
rc=0
limited 300 "$ST_BIN" run "$GATEWAY_BASE/admin/api/v1/openapi.json" \
  -H "X-API-Key: $OAUTH_KEY" --checks not_a_server_error \
  --max-examples "${ADMIN_FUZZ_EXAMPLES:-40}" --seed 20261204 --no-color >"$out" 2>&1 || rc=$?
generated="$(grep -Eo '[0-9]+ generated' "$out" | tail -n 1 || true)"
if [[ "$rc" -eq 0 ]]; then
  pass "admin_fuzz/no-server-error"
  log "schemathesis: ${generated:-?} cases, no 5xx (log: $out)"
else
  fail "admin_fuzz/no-server-error" "schemathesis exited $rc (${generated:-?} cases; see $out)"
  grep -E "^(_{3,}|- |\[5)" "$out" | head -n 20 >&2 || true
fi

code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$GATEWAY_BASE/healthz" || true)"
if [[ "$code" == "200" ]]; then pass "admin_fuzz/still-healthy"; else fail "admin_fuzz/still-healthy" "GET /healthz = $code"; fi
if grep -qi "panicked" "$GATEWAY_LOG"; then
  fail "admin_fuzz/no-panic" "the gateway log has a panic: $(grep -i -m1 panicked "$GATEWAY_LOG" | cut -c1-200)"
else
  pass "admin_fuzz/no-panic"
fi
printf '%s\n' "${OAUTH_KEY##*_}" >"$E2E_TMP/secrets.txt"
SECRETS_MIN=1 check_no_secret_in_log "admin_fuzz/no-secret-in-log" "$E2E_TMP/secrets.txt" "$GATEWAY_LOG"
suite_summary
