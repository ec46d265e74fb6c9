#!/usr/bin/env bash
# OpenTelemetry traces, exported to a real OTLP receiver process on loopback: the OpenTelemetry
# project's protocol classes (opentelemetry-proto, PyPI) and grpcio, serving OTLP/HTTP and
# OTLP/gRPC (tests-e2e/otlp_receiver.py), in front of the demo server over Streamable HTTP
# (mcpgate-example-server --http, which logs the trace context each request arrives with):
#   mcpgate serve --config <[upstream] url, [telemetry] endpoint/protocol/headers_env, policy>
# once per protocol: http/protobuf, http/json, grpc. tests-e2e/telemetry_check.py sends the
# requests and checks a server span per request with the pipeline's steps as events, the
# caller's trace continued, the upstream call's client span and its traceparent at the upstream,
# refusals traced without an upstream span, an invalid traceparent ignored, the collector header
# sent, the trace id in the JSON log lines, and no key, tool argument, session id or collector
# credential in the exported spans or the log. Then a sample_ratio = 0 gateway exports nothing
# and still propagates an unsampled traceparent.
# The receiver's packages are installed on first use into $CACHE/venv-otel.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init telemetry

OTEL_PROTO_VERSION=1.45.2
GRPCIO_VERSION=1.85.3
PROTOBUF_VERSION=7.36.2

ensure_otel_venv() {
  local venv="$CACHE/venv-otel" logf="$CACHE/install-otel.log" rc=0 want
  OTEL_PY="$venv/bin/python"
  want="$OTEL_PROTO_VERSION $GRPCIO_VERSION $PROTOBUF_VERSION"
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock-otel"
  flock 8
  if [[ -x "$OTEL_PY" && "$(cat "$venv/.stamp" 2>/dev/null)" == "$want" ]]; then
    flock -u 8
    return 0
  fi
  log "installing opentelemetry-proto $OTEL_PROTO_VERSION and grpcio $GRPCIO_VERSION into $venv (log: $logf)"
  rm -rf "$venv"
  if timeout 300 python3 -m venv "$venv" >"$logf" 2>&1 &&
    timeout 600 "$venv/bin/pip" install --disable-pip-version-check --no-input -q \
      "opentelemetry-proto==$OTEL_PROTO_VERSION" "grpcio==$GRPCIO_VERSION" "protobuf==$PROTOBUF_VERSION" >>"$logf" 2>&1 &&
    "$OTEL_PY" -c 'import grpc, opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc' >>"$logf" 2>&1; then
    printf '%s\n' "$want" >"$venv/.stamp"
  else
    rc=1
    rm -rf "$venv"
  fi
  flock -u 8
  exec 8>&-
  return "$rc"
}

if ! ensure_otel_venv; then
  fail "telemetry/install" "pip install opentelemetry-proto/grpcio failed: $(tail -n 1 "$CACHE/install-otel.log" 2>/dev/null | cut -c1-200)"
  suite_summary
  exit 1
fi

SPANS="$E2E_TMP/spans.jsonl"
RAW="$E2E_TMP/raw.bin"
READY="$E2E_TMP/receiver.json"
spawn "$E2E_SUITE_LOG_DIR/receiver.log" "$OTEL_PY" "$E2E_DIR/otlp_receiver.py" --out "$SPANS" --raw "$RAW" --ready "$READY"
for _ in $(seq 1 300); do [[ -s "$READY" ]] && break; sleep 0.1; done
if [[ ! -s "$READY" ]]; then
  tail -n 20 "$E2E_SUITE_LOG_DIR/receiver.log" >&2 || true
  fail "telemetry/receiver-start" "the OTLP receiver did not start"
  suite_summary
  exit 1
fi
HTTP_PORT="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$READY")"
GRPC_PORT="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$READY")"
touch "$SPANS" "$RAW"
log "OTLP receiver: http 127.0.0.1:$HTTP_PORT, grpc 127.0.0.1:$GRPC_PORT"

start_fixture upstream demo
UPSTREAM_LOG="$E2E_SUITE_LOG_DIR/upstream.log"

