"""Drives a gateway with traces on (tests-e2e/telemetry.sh) and checks what reached the OTLP
receiver (tests-e2e/otlp_receiver.py), what the upstream saw, and the gateway's JSON log.

Requests (plain HTTP, so every header is the test's own choice):
  initialize, notifications/initialized, tools/list          the admin key
  tools/call echo, with a secret in its arguments, a traceparent and a tracestate of the caller's
  tools/call add                                              a read-only key: denied by policy
  tools/call echo                                             a wrong key: refused (401)
  tools/call echo with an uppercase (invalid) traceparent     must start a trace of its own
Prints PASS/FAIL lines named telemetry/<label>/<check>.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import time
import urllib.error
import urllib.request

P = argparse.ArgumentParser()
P.add_argument("--gateway", required=True)
P.add_argument("--label", required=True)
P.add_argument("--key", required=True)
P.add_argument("--reader-key", required=True)
P.add_argument("--spans", required=True)
P.add_argument("--raw", required=True)
P.add_argument("--upstream-log", required=True)
P.add_argument("--gateway-log", required=True)
P.add_argument("--collector-key", required=True)
P.add_argument("--service-name", required=True)
A = P.parse_args()

FAILED = 0


def check(name: str, ok: bool, detail: str = "") -> None:
    global FAILED
    if ok:
        print(f"PASS telemetry/{A.label}/{name}", flush=True)
    else:
        FAILED += 1
        print(f"FAIL telemetry/{A.label}/{name}: {detail[:600]}", flush=True)


def post(body: dict, key: str, session: str | None = None, extra: dict | None = None) -> tuple[int, dict]:
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "x-api-key": key,
        "mcp-protocol-version": "2025-11-25",
    }
    if session:
        headers["mcp-session-id"] = session
    headers.update(extra or {})
    req = urllib.request.Request(A.gateway, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
            return r.status, {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, {k.lower(): v for k, v in e.headers.items()}


SECRET_ARG = "argsecret-" + secrets.token_hex(12)
CALLER_TRACE = secrets.token_hex(16)
CALLER_SPAN = secrets.token_hex(8)
UPPER_TRACE = secrets.token_hex(16).upper().replace("A", "B") + ""  # invalid: uppercase hex
if UPPER_TRACE == UPPER_TRACE.lower():
    UPPER_TRACE = "ABCDEF" + UPPER_TRACE[6:]

init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "telemetry-e2e", "version": "1"}}}
status, h = post(init, A.key)
session = h.get("mcp-session-id", "")
check("initialize", status == 200 and bool(session), f"status {status}")
ids: dict[str, str] = {"initialize": h.get("x-request-id", "")}
post({"jsonrpc": "2.0", "method": "notifications/initialized"}, A.key, session)
status, h = post({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, A.key, session)
ids["tools/list"] = h.get("x-request-id", "")
call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": SECRET_ARG}}}
status, h = post(call, A.key, session, {
    "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
    "tracestate": "e2e=1",
})
check("echo-allowed", status == 200, f"status {status}")
ids["echo"] = h.get("x-request-id", "")
denied = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
status, h = post(denied, A.reader_key)
check("add-denied", status == 403, f"status {status}")
ids["denied"] = h.get("x-request-id", "")
wrong_key = A.key[:-4] + ("AAAA" if not A.key.endswith("AAAA") else "BBBB")
status, h = post(call, wrong_key)
check("wrong-key-refused", status == 401, f"status {status}")
ids["refused"] = h.get("x-request-id", "")
status, h = post(call, A.key, session, {"traceparent": f"00-{UPPER_TRACE}-{CALLER_SPAN}-01"})
ids["uppercase"] = h.get("x-request-id", "")
# A caller cannot take its request out of the traces: an unsampled flag under sample_ratio 1.0.
HIDDEN_TRACE = secrets.token_hex(16)
status, h = post(call, A.key, session, {"traceparent": f"00-{HIDDEN_TRACE}-{CALLER_SPAN}-00"})
ids["unsampled-flag"] = h.get("x-request-id", "")
check("all-requests-have-ids", all(ids.values()), json.dumps(ids))


def plain(method: str, traceparent: str) -> int:
    """GET (the server's stream: headers only, then closed) or DELETE of the session."""
    headers = {
        "accept": "text/event-stream" if method == "GET" else "application/json, text/event-stream",
        "x-api-key": A.key, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25",
        "traceparent": traceparent,
    }
    req = urllib.request.Request(A.gateway, headers=headers, method=method)
    try:
        r = urllib.request.urlopen(req, timeout=10)
        status = r.status
        r.close()
        return status
    except urllib.error.HTTPError as e:
        return e.code


PLAIN = {m: (secrets.token_hex(16), secrets.token_hex(8)) for m in ("GET", "DELETE")}
for m, (t, p) in PLAIN.items():
    code = plain(m, f"00-{t}-{p}-01")
    check(f"{m.lower()}-answered", code in (200, 202, 204), f"{m}: status {code}")


def load_spans() -> list[dict]:
    try:
        with open(A.spans, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def server_span(spans: list[dict], request_id: str) -> dict | None:
    for s in spans:
        if s["kind"] == 2 and s["attributes"].get("mcpgate.request_id") == request_id:
            return s
    return None


# Spans arrive in batches (export_interval_ms in the gateway's config): wait for all of them.
deadline = time.monotonic() + 15
spans: list[dict] = []
while time.monotonic() < deadline:
    spans = [s for s in load_spans() if s["resource"].get("service.name") == A.service_name]
    plain_seen = all(any(s["trace_id"] == t and s["kind"] == 2 for s in spans) for t, _ in PLAIN.values())
    if plain_seen and all(server_span(spans, rid) for rid in ids.values()):
        break
    time.sleep(0.2)
missing = [k for k, rid in ids.items() if not server_span(spans, rid)]
check("span-per-request", not missing, f"no server span for {missing}; {len(spans)} spans received")
check("resource", bool(spans) and spans[0]["resource"].get("telemetry.sdk.language") == "rust"
      and spans[0]["scope"] == "mcpgate", json.dumps(spans[0]["resource"]) if spans else "no spans")
try:
    with open(A.spans + ".errors", encoding="utf-8") as f:
        errors = f.read()
except FileNotFoundError:
    errors = ""
check("decoded-strictly", errors == "", errors)

echo = server_span(spans, ids["echo"]) or {}
attrs = echo.get("attributes", {})
check("echo-attributes",
      attrs.get("mcp.method.name") == "tools/call" and attrs.get("gen_ai.tool.name") == "echo"
      and attrs.get("mcpgate.decision") == "allow" and attrs.get("http.response.status_code") == 200
      and attrs.get("mcpgate.auth.method") == "api_key" and attrs.get("mcpgate.key_id") == A.key.split("_")[1]
      and echo.get("name") == "tools/call",
      json.dumps(echo))
names = [e["name"] for e in echo.get("events", [])]
want = ["message.read", "authenticated", "authorized", "limits", "upstream.answered"]
check("pipeline-events", names == want, f"events {names}, wanted {want}")
times = [e["time"] for e in echo.get("events", [])]
check("event-times-in-span", bool(times) and times == sorted(times)
      and echo["start"] <= times[0] and times[-1] <= echo["end"], f"start {echo.get('start')} events {times} end {echo.get('end')}")
check("continues-caller-trace",
      echo.get("trace_id") == CALLER_TRACE and echo.get("parent_span_id") == CALLER_SPAN
      and echo.get("trace_state") == "e2e=1" and echo.get("flags", 0) & 1 == 1,
      f"trace {echo.get('trace_id')} parent {echo.get('parent_span_id')} state {echo.get('trace_state')!r}; sent {CALLER_TRACE} {CALLER_SPAN}")

children = [s for s in spans if s["kind"] == 3 and s["parent_span_id"] == echo.get("span_id")
            and s["trace_id"] == echo.get("trace_id")]
upstream = children[0] if children else {}
check("upstream-span", len(children) == 1 and upstream["name"] == "upstream"
      and upstream["attributes"].get("http.response.status_code") == 200
      and echo["start"] <= upstream["start"] <= upstream["end"] <= echo["end"],
      json.dumps(children))

with open(A.upstream_log, encoding="utf-8", errors="replace") as f:
    upstream_log = f.read()
seen = re.findall(r"traceparent=(00-[0-9a-f]{32}-[0-9a-f]{16}-0[01])", upstream_log)
expected = f"00-{CALLER_TRACE}-{upstream.get('span_id', 'none')}-01"
check("traceparent-at-upstream", expected in seen, f"expected {expected} among {seen[-8:]}")
check("tracestate-at-upstream", re.search(rf"traceparent={re.escape(expected)}.*tracestate=e2e=1", upstream_log) is not None,
      "the caller's tracestate did not reach the upstream with its traceparent")
# Every upstream call the gateway made in these traces went with its own client span's id.
calls = [s for s in spans if s["kind"] == 3]
unmatched = [s["span_id"] for s in calls if f"00-{s['trace_id']}-{s['span_id']}-01" not in seen]
check("every-upstream-call-propagated", bool(calls) and not unmatched, f"client spans without a traceparent upstream: {unmatched}")

for m, (t, p) in PLAIN.items():
    srv = next((s for s in spans if s["trace_id"] == t and s["kind"] == 2), {})
    kid = next((s for s in spans if s["trace_id"] == t and s["kind"] == 3), {})
    check(f"{m.lower()}-span", srv.get("name") == f"{m} /mcp" and srv.get("parent_span_id") == p
          and srv.get("attributes", {}).get("http.request.method") == m
          and kid.get("parent_span_id") == srv.get("span_id")
          and [e["name"] for e in srv.get("events", [])] == ["authenticated", "upstream.answered"],
          json.dumps([srv, kid]))
    check(f"{m.lower()}-traceparent-at-upstream",
          re.search(rf"traceparent=00-{t}-{kid.get('span_id', 'none')}-01 tracestate= method={m}", upstream_log) is not None,
          f"no {m} with the client span's traceparent in the upstream's log")

for label, want_reason in (("denied", None), ("refused", None)):
    s = server_span(spans, ids[label]) or {}
    a = s.get("attributes", {})
    kids = [c for c in spans if c["parent_span_id"] == s.get("span_id") and c["trace_id"] == s.get("trace_id")]
    check(f"{label}-span", a.get("mcpgate.decision") == "deny" and a.get("mcpgate.reason", "") != ""
          and a.get("http.response.status_code") == (403 if label == "denied" else 401) and not kids
          and s.get("status") == 0,
          json.dumps(s))
refused = server_span(spans, ids["refused"]) or {}
check("refused-span-has-no-principal", "user.id" not in refused.get("attributes", {})
      and "mcpgate.principal" not in refused.get("attributes", {}), json.dumps(refused.get("attributes")))
hidden = server_span(spans, ids["unsampled-flag"]) or {}
check("caller-cannot-unsample", hidden.get("trace_id") == HIDDEN_TRACE, json.dumps(hidden)[:300])
upper = server_span(spans, ids["uppercase"]) or {}
check("invalid-traceparent-ignored", bool(upper) and upper.get("trace_id") != UPPER_TRACE.lower()
      and upper.get("parent_span_id") == "", f"trace {upper.get('trace_id')} parent {upper.get('parent_span_id')!r}")

with open(A.raw, "rb") as f:
    raw = f.read()
secrets_sent = {"admin key": A.key, "reader key": A.reader_key, "wrong key": wrong_key,
                "tool argument": SECRET_ARG, "session id": session, "collector key": A.collector_key}
leaked = [name for name, value in secrets_sent.items() if value and value.encode() in raw]
check("no-secret-in-spans", raw != b"" and not leaked, f"found in exported spans: {leaked}")

try:
    with open(A.spans + ".headers", encoding="utf-8") as f:
        got = [line.strip() for line in f if line.strip() or line == "\n"]
except FileNotFoundError:
    got = []
check("collector-header-sent", bool(got) and all(v == A.collector_key for v in got),
      f"{len(got)} exports, {sum(v == A.collector_key for v in got)} with the configured header")

# JSON logs: a line written while the caller's request ran carries its trace id.
trace_lines = []
with open(A.gateway_log, encoding="utf-8", errors="replace") as f:
    for line in f:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if (doc.get("span") or {}).get("trace_id") == CALLER_TRACE:
            trace_lines.append(doc)
check("trace-id-in-json-logs", bool(trace_lines), "no JSON log line with span.trace_id of the caller's trace")
raise SystemExit(1 if FAILED else 0)
