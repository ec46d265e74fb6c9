#!/usr/bin/env python3
"""A minimal MCP client over stdio (newline-delimited JSON-RPC), for stdio bridges such as
mcp-remote (tests-e2e/mcp_remote.sh): it starts the command, then initialize (waiting long
enough for the bridge's OAuth sign-in), notifications/initialized, tools/list, tools/call
`whoami` (user_id = --expect-user, auth_method "oauth") and `echo`, and closes stdin.
Requests the bridge sends to the client are answered (ping: {}, roots/list: no roots, anything
else: method not found); every stdout line must be JSON-RPC.

    stdio_mcp_client.py --prefix NAME --expect-user USER [--init-timeout 60] [--timeout 20]
        [--stderr FILE] -- CMD [ARGS...]

Each check prints `PASS NAME/<check>` or `FAIL NAME/<check>: reason` (appended to $E2E_RESULTS
when set); exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any

LINES: list[str] = []


def record(prefix: str, name: str, ok: bool, reason: str = "") -> bool:
    line = f"PASS {prefix}/{name}" if ok else f"FAIL {prefix}/{name}: {reason}"
    LINES.append(line)
    print(line, flush=True)
    results = os.environ.get("E2E_RESULTS")
    if results:
        with open(results, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    return ok


class Peer:
    def __init__(self, cmd: list[str], stderr_path: str | None) -> None:
        self.stderr_file = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file)
        self.responses: dict[Any, queue.Queue] = {}
        self.noise: list[str] = []
        self.lock = threading.Lock()
        self.next_id = 1
        threading.Thread(target=self._read, daemon=True).start()

    def _slot(self, id_: Any) -> queue.Queue:
        with self.lock:
            return self.responses.setdefault(id_, queue.Queue(maxsize=1))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self.noise.append(line[:200])
                continue
            if not isinstance(msg, dict):
                self.noise.append(line[:200])
            elif "method" in msg and "id" in msg:  # a request to the client
                result: dict[str, Any]
                if msg["method"] == "ping":
                    result = {"result": {}}
                elif msg["method"] == "roots/list":
                    result = {"result": {"roots": []}}
                else:
                    result = {"error": {"code": -32601, "message": "method not found"}}
                self.write({"jsonrpc": "2.0", "id": msg["id"], **result})
            elif "id" in msg and ("result" in msg or "error" in msg):
                self._slot(msg["id"]).put(msg)

    def write(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def request(self, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        with self.lock:
            id_ = self.next_id
            self.next_id += 1
        slot = self._slot(id_)
        self.write({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            try:
                return slot.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the bridge exited ({self.proc.returncode}) before answering {method}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no answer to {method} within {timeout:.0f}s")

    def close(self) -> int | None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--expect-user", required=True)
    ap.add_argument("--init-timeout", type=float, default=60)
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--stderr", default=None, help="file for the command's stderr")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    p = args.prefix
    peer = Peer(cmd, args.stderr)
    try:
        started = time.monotonic()
        try:
            r = peer.request("initialize", {
                "protocolVersion": "2025-06-18",
                "capabilities": {"roots": {}},
                "clientInfo": {"name": "mcpgate-e2e-stdio", "version": "0"},
            }, args.init_timeout)
            res = r.get("result") or {}
            ok = record(p, "initialize", bool(res.get("serverInfo")) and bool(res.get("protocolVersion")),
                        f"initialize: {json.dumps(r)[:300]}")
            print(f"  initialize answered after {time.monotonic() - started:.1f}s: server {res.get('serverInfo')},"
                  f" protocol {res.get('protocolVersion')}", flush=True)
        except Exception as e:
            record(p, "initialize", False, f"{type(e).__name__}: {e}")
            return 1
        if not ok:
            return 1
        peer.write({"jsonrpc": "2.0", "method": "notifications/initialized"})
        try:
            r = peer.request("tools/list", {}, args.timeout)
            names = {t.get("name") for t in (r.get("result") or {}).get("tools", [])}
            record(p, "tools-list", {"echo", "whoami"} <= names, f"want echo and whoami, got {sorted(map(str, names))} {json.dumps(r.get('error'))}")
        except Exception as e:
            record(p, "tools-list", False, f"{type(e).__name__}: {e}")
        try:
            r = peer.request("tools/call", {"name": "whoami", "arguments": {}}, args.timeout)
            res = r.get("result") or {}
            who = res.get("structuredContent") or {}
            if not who:
                for c in res.get("content", []):
                    try:
                        who = json.loads(c.get("text", ""))
                        break
                    except ValueError:
                        pass
            record(p, "whoami", not res.get("isError") and who.get("user_id") == args.expect_user
                   and who.get("auth_method") == "oauth",
                   f"want user_id {args.expect_user!r}, auth_method 'oauth'; got {json.dumps(who or r)[:300]}")
        except Exception as e:
            record(p, "whoami", False, f"{type(e).__name__}: {e}")
        text = "hello through mcp-remote and mcpgate's OAuth ✓"
        try:
            r = peer.request("tools/call", {"name": "echo", "arguments": {"text": text}}, args.timeout)
            res = r.get("result") or {}
            record(p, "echo", not res.get("isError") and any(text in c.get("text", "") for c in res.get("content", [])),
                   f"got {json.dumps(r)[:300]}")
        except Exception as e:
            record(p, "echo", False, f"{type(e).__name__}: {e}")
        record(p, "stdout-is-json-rpc", not peer.noise, f"non-JSON-RPC lines on stdout: {peer.noise[:3]}")
    finally:
        rc = peer.close()
        print(f"  bridge exit status {rc}", flush=True)
    return 1 if any(line.startswith("FAIL") for line in LINES) else 0


if __name__ == "__main__":
    sys.exit(main())