KEY="$(new_test_key)"
READER="$(new_test_key)"
GATEWAY_KEYS_JSON="$(python3 -c '
import json, sys
print(json.dumps({
    sys.argv[1]: {"name": "traced admin", "userId": "tracer", "role": "admin", "permissions": ["*"]},
    sys.argv[2]: {"name": "traced reader", "userId": "reader", "role": "user", "permissions": ["read"]},
}))' "$KEY" "$READER")"
export GATEWAY_KEYS_JSON
E2E_COLLECTOR_KEY="collector-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export E2E_COLLECTOR_KEY
# DEBUG=auth:* writes a line per accepted key, inside the request: the line that must carry the
# trace id. JSON logs.
export DEBUG="auth:*" MCPGATE_LOG_FORMAT=json

config() { # config NAME PROTOCOL PORT [EXTRA_TELEMETRY_LINE...]
  local name="$1" cfg="$E2E_TMP/$1.toml" protocol="$2" port="$3"
  shift 3
  {
    printf '[upstream]\nurl = "%s"\n\n' "$FIXTURE_URL"
    printf '[telemetry]\nendpoint = "http://127.0.0.1:%s"\nprotocol = "%s"\n' "$port" "$protocol"
    printf 'service_name = "mcpgate-e2e-%s"\nexport_interval_ms = 200\n' "$name"
    printf 'headers_env = { "x-collector-key" = "E2E_COLLECTOR_KEY" }\n'
    if [[ $# -gt 0 ]]; then printf '%s\n' "$@"; fi
    printf '\n[[policy.rules]]\ntools = ["echo"]\npermissions = ["read"]\n'
    printf '\n[[policy.rules]]\ntools = ["add"]\npermissions = ["write"]\n'
  } >"$cfg"
  printf '%s' "$cfg"
}

for protocol in http/protobuf http/json grpc; do
  label="${protocol//\//-}"
  port="$HTTP_PORT"
  [[ "$protocol" == grpc ]] && port="$GRPC_PORT"
  if ! start_gateway "gw-$label" --config "$(config "$label" "$protocol" "$port")"; then
    fail "telemetry/$label/gateway-start" "mcpgate serve with [telemetry] did not start (see above)"
    continue
  fi
  run_counted "telemetry/$label" 120 python3 "$E2E_DIR/telemetry_check.py" \
    --gateway "$GATEWAY_URL" --label "$label" --key "$KEY" --reader-key "$READER" \
    --spans "$SPANS" --raw "$RAW" --upstream-log "$UPSTREAM_LOG" \
    --gateway-log "$E2E_SUITE_LOG_DIR/gw-$label.log" --collector-key "$E2E_COLLECTOR_KEY" \
    --service-name "mcpgate-e2e-$label"
  exported="$(curl -s "$GATEWAY_BASE/metrics" | awk '/^mcpgate_trace_spans_total\{outcome="exported"\}/{print $2}')"
  if [[ "${exported:-0}" -ge 10 ]]; then
    pass "telemetry/$label/metrics-exported"
  else
    fail "telemetry/$label/metrics-exported" "mcpgate_trace_spans_total{outcome=\"exported\"} is ${exported:-absent}"
  fi
  kill "$GATEWAY_PID" 2>/dev/null || true
done

# A collector that accepts connections and never answers: requests are not slowed, the spans
# are counted as failed once the export times out (timeout_ms = 500).
STUCK_PORT="$(free_port)"
spawn "$E2E_SUITE_LOG_DIR/stuck-collector.log" python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$STUCK_PORT"
sleep 0.3
if start_gateway gw-stuck --config "$(config stuck http/protobuf "$STUCK_PORT" "timeout_ms = 500")"; then
  slow=0
  for i in $(seq 1 20); do
    t="$(curl -s -o /dev/null -w '%{time_total}' -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
      -H "x-api-key: $KEY" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"s","version":"1"}}}' "$GATEWAY_URL")"
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 0.25 else 1)' "$t" || slow=$((slow + 1))
  done
  sleep 1.5
  failed="$(curl -s "$GATEWAY_BASE/metrics" | awk '/^mcpgate_trace_spans_total\{outcome="failed"\}/{print $2}')"
  if [[ "$slow" -eq 0 && "${failed:-0}" -ge 1 ]]; then
    pass "telemetry/stuck-collector/requests-not-slowed"
  else
    fail "telemetry/stuck-collector/requests-not-slowed" "$slow of 20 requests took 250 ms or more; failed spans counted: ${failed:-absent}"
  fi
  if grep -q 'could not export traces' "$E2E_SUITE_LOG_DIR/gw-stuck.log"; then
    pass "telemetry/stuck-collector/warned"
  else
    fail "telemetry/stuck-collector/warned" "no 'could not export traces' warning in the log"
  fi
  kill "$GATEWAY_PID" 2>/dev/null || true
