#!/usr/bin/env python3
"""Differential driver: what mcpgate authorizes and audits must be exactly what the upstream runs.

For one gateway (in front of one recording upstream, see tests-e2e/differential/), it opens an
MCP session per key, sends every case of differential/corpus.py as raw bytes, and after each
one reads what the upstream recorded. At the end it reads the gateway's audit log
(`mcpgate audit --json --store DB`) and judges each message:

  - nothing ran: fine (the gateway refused it, or forwarded something that ran nothing);
  - something ran: the gateway must have allowed and audited this very message, for the same
    method and target, only one thing may have run, and that target must be one the key may
    use under the suite's policy.

A case may also demand "ran" or "refused" (the controls, so that refusing everything fails).
Prints a table row per message and `PASS`/`FAIL` lines (also appended to $E2E_RESULTS).

    differential.py gateway --label python-http --url URL --store DB --record FILE \\
        --mcpgate BIN --user-key K --admin-key K [--variant main|limit]
    differential.py witness --label python-http --url URL --record FILE      # no gateway
    differential.py witness-stdio --label python-stdio --record FILE -- CMD...
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "differential"))
import corpus  # noqa: E402

PROTOCOL = "2025-11-25"
GATEWAY_CODES = {-32700, -32600, -32602, -32001, -32003, -32029}
QUIET_S = 0.15  # an execution counts for a message if it is recorded before this much silence


def record_result(ok: bool, name: str, reason: str = "") -> bool:
    line = f"PASS {name}" if ok else f"FAIL {name}: {reason}"
    print(line, flush=True)
    if os.environ.get("E2E_RESULTS"):
        with open(os.environ["E2E_RESULTS"], "a", encoding="utf-8") as f:
            f.write(line + "\n")
    return ok


@dataclass
class Reply:
    status: int = 0
    messages: list[Any] = field(default_factory=list)
    error: str = ""  # transport failure (timeout, reset)

    def rpc_errors(self) -> list[int]:
        return [m["error"].get("code") for m in self.messages
                if isinstance(m, dict) and isinstance(m.get("error"), dict)]

    def short(self) -> str:
        if self.error:
            return self.error
        codes = self.rpc_errors()
        return f"{self.status}" + (f" {codes[0]}" if codes else "")


class Session:
    """One MCP session over Streamable HTTP, sending bodies byte for byte."""

    def __init__(self, url: str, key: str | None, label: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname or "127.0.0.1", u.port or 80, u.path or "/mcp"
        self.key, self.label, self.sid = key, label, None
        self.sent = 0

    def post(self, body: bytes, rid: str, timeout: float = 15.0) -> Reply:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": PROTOCOL, "X-Request-Id": rid}
        if self.key:
            headers["X-API-Key"] = self.key
        if self.sid:
            headers["Mcp-Session-Id"] = self.sid
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            sid = resp.getheader("Mcp-Session-Id")
            if sid:
                self.sid = sid
            return Reply(resp.status, parse_body(resp.getheader("Content-Type") or "", data))
        except (OSError, http.client.HTTPException) as e:
            return Reply(error=f"{type(e).__name__}: {e}"[:80])
        finally:
            conn.close()

    def next_id(self) -> int:
        self.sent += 1
        return self.sent

    def open(self) -> bool:
        self.sid = None
        init = {"jsonrpc": "2.0", "id": self.next_id(), "method": "initialize",
                "params": {"protocolVersion": PROTOCOL, "capabilities": {},
                           "clientInfo": {"name": "mcpgate-differential", "version": "1"}}}
        r = self.post(json.dumps(init).encode(), f"{self.label}-init-{secrets.token_hex(3)}", timeout=30)
        if r.status != 200 or not self.sid and not any("result" in m for m in r.messages if isinstance(m, dict)):
            print(f"  initialize failed: {r.short()} {r.messages[:1]}", flush=True)
            return False
        self.post(b'{"jsonrpc":"2.0","method":"notifications/initialized"}', f"{self.label}-inited-{secrets.token_hex(3)}")
        return True

    def alive(self) -> bool:
        r = self.post(json.dumps({"jsonrpc": "2.0", "id": self.next_id(), "method": "ping"}).encode(),
                      f"{self.label}-ping-{secrets.token_hex(3)}", timeout=10)
        return r.status == 200 and any(isinstance(m, dict) and "result" in m for m in r.messages)


def parse_body(ctype: str, data: bytes) -> list[Any]:
    text = data.decode("utf-8", "replace")
    if "text/event-stream" in ctype:
        out, buf = [], []
        for line in text.replace("\r\n", "\n").split("\n"):
            if line.startswith("data:"):
                buf.append(line[5:].lstrip(" "))
            elif not line and buf:
                out.append(_json_or_text("\n".join(buf)))
                buf = []
        if buf:
            out.append(_json_or_text("\n".join(buf)))
        return out
    return [_json_or_text(text)] if text.strip() else []


def _json_or_text(s: str) -> Any:
    try:
        return json.loads(s)
    except ValueError:
        return s


RECORD_HEAD = re.compile(rb'^\{"kind": ?"([a-z]+)", ?"target": ?("(?:[^"\\]|\\.)*")')


def parse_record(line: bytes) -> dict[str, Any]:
    """One execution. Arguments can be deeper than Python's json recursion allows (the corpus
    nests 1000 arrays), so kind and target are read from the head of the line when needed."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        m = RECORD_HEAD.match(line)
        if not m:
            return {"kind": "unreadable", "target": line[:80].decode("utf-8", "replace")}
        return {"kind": m.group(1).decode(), "target": json.loads(m.group(2)), "args": "(too deep to show)"}


