#!/usr/bin/env python3
"""The official MCP Python SDK's *stdio* client (`mcp` 2.x) driving `mcpgate connect`.

The command after `--` is started by the SDK as a stdio MCP server (it is `mcpgate connect URL
...`, the bridge to a protected Streamable HTTP server); its stderr is appended to --stderr-log.
Checks: connect, tools/list (echo listed), tools/call echo, and as asked: whoami names the user
(and tenant), an elicitation round trip (ask_name: the server asks for a name, this client
answers "ana"), a sampling round trip (summarize: this client's "model" answers), calls spread
over --calls-for seconds (token refresh mid-session), and --expect-refused (a JSON-RPC error,
promptly, not a hang). Each check prints `PASS name` or `FAIL name: reason` (and appends it to
$E2E_RESULTS when set); the exit status is 1 if any check failed.

    connect_client.py --label L [--mode auto|legacy] [--expect-user U] [--expect-tenant T]
        [--elicit] [--sample] [--calls-for SECONDS] [--expect-refused] [--env NAME=VALUE]...
        [--stderr-log FILE] -- mcpgate connect URL [flags...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import anyio
from mcp import Client, StdioServerParameters, types

RESULTS: list[tuple[str, bool, str]] = []
SUMMARY = "a one-line summary from the e2e model"


def record(name: str, ok: bool, reason: str = "") -> None:
    RESULTS.append((name, ok, reason))
    line = f"PASS {name}" if ok else f"FAIL {name}: {reason}"
    print(line, flush=True)
    results_file = os.environ.get("E2E_RESULTS")
    if results_file:
        with open(results_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def texts(result: Any) -> list[str]:
    return [block.text for block in result.content if getattr(block, "type", None) == "text"]


def describe(e: BaseException) -> str:
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    if isinstance(e, TimeoutError):
        return "timed out"
    return f"{type(e).__name__}: {e}"


async def on_elicit(ctx: Any, params: Any) -> Any:
    return types.ElicitResult(action="accept", content={"name": "ana"})


async def on_sample(ctx: Any, params: Any) -> Any:
    return types.CreateMessageResult(
        role="assistant", model="e2e-model", content=types.TextContent(type="text", text=SUMMARY)
    )


async def whoami(client: Client) -> dict[str, Any]:
    r = await client.call_tool("whoami", {})
    if isinstance(r.structured_content, dict):
        return r.structured_content
    for t in texts(r):
        try:
            return json.loads(t)
        except ValueError:
            pass
    return {}


async def checks(client: Client, p: str, args: argparse.Namespace) -> None:
    try:
        names = {t.name for t in (await client.list_tools()).tools}
        record(f"{p}/tools-list", "echo" in names, f"echo not listed: {sorted(names)}")
    except Exception as e:
        record(f"{p}/tools-list", False, describe(e))

    text = "through the bridge ✓ <&> \"quoted\""
    try:
        r = await client.call_tool("echo", {"text": text})
        got = texts(r)
        record(f"{p}/echo", not r.is_error and any(text in t for t in got), f"got {got!r}")
    except Exception as e:
        record(f"{p}/echo", False, describe(e))

    if args.expect_user is not None:
        try:
            who = await whoami(client)
            ok = who.get("user_id") == args.expect_user and (
                args.expect_tenant is None or who.get("tenant") == args.expect_tenant
            )
            record(f"{p}/whoami", ok, f"expected user {args.expect_user!r} tenant {args.expect_tenant!r}, got {who!r}")
        except Exception as e:
            record(f"{p}/whoami", False, describe(e))

    if args.elicit:
        try:
            r = await client.call_tool("ask_name", {})
            got = texts(r)
            record(f"{p}/elicitation", any("hello, ana" in t for t in got), f"got {got!r}")
        except Exception as e:
            record(f"{p}/elicitation", False, describe(e))

    if args.sample:
        try:
            r = await client.call_tool("summarize", {"text": "a long text " * 20})
            got = texts(r)
            record(f"{p}/sampling", any(SUMMARY in t for t in got), f"got {got!r}")
        except Exception as e:
            record(f"{p}/sampling", False, describe(e))

    if args.calls_for:
        failed, calls, started = [], 0, time.monotonic()
        while time.monotonic() - started < args.calls_for:
            calls += 1
            try:
                r = await client.call_tool("echo", {"text": f"call {calls}"})
                if r.is_error or not any(f"call {calls}" in t for t in texts(r)):
                    failed.append(f"call {calls}: {texts(r)!r}")
            except Exception as e:
                failed.append(f"call {calls} at {time.monotonic() - started:.1f}s: {describe(e)}")
            await anyio.sleep(1)
        record(f"{p}/calls-for-{args.calls_for}s", not failed and calls > 1, f"{len(failed)} of {calls} failed: {failed[:3]}")
        print(f"  {calls} calls over {args.calls_for}s", flush=True)


async def run(args: argparse.Namespace) -> None:
    p = args.label
    env = dict(os.environ)
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    command = args.command[0]
    # The bridge's stderr goes to a file of its own (searched for secrets by the suite).
    wrapped = ["-c", 'exec "$0" "$@" 2>>"$CONNECT_STDERR"', command, *args.command[1:]]
    env["CONNECT_STDERR"] = args.stderr_log
    server = StdioServerParameters(command="sh", args=wrapped, env=env)
    kwargs: dict[str, Any] = {"mode": args.mode, "read_timeout_seconds": args.timeout}
    if args.elicit:
        kwargs["elicitation_callback"] = on_elicit
    if args.sample:
        kwargs["sampling_callback"] = on_sample
    if args.expect_refused:
        started = time.monotonic()
        try:
            with anyio.fail_after(args.timeout):
                async with Client(server, **kwargs) as client:
                    await client.list_tools()
            record(f"{p}/refused", False, "connected and listed tools")
        except TimeoutError:
            record(f"{p}/refused", False, f"no answer within {args.timeout}s (a hang, not a refusal)")
        except Exception as e:
            text = describe(e)
            record(f"{p}/refused", "401" in text or "refused" in text or "credential" in text, f"not an auth refusal: {text}")
            print(f"  refused after {time.monotonic() - started:.1f}s: {text[:300]}", flush=True)
        return
    try:
        with anyio.fail_after(args.timeout + (args.calls_for or 0) + 60):
            async with Client(server, **kwargs) as client:
                record(f"{p}/connect", True)
                await checks(client, p, args)
    except Exception as e:
        if not any(name == f"{p}/connect" for name, _, _ in RESULTS):
            record(f"{p}/connect", False, describe(e))
        else:
            record(f"{p}/session", False, describe(e))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", required=True)
    ap.add_argument("--mode", default="legacy")
    ap.add_argument("--expect-user")
    ap.add_argument("--expect-tenant")
    ap.add_argument("--elicit", action="store_true")
    ap.add_argument("--sample", action="store_true")
    ap.add_argument("--calls-for", type=int, default=0)
    ap.add_argument("--expect-refused", action="store_true")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--stderr-log", default=os.devnull)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        ap.error("the command to run (after --) is missing")
    anyio.run(run, args)
    return 0 if RESULTS and all(ok for _, ok, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