else
  fail "telemetry/stuck-collector/gateway-start" "mcpgate serve did not start"
fi

# sample_ratio = 0: nothing is exported, and the upstream still gets an (unsampled) traceparent.
if start_gateway gw-unsampled --config "$(config unsampled http/protobuf "$HTTP_PORT" "sample_ratio = 0.0")"; then
  before="$(grep -c 'traceparent=00-[0-9a-f]*-[0-9a-f]*-00' "$UPSTREAM_LOG" || true)"
  spans_before="$(wc -l <"$SPANS")"
  sid="$(curl -s -D - -o /dev/null -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -H "x-api-key: $KEY" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"u","version":"1"}}}' \
    "$GATEWAY_URL" | tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')"
  code="$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -H "x-api-key: $KEY" -H "mcp-session-id: $sid" -H 'mcp-protocol-version: 2025-11-25' \
    -d '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' "$GATEWAY_URL")"
  sleep 1
  after="$(grep -c 'traceparent=00-[0-9a-f]*-[0-9a-f]*-00' "$UPSTREAM_LOG" || true)"
  exported=$(($(wc -l <"$SPANS") - spans_before))
  # A caller's sampled flag counts once it has authenticated, never before.
  stranger="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  member="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  for who in stranger member; do
    tid="${!who}"
    hdr=(-H "x-api-key: $KEY" -H "mcp-session-id: $sid")
    [[ "$who" == stranger ]] && hdr=(-H "x-api-key: mcp_nobody_${tid}")
    curl -s -o /dev/null -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
      "${hdr[@]}" -H 'mcp-protocol-version: 2025-11-25' -H "traceparent: 00-$tid-00f067aa0ba902b7-01" \
      -d '{"jsonrpc":"2.0","id":3,"method":"tools/list"}' "$GATEWAY_URL" || true
  done
  for _ in $(seq 1 30); do grep -q "$member" "$SPANS" && break; sleep 0.2; done
  if grep -q "\"trace_id\": \"$member\"" "$SPANS" && ! grep -q "$stranger" "$SPANS"; then
    pass "telemetry/unsampled/caller-flag-after-authentication"
  else
    fail "telemetry/unsampled/caller-flag-after-authentication" "member's sampled trace exported: $(grep -c "$member" "$SPANS"), stranger's: $(grep -c "$stranger" "$SPANS")"
  fi
  if [[ "$code" == 200 && "$exported" == 0 && "$after" -ge $((before + 2)) ]]; then
    pass "telemetry/unsampled/propagated-not-exported"
  else
    fail "telemetry/unsampled/propagated-not-exported" "status $code, $exported spans exported, unsampled traceparents at the upstream $before -> $after"
  fi
  kill "$GATEWAY_PID" 2>/dev/null || true
else
  fail "telemetry/unsampled/gateway-start" "mcpgate serve with sample_ratio = 0 did not start"
fi

# No credential in any gateway log (the keys, the collector's header value).
printf '%s\n%s\n%s\n' "$KEY" "$READER" "$E2E_COLLECTOR_KEY" >"$E2E_TMP/secrets.txt"
check_no_secret_in_log "telemetry/no-secret-in-log" "$E2E_TMP/secrets.txt" "$E2E_SUITE_LOG_DIR"/gw-*.log
suite_summary