class Recording:
    """The upstream's execution log, read incrementally (split on "\\n" only)."""

    def __init__(self, path: str) -> None:
        self.path, self.offset = path, 0

    def new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # only whole lines
        self.offset += end
        return [parse_record(line) for line in data[:end].split(b"\n") if line.strip()]

    def settle(self, max_s: float = 3.0) -> list[dict[str, Any]]:
        """Everything recorded until QUIET_S passes with nothing new."""
        got, quiet_since, deadline = [], time.monotonic(), time.monotonic() + max_s
        while time.monotonic() < deadline:
            fresh = self.new()
            if fresh:
                got += fresh
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_S:
                break
            time.sleep(0.02)
        return got


@dataclass
class Row:
    key: str
    case: corpus.Case
    rid: str
    reply: Reply
    ran: list[dict[str, Any]]
    note: str = ""


def read_audit(mcpgate: str, store: str, want: set[str], timeout_s: float = 10.0) -> dict[str, list[dict[str, Any]]]:
    """The audit records of the given request ids; polls, since records are written in batches."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = subprocess.run([mcpgate, "audit", "--json", "--store", store, "--limit", "1000000"],
                             capture_output=True, text=True, timeout=60)
        by_rid: dict[str, list[dict[str, Any]]] = {}
        for line in out.stdout.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            by_rid.setdefault(rec.get("request_id", ""), []).append(rec)
        if want <= by_rid.keys() or time.monotonic() > deadline:
            if out.returncode != 0:
                print(f"  mcpgate audit exited {out.returncode}: {out.stderr.strip()[:300]}", flush=True)
            return by_rid
        time.sleep(0.2)


def judge(row: Row, audit: list[dict[str, Any]]) -> tuple[bool, str, str]:
    """(ok, what happened, why not ok) for one message."""
    ran = [(e.get("kind"), e.get("target")) for e in row.ran]
    a = audit[0] if len(audit) == 1 else None
    decision = a.get("decision") if a else None
    # Refused means the gateway said no (its audit says so); a 4xx the gateway passed on from the
    # upstream is the upstream refusing what it was sent, which is not the same thing.
    refused = decision in ("deny", "limited")
    if ran:
        what = "ran " + ", ".join(f"{k}:{t}" for k, t in ran)
    elif refused:
        what = f"refused ({row.reply.short()})"
    elif decision == "error":
        what = f"forwarded, error ({row.reply.short()})"
    else:
        what = f"forwarded, nothing ran ({row.reply.short()})"
    problems = []
    if len(audit) != 1:
        problems.append(f"{len(audit)} audit records for this message (want 1)")
    if ran:
        if decision != "allow":
            problems.append(f"the upstream ran {ran} but the gateway's audit says {decision}")
        if len(ran) > 1:
            problems.append(f"one message, {len(ran)} executions")
        for kind, target in ran:
            method = a.get("mcp_method") if a else None
            audited = a.get("tool") if a else None
            if corpus.KIND_OF_METHOD.get(method or "") != kind:
                problems.append(f"ran {kind}:{target} but the gateway audited method {method!r}")
            elif audited != target and not (kind == "completion" and audited is None):
                problems.append(f"ran {kind}:{target} but the gateway authorized target {audited!r}")
            if (kind, target) not in corpus.MAY[row.key]:
                problems.append(f"ran {kind}:{target}, which the {row.key} key may not use")
    want = getattr(row.case, row.key)
    if want == corpus.RAN and ran != [row.case.expect]:
        problems.append(f"expected {row.case.expect} to run, got {ran or what}")
    if want == corpus.REFUSED:
        if ran or not refused:
            problems.append(f"expected a refusal, got {what}")
        elif row.reply.status < 400 and not set(row.reply.rpc_errors()) & GATEWAY_CODES:
            problems.append(f"refused without a 4xx or a gateway error code ({row.reply.short()})")
    return not problems, what, "; ".join(problems)


def run_gateway(args: argparse.Namespace) -> int:
    cases = corpus.LIMIT_CASES if args.variant == "limit" else corpus.CASES
    recording = Recording(args.record)
    recording.new()  # start after whatever the upstream recorded before
    rows: list[Row] = []
    failures = 0
    for key_name, key in (("user", args.user_key), ("admin", args.admin_key)):
        session = Session(args.url, key, f"{args.label}-{key_name}")
        if not session.open():
            record_result(False, f"differential/{args.label}/{args.variant}/{key_name}/initialize", "no session")
            failures += 1
            continue
        stray = recording.settle()
        for i, case in enumerate(cases):
            n = session.next_id()
            body = case.body.replace(b"%ID2%", str(n + 900000).encode()).replace(b"%ID%", str(n).encode())
            rid = f"{args.label}-{args.variant}-{key_name}-{i}-{secrets.token_hex(3)}"
            reply = session.post(body, rid)
            row = Row(key_name, case, rid, reply, recording.settle())
            if not session.alive():
                row.note = "session lost; reopened"
                session.open()
                row.ran += recording.settle()
            rows.append(row)
        if stray:
            print(f"  executions before the first message ({key_name}): {stray}", flush=True)
    late = recording.settle(max_s=1.5)
    audit = read_audit(args.mcpgate, args.store, {r.rid for r in rows})
    print(f"\n  {'key':<5} {'case':<34} {'result':<44} verdict", flush=True)
    for row in rows:
        ok, what, why = judge(row, audit.get(row.rid, []))
        if args.rows:
            with open(args.rows, "a", encoding="utf-8") as f:
                f.write(json.dumps({"pair": args.label, "variant": args.variant, "key": row.key,
                                    "case": row.case.name, "ok": ok, "what": what, "why": why}) + "\n")
        print(f"  {row.key:<5} {row.case.name:<34} {what[:44]:<44} {'ok' if ok else 'FAIL'}"
              f"{(' (' + row.note + ')') if row.note else ''}", flush=True)
        if not ok:
            failures += 1
            record_result(False, f"differential/{args.label}/{args.variant}/{row.key}/{row.case.name}", why)
    passed = len(rows) - sum(1 for r in rows if not judge(r, audit.get(r.rid, []))[0])
    print(f"  {passed} of {len(rows)} messages held", flush=True)
    if late:
        failures += 1
        record_result(False, f"differential/{args.label}/{args.variant}/late-executions", f"ran after the last message: {late}")
    if args.variant == "limit":
        for key_name in ("user", "admin"):
            echoes = sum(1 for r in rows if r.key == key_name for e in r.ran if (e["kind"], e["target"]) == ("tool", "echo"))
            ok = echoes <= corpus.LIMIT_PER_MINUTE
            failures += not record_result(ok, f"differential/{args.label}/limit/{key_name}/echo-at-most-{corpus.LIMIT_PER_MINUTE}",
                                          f"echo ran {echoes} times within a minute")
    if failures == 0:
        record_result(True, f"differential/{args.label}/{args.variant}: {len(rows)} messages")
    return 1 if failures else 0


def run_summary(args: argparse.Namespace) -> int:
    """A matrix of every case against every pair and key: `.` held, `X` failed."""
    rows = [json.loads(line) for line in open(args.rows, encoding="utf-8") if line.strip()]
    cols = sorted({(r["pair"], r["key"]) for r in rows}, key=lambda c: (c[0], c[1] != "user"))
    cells = {(r["variant"], r["case"], r["pair"], r["key"]): r for r in rows}
    cases = list(dict.fromkeys((r["variant"], r["case"]) for r in rows))
    lines = ["# Differential suite: what mcpgate audits vs what the upstream ran", "",
             "`.` held, `X` failed (u = read-only key, a = admin key). Reasons below the table.", "",
             "| case | " + " | ".join(f"{p} {k[0]}" for p, k in cols) + " |",
             "| --- |" + " --- |" * len(cols)]
    reasons = []
    for variant, case in cases:
        marks = []
        for pair, key in cols:
            r = cells.get((variant, case, pair, key))
            marks.append(" " if r is None else "." if r["ok"] else "X")
            if r is not None and not r["ok"]:
                reasons.append(f"- {variant}/{case} [{pair} {key}]: {r['why']}")
        name = case if variant == "main" else f"{case} (limit)"
        lines.append(f"| {name} | " + " | ".join(marks) + " |")
    failed = sum(1 for r in rows if not r["ok"])
    lines += ["", f"{len(rows) - failed} of {len(rows)} messages held.", ""] + reasons
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"  summary: {args.out} ({failed} of {len(rows)} messages failed)", flush=True)
    return 0


# ---- witnesses: the upstreams really do run what a forwarding gateway would let through ----------
DUP_NAME = corpus.env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"name":"denied_tool"}')


def run_witness(args: argparse.Namespace) -> int:
    """Straight to an HTTP upstream: a duplicated `name` runs the LAST one."""
    recording = Recording(args.record)
    recording.new()
    s = Session(args.url, None, f"{args.label}-witness")
    if not s.open():
        return 0 if record_result(False, f"differential/witness/{args.label}/last-key-wins", "no session") else 1
    body = DUP_NAME.replace(b"%ID%", b"77")
    reply = s.post(body, "witness")
    ran = [(e["kind"], e["target"]) for e in recording.settle()]
    print(f"  {args.label} direct, {body.decode()}\n    -> HTTP {reply.short()}, ran {ran or 'nothing'}", flush=True)
    if args.expect == "none":
        print(f"  (informational: {args.label} is not asserted to be last-key-wins)", flush=True)
        return 0
    ok = ran == [("tool", "denied_tool")]
    return 0 if record_result(ok, f"differential/witness/{args.label}/last-key-wins",
                              f"expected denied_tool (the last name) to run, got {ran or 'nothing'}") else 1


def run_witness_stdio(args: argparse.Namespace) -> int:
    """Straight into a stdio upstream: a raw line break inside params runs the hidden call."""
    recording = Recording(args.record)
    recording.new()
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "w", "version": "1"}}}).encode()
    sep = {"lf": corpus.NL, "cr": corpus.CR}[args.sep]
    smuggled = corpus.smuggle(sep).replace(b"%ID2%", b"3").replace(b"%ID%", b"2")
    stdin = init + b"\n" + b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n' + smuggled + b"\n"
    proc = subprocess.Popen(args.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.flush()
    ran = [(e["kind"], e["target"]) for e in recording.settle(max_s=10)] if _wait_for_lines(recording) else []
    proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
    print(f"  {args.label} direct, echo call with a second call after a raw {args.sep.upper()} inside params"
          f"\n    -> ran {ran or 'nothing'}", flush=True)
    ok = ("tool", "admin_tool") in ran
    return 0 if record_result(ok, f"differential/witness/{args.label}/{args.sep}-smuggle-runs-hidden-call",
                              f"expected the hidden admin_tool call to run, got {ran or 'nothing'}") else 1


def _wait_for_lines(recording: Recording, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(recording.path) and os.path.getsize(recording.path) > recording.offset:
            return True
        time.sleep(0.05)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("gateway")
    g.add_argument("--label", required=True)
    g.add_argument("--url", required=True)
    g.add_argument("--store", required=True)
    g.add_argument("--record", required=True)
    g.add_argument("--mcpgate", required=True)
    g.add_argument("--user-key", required=True)
    g.add_argument("--admin-key", required=True)
    g.add_argument("--variant", choices=["main", "limit"], default="main")
    g.add_argument("--rows", help="append one JSON line per judged message here (for `summary`)")
    sm = sub.add_parser("summary")
    sm.add_argument("--rows", required=True)
    sm.add_argument("--out", required=True)
    w = sub.add_parser("witness")
    w.add_argument("--label", required=True)
    w.add_argument("--url", required=True)
    w.add_argument("--record", required=True)
    w.add_argument("--expect", choices=["last-key-wins", "none"], default="last-key-wins")
    ws = sub.add_parser("witness-stdio")
    ws.add_argument("--label", required=True)
    ws.add_argument("--record", required=True)
    ws.add_argument("--sep", choices=["lf", "cr"], default="lf")
    ws.add_argument("cmd", nargs="+")
    args = ap.parse_args()
    modes = {"gateway": run_gateway, "summary": run_summary, "witness": run_witness, "witness-stdio": run_witness_stdio}
    return modes[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
