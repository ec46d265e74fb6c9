"""A small OTLP trace receiver for tests-e2e/telemetry.sh, built on the OpenTelemetry project's
own protocol classes (opentelemetry-proto) and grpcio.

It serves OTLP/HTTP (POST /v1/traces, application/x-protobuf or application/json) and OTLP/gRPC
(TraceService/Export) on 127.0.0.1, decodes every export strictly, and appends one JSON line per
span to --out: ids as hex, kind, name, times, attributes, events, status and which transport and
encoding carried it. Each raw request body is appended to --raw, for the secret search.

Usage: otlp_receiver.py --out spans.jsonl --raw raw.bin --ready ready.json
(ready.json gets {"http": PORT, "grpc": PORT} once both listen.)
"""

from __future__ import annotations

import argparse
import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

LOCK = threading.Lock()
ARGS = argparse.Namespace()


def any_value(v) -> object:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    raise ValueError(f"unexpected attribute value kind {kind}")


def attrs(kvs) -> dict:
    out = {}
    for kv in kvs:
        if kv.key in out:
            raise ValueError(f"duplicate attribute key {kv.key}")
        out[kv.key] = any_value(kv.value)
    return out


def record(req: trace_service_pb2.ExportTraceServiceRequest, transport: str, raw: bytes) -> int:
    rows = []
    for rs in req.resource_spans:
        resource = attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                if len(s.trace_id) != 16 or len(s.span_id) != 8 or len(s.parent_span_id) not in (0, 8):
                    raise ValueError("bad id length")
                if s.end_time_unix_nano < s.start_time_unix_nano:
                    raise ValueError("span ends before it starts")
                rows.append({
                    "transport": transport,
                    "resource": resource,
                    "scope": ss.scope.name,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "trace_state": s.trace_state,
                    "name": s.name,
                    "kind": s.kind,
                    "start": s.start_time_unix_nano,
                    "end": s.end_time_unix_nano,
                    "flags": s.flags,
                    "attributes": attrs(s.attributes),
                    "events": [{"name": e.name, "time": e.time_unix_nano, "attributes": attrs(e.attributes)} for e in s.events],
                    "status": s.status.code,
                })
    with LOCK:
        with open(ARGS.out, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        with open(ARGS.raw, "ab") as f:
            f.write(raw + b"\n")
    return len(rows)


def note_header(value: str) -> None:
    """The collector credential each export carried (the test compares it with what it set)."""
    with LOCK:
        with open(ARGS.out + ".headers", "a", encoding="utf-8") as f:
            f.write(value + "\n")


def from_json(body: bytes) -> trace_service_pb2.ExportTraceServiceRequest:
    """OTLP/JSON: protobuf's JSON mapping, except that trace and span ids are hex (not base64).
    The ids are turned into base64 before the strict protobuf parser reads the document."""
    import base64

    from google.protobuf import json_format

    doc = json.loads(body)

    def fix(span: dict) -> None:
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in span:
                span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()

    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                fix(s)
    msg = trace_service_pb2.ExportTraceServiceRequest()
    json_format.ParseDict(doc, msg, ignore_unknown_fields=False)
    return msg


class Http(BaseHTTPRequestHandler):
    def log_message(self, *a) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        ctype = self.headers.get("content-type", "")
        note_header(self.headers.get("x-collector-key", ""))
        try:
            if self.path != "/v1/traces":
                raise ValueError(f"path {self.path}")
            if ctype == "application/x-protobuf":
                req = trace_service_pb2.ExportTraceServiceRequest()
                req.ParseFromString(body)
                record(req, "http/protobuf", body)
                out, out_type = trace_service_pb2.ExportTraceServiceResponse().SerializeToString(), ctype
            elif ctype == "application/json":
                record(from_json(body), "http/json", body)
                out, out_type = b"{}", ctype
            else:
                raise ValueError(f"content-type {ctype}")
        except (ValueError, DecodeError, Exception) as e:  # noqa: BLE001 - any decode error is a 400
            with open(ARGS.out + ".errors", "a", encoding="utf-8") as f:
                f.write(f"{type(e).__name__}: {e}\n")
            self.send_response(400)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", out_type)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class Grpc(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):  # noqa: N802 - the generated name
        note_header(dict(context.invocation_metadata()).get("x-collector-key", ""))
        try:
            record(request, "grpc", request.SerializeToString())
        except ValueError as e:
            with open(ARGS.out + ".errors", "a", encoding="utf-8") as f:
                f.write(f"grpc: {e}\n")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        return trace_service_pb2.ExportTraceServiceResponse()


def main() -> None:
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--raw", required=True)
    p.add_argument("--ready", required=True)
    ARGS = p.parse_args()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Grpc(), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(ARGS.ready + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"http": http.server_address[1], "grpc": grpc_port}, f)
    import os

    os.replace(ARGS.ready + ".tmp", ARGS.ready)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
